"""Output files readable as every other output is: safetensors writes its files with mode 0600 whatever the
umask (a private temporary file, renamed), so on a cluster the rest of the group could not read a direction
or load an exported checkpoint. Each writer of a safetensors file gives it the mode a new file gets."""

from __future__ import annotations

import os
from pathlib import Path


def umask() -> int:
    """The process's umask (read by setting it, then put back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def as_new_file(path: str | Path) -> None:
    """Give ``path`` the mode that ``open()`` gives a new file under the umask (0644 under 022)."""
    Path(path).chmod(0o666 & ~umask())


def as_new_files(folder: str | Path) -> None:
    """``as_new_file`` for every file under ``folder`` (a saved checkpoint)."""
    for path in Path(folder).rglob("*"):
        if path.is_file():
            as_new_file(path)
