"""The selected direction's evaluation as a table: one row per condition (condition_summary.py)."""

from __future__ import annotations

import pandas as pd

from .condition_summary import condition_table
from .jsonio import read_jsonl
from .refusal import label_responses


def summarize_evaluation(inputs: dict, outputs: dict, refusal: dict, intervals: dict) -> None:
    """evaluation_labels.csv (every response judged, text and score) and evaluation.csv."""
    labels = label_responses(read_jsonl(inputs["generations"]), refusal)
    labels.to_csv(outputs["labels"], index=False)
    table = condition_table(
        labels, pd.read_csv(inputs["kl"]), intervals["ci_level"], intervals["n_bootstrap"], intervals["seed"]
    )
    table.to_csv(outputs["table"], index=False)
