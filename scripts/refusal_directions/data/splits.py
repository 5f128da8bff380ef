"""Train, validation and test splits of the sampled prompts of every dataset.

Train builds the directions and the per-layer statistics, validation selects one direction among the
candidates, test evaluates it and carries the behaviour statistics: a number is never computed on the
prompts that fitted the direction it is about. Each dataset's rows are split with the same seeded
permutation, so line-aligned sets (the control's imperatives and questions, the harmless set and the
imperatives) keep their pairs in the same split.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..workflow.errors import UserError

# Standard library at import: the config check sizes the splits before any job.

SPLITS = ("train", "validation", "test")


def split_sizes(n_prompts: int, weights: dict) -> dict[str, int]:
    """Prompts per split in the proportions of ``weights`` (e.g. the reference's 128 / 32 / 100):
    validation and test rounded, train the rest."""
    total = sum(weights[name] for name in SPLITS)
    sizes = {name: round(n_prompts * weights[name] / total) for name in ("validation", "test")}
    sizes = {"train": n_prompts - sizes["validation"] - sizes["test"], **sizes}
    if sizes["train"] < 2:
        raise UserError(
            f"splits: {n_prompts} prompts per set leave {sizes['train']} for train; raise n_samples or the train share"
        )
    return sizes


def check_splits(n_prompts: int, weights: dict, needs: dict[str, str]) -> None:
    """Every split an enabled step needs (split -> the step) holds at least 2 prompts per set."""
    sizes = split_sizes(n_prompts, weights)
    for split, step in needs.items():
        if sizes[split] < 2:
            raise UserError(
                f"splits: {n_prompts} prompts per set leave {sizes[split]} for {split}, which {step} needs; raise "
                f"n_samples or splits.{split}"
            )


def split_rows(n_prompts: int, weights: dict, seed: int) -> dict[str, list[int]]:
    """Row numbers of each split, in row order, drawn with ``seed``."""
    import numpy as np

    sizes = split_sizes(n_prompts, weights)
    order = np.random.default_rng(seed).permutation(n_prompts)
    bounds = np.cumsum([0] + [sizes[name] for name in SPLITS])
    return {name: sorted(int(row) for row in order[bounds[i] : bounds[i + 1]]) for i, name in enumerate(SPLITS)}


def write_splits(inputs: dict, outputs: dict, datasets: list[str], splits: dict) -> None:
    """results/splits.json (``splits``): for every dataset (``datasets``, in the order of the sampled
    ``prompts`` files), the sampled rows (and prompt ids) of each split, sized by ``splits`` with its seed."""
    from ..workflow.jsonio import read_jsonl

    weights, seed = splits, splits["seed"]
    rows_by_dataset = {}
    for name, path in zip(datasets, inputs["prompts"], strict=True):
        records = read_jsonl(path)
        rows = split_rows(len(records), weights, seed)
        rows_by_dataset[name] = {split: {"rows": rows[split], "ids": [records[row]["id"] for row in rows[split]]}
                                 for split in SPLITS}  # fmt: skip
    Path(outputs["splits"]).write_text(json.dumps(rows_by_dataset, indent=1, sort_keys=True) + "\n")


def read_split(path: str | Path, dataset: str, split: str):
    """The rows of one dataset's split (a numpy array), as indices into its prompt file and activation
    datasets."""
    import numpy as np

    return np.asarray(json.loads(Path(path).read_text())[dataset][split]["rows"], dtype=int)
