"""Content checks of the extraction's layer files against the sha256 sums in its manifest.

Snakemake notices a changed file by its modification time only: a layer file truncated or edited with its
old mtime kept would feed stale or broken numbers into every later step. Standard library only: the
workflow definition runs ``damaged_files`` before any job.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .errors import UserError

MANIFEST = "manifest.json"


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(folder: str | Path) -> dict:
    return json.loads(Path(folder, MANIFEST).read_text())


def is_unfinished(folder: str | Path) -> bool:
    """Whether ``folder`` holds an extraction that did not finish (interrupted or killed): the manifest is
    written last, so a folder without one was never finished. Not damage: the job reruns and resumes."""
    return Path(folder).is_dir() and not Path(folder, MANIFEST).is_file()


def damaged_files(folder: str | Path) -> list[str]:
    """What is wrong with a finished extraction's folder: the files (layers, refusal scores) that are missing
    or differ from their recorded sha256; empty when the folder is whole, unfinished or does not exist."""
    if not Path(folder, MANIFEST).is_file():
        return []
    recorded = read_manifest(folder).get("sha256", {})
    return [
        name
        for name, digest in sorted(recorded.items())
        if not Path(folder, name).is_file() or file_sha256(Path(folder, name)) != digest
    ]


def verify_file(path: str | Path) -> None:
    """Raise a UserError unless ``path`` is the file its extraction wrote (checked against the manifest
    beside it); the message says what the workflow's start-up check says."""
    path = Path(path)
    digest = read_manifest(path.parent).get("sha256", {}).get(path.name)
    if digest is None or not path.is_file() or file_sha256(path) != digest:
        raise UserError(
            f"{path} does not match the sha256 recorded in {path.parent / MANIFEST} (missing, truncated or changed "
            f"after extraction); delete {path.parent} and run again to re-extract the model"
        )
