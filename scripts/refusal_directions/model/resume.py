"""Completed batches of a model job, kept so that a rerun after an interruption (Ctrl-C, a killed job, a
cluster time limit or preemption) continues where the job stopped instead of from zero.

Each finished batch goes to its own safetensors file in the job's resume folder (results/resume/<rule>/<its
wildcards>/), written under a temporary name and renamed, so a kill at any moment leaves only whole batch
files. The folder sits beside the job's outputs, never inside them: Snakemake deletes the outputs of an
interrupted job. Its key (key.txt) is the sha256 of the job's params and of its input files' paths, sizes
and modification times: a rerun with other params or rewritten inputs (which Snakemake reruns anyway)
discards the folder and starts afresh, so batches of two different jobs are never mixed. The folders stay
after the job finishes, so an interruption between the job's end and Snakemake's record of it costs nothing
either; a successful workflow run removes them (the Snakefile's onsuccess).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from ..workflow.resume_place import ResumePlace
from ..workflow.runlog import KEPT, say

log = logging.getLogger(__name__)
KEY_FILE = "key.txt"


def part_name(part) -> str:
    """A finished part's file name: from the prompt indices of a batch (or the numbers of a group of
    candidates), or from a condition's name; the same part gets the same name."""
    key = part if isinstance(part, str) else [int(index) for index in part]
    return f"batch-{hashlib.sha256(json.dumps(key).encode()).hexdigest()[:20]}.safetensors"


def texts_tensor(texts: list[str]) -> np.ndarray:
    """Texts as a tensor a part can hold (safetensors holds numbers only): their UTF-8 JSON, as bytes."""
    return np.frombuffer(json.dumps(texts).encode("utf-8"), dtype=np.uint8)


def tensor_texts(tensor: np.ndarray) -> list[str]:
    """The texts that ``texts_tensor`` stored."""
    return json.loads(tensor.tobytes().decode("utf-8"))


class ResumeState:
    """The completed batches of one job (``place`` None: keep nothing, as when a job function is called
    outside Snakemake). ``saved(part)`` gives a part's tensors if an earlier run finished it, ``save(part,
    tensors)`` keeps a part as soon as it is done; a part is a batch (its prompt indices), a group of
    candidates (their numbers) or a condition (its name)."""

    def __init__(self, place: ResumePlace | None):
        self.what = place.job if place else "this job"
        self.folder = Path(place.folder) if place else None
        self.n_saved = self.n_reused = 0
        if self.folder is None:
            return
        key_file = self.folder / KEY_FILE
        if self.folder.is_dir() and (not key_file.is_file() or key_file.read_text() != place.key):
            log.info("%s: discarding the batches of an earlier run with other params or inputs", self.what)
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        key_file.write_text(place.key)
        self.earlier = {path.name for path in self.folder.glob("batch-*.safetensors")}
        if self.earlier:
            say(
                f"{self.what} resumes: {len(self.earlier)} batches finished by an earlier run are kept in {self.folder}"
            )
        KEPT.append(self.summary)

    def saved(self, part) -> dict | None:
        if self.folder is None or part_name(part) not in self.earlier:
            return None
        from safetensors.numpy import load_file

        self.n_reused += 1
        return load_file(self.folder / part_name(part))

    def save(self, part, tensors: dict) -> None:
        if self.folder is None:
            return
        from safetensors.numpy import save_file

        path = self.folder / part_name(part)
        partial = path.with_name(path.name + ".partial")
        save_file({name: np.ascontiguousarray(value) for name, value in tensors.items()}, str(partial))
        os.replace(partial, path)
        self.n_saved += 1

    def summary(self) -> str:
        """What an interruption leaves: how many batches are kept, and where."""
        if self.folder is None:
            return f"{self.what}: nothing is kept"
        kept = len(list(self.folder.glob("batch-*.safetensors")))
        return f"{self.what}: {kept} finished batches are kept in {self.folder}"
