"""The selected direction's evaluation as a table: one row per condition (interventions/condition_summary.py)."""

from __future__ import annotations

import pandas as pd

from ..interventions.condition_summary import condition_table
from ..judging.refusal import label_responses, read_judgements
from ..workflow.jsonio import read_jsonl


def summarize_evaluation(inputs: dict, outputs: dict, refusal: dict, intervals: dict) -> None:
    """evaluation_labels.csv (every response judged, text and score) and evaluation.csv, from the evaluation's
    responses and KL and, when the edited model is exported, its check's (the condition ``edited_model``)."""
    generations = [record for path in inputs["generations"] for record in read_jsonl(path)]
    labels = label_responses(generations, refusal, read_judgements(inputs.get("judgements", [])))
    labels.to_csv(outputs["labels"], index=False)
    divergences = pd.concat([pd.read_csv(path) for path in inputs["kl"]], ignore_index=True)
    table = condition_table(labels, divergences, intervals["ci_level"], intervals["n_bootstrap"], intervals["seed"])
    table.to_csv(outputs["table"], index=False)
