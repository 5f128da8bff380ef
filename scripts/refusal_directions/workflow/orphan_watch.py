"""A job stops when the snakemake process that started it dies (kill -9, a crash): nothing keeps writing into
results/ after the user was told to act.

At the job's start the chain of processes from the job up to the outermost snakemake process above it is
recorded, each with its parent; a thread checks every second that each still has that parent (a process
whose parent dies is handed to another one). When one does not, the job sends itself SIGTERM, which ends it
as an interruption (runlog.rule_log) with its finished batches kept (model/resume.py). Whatever runs snakemake (a
shell, nohup, a terminal) is not watched. Reads /proc (Linux); elsewhere only the job's own parent is
watched.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5


def _parent(pid: int) -> int | None:
    """The parent of ``pid`` from /proc (None when the process is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # the command name, in parentheses, may hold spaces


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def snakemake_chain(pid: int | None = None) -> list[tuple[int, int]]:
    """(process, its parent) for each process from ``pid`` (this one) up to the child of the outermost
    snakemake process above it; empty when no snakemake process is above it."""
    ancestors = [pid or os.getpid()]
    while (parent := _parent(ancestors[-1])) not in (None, 0, 1):
        ancestors.append(parent)
    outermost = max((i for i, ancestor in enumerate(ancestors) if "snakemake" in command_line(ancestor)), default=0)
    return list(zip(ancestors[:outermost], ancestors[1 : outermost + 1], strict=True))


def watch_snakemake(poll_seconds: float = POLL_SECONDS) -> None:
    """Start the thread that ends this job once the snakemake process above it is gone."""
    if Path("/proc/self/stat").is_file():
        chain = snakemake_chain()

        def orphaned() -> bool:
            return any(_parent(process) != parent for process, parent in chain)
    else:
        chain, parent = [(os.getpid(), os.getppid())], os.getppid()

        def orphaned() -> bool:
            return os.getppid() != parent

    if not chain:
        return

    def watch():
        while not orphaned():
            time.sleep(poll_seconds)
        log.error("the snakemake process that started this job is gone: stopping")
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()
