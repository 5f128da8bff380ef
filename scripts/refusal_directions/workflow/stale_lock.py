"""A lock that a killed snakemake run left behind, said in one line before Snakemake refuses to run.

Snakemake locks the working directory (.snakemake/locks/) while it runs and releases it when it ends, even
on Ctrl-C; kill -9 or a power loss leaves the lock, and the next run stops with a LockException. Whether
another run still holds it cannot be known for certain (it may run on another machine of a cluster), so the
lock is not removed here: when no snakemake process on this machine runs in the folder, the note says that
the lock is most likely stale and which command removes it. Reads /proc (Linux); elsewhere says nothing.
Standard library only: the workflow definition runs it before any job.
"""

from __future__ import annotations

import os
from pathlib import Path

from .orphan_watch import command_line

LOCKS = Path(".snakemake") / "locks"


def snakemake_processes_in(folder: Path, exclude: set[int]) -> list[int]:
    """The snakemake processes on this machine whose working directory is ``folder`` (not ``exclude``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        try:
            if Path(os.readlink(entry / "cwd")) == folder and "snakemake" in command_line(int(entry.name)):
                found.append(int(entry.name))
        except OSError:  # gone, or not ours to read
            continue
    return found


def stale_lock_note(folder: Path) -> str | None:
    """The note for a lock in ``folder`` that no snakemake process on this machine holds (None otherwise)."""
    locks = folder / LOCKS
    if not Path("/proc/self").is_dir() or not locks.is_dir() or not any(locks.iterdir()):
        return None
    this_run = {os.getpid(), os.getppid()}
    if snakemake_processes_in(folder.resolve(), this_run):
        return None
    return (
        f"{locks} holds the lock of a snakemake run that was killed (no snakemake process on this machine runs "
        "here); unless a run on another machine uses this folder, `snakemake --unlock` removes it"
    )
