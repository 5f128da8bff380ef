"""Draw n prompts of one dataset with a seed."""

from __future__ import annotations

from ..prompts import read_jsonl, sample_records, write_jsonl


def main(name: str, dataset_path: str, output: str, n_samples: int, seed: int) -> None:
    write_jsonl(output, sample_records(read_jsonl(dataset_path), n_samples, seed, name))
