"""Where a model job keeps its finished batches (model/resume.py), and the key that ties them to the job: the
sha256 of its params and of its input files' paths, sizes and modification times. Standard library only:
every entry script builds it (runlog.job_arguments), and the workflow definition removes the folders."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

RESUME_ROOT = Path("results") / "resume"


@dataclass(frozen=True)
class ResumePlace:
    """Where a job keeps its completed batches, the key of the job they belong to, and its name."""

    folder: str
    key: str
    job: str


def job_key(params: dict, input_paths: list[str]) -> str:
    """sha256 of the params (key order ignored) and of every input file's path, size and modification time
    (the files inside an input folder included)."""
    files = []
    for path in map(Path, input_paths):
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file():
                stat = file.stat()
                files.append([str(file), stat.st_size, stat.st_mtime_ns])
    text = json.dumps({"params": params, "inputs": files}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def resume_place(rule: str, wildcards: dict, params: dict, input_paths: list[str]) -> ResumePlace:
    labels = [f"{name}={value}" for name, value in sorted(wildcards.items())]
    job = f"{rule} ({', '.join(labels)})" if labels else rule
    return ResumePlace(str(RESUME_ROOT.joinpath(rule, *labels)), job_key(params, input_paths), job)


def remove_resume_folders(root: Path = RESUME_ROOT) -> None:
    """Delete every job's resume folder (after a successful workflow run)."""
    if root.is_dir():
        shutil.rmtree(root)
