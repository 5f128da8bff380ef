"""Seeded draws of prompts: the sample of each dataset, and the subsets the model jobs answer."""

from __future__ import annotations

import numpy as np

from ..workflow.errors import UserError
from ..workflow.jsonio import read_jsonl, write_jsonl


def sample_records(records: list[dict], n_samples: int, seed: int, name: str) -> list[dict]:
    """``n_samples`` records drawn without replacement with ``seed``, kept in source order.

    Two datasets of equal length sampled with the same seed get the same row numbers, which keeps
    line-aligned control sets (imperatives vs questions) paired.
    """
    if n_samples > len(records):
        raise UserError(
            f"n_samples = {n_samples} but dataset '{name}' has only {len(records)} usable prompts; "
            "lower n_samples or add prompts"
        )
    chosen = np.sort(np.random.default_rng(seed).permutation(len(records))[:n_samples])
    return [records[i] for i in chosen]


def sample_prompts(inputs: dict, outputs: dict, name: str, n_samples: int, seed: int) -> None:
    """The ``prompts`` sampled from dataset ``name`` (its normalised file, ``dataset``)."""
    write_jsonl(outputs["prompts"], sample_records(read_jsonl(inputs["dataset"]), n_samples, seed, name))


def subset_rows(rows: np.ndarray, n_wanted: int | None, seed: int, stream: int) -> np.ndarray:
    """A seeded random subset of ``rows`` (all of them if ``n_wanted`` is None or too large), in order;
    ``stream`` gives each prompt set its own draw."""
    rows = np.asarray(rows)
    if n_wanted is None or n_wanted >= len(rows):
        return rows
    return np.sort(np.random.default_rng([seed, stream]).choice(rows, size=n_wanted, replace=False))


def prompt_subsets(prompt_files: dict[str, str], rows: dict[str, np.ndarray], n_wanted: int | None,
                   seed: int) -> dict[str, list[dict]]:  # fmt: skip
    """The formatted prompt records of each set, cut to a seeded subset of ``n_wanted`` of its ``rows``
    (a split); each keeps its ``row`` in the set, which is its row in the activation files."""
    subsets = {}
    for stream, (name, path) in enumerate(prompt_files.items()):
        records = read_jsonl(path)
        chosen = subset_rows(rows[name], n_wanted, seed, stream)
        subsets[name] = [{**records[row], "row": int(row)} for row in chosen]
    return subsets
