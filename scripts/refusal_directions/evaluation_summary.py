"""The selected direction's evaluation as a table: per condition, the refusal rate (by the response text, by
the refusal score, by either) with Wilson intervals and the mean refusal score with a bootstrap interval;
each intervention's change against no intervention and against each control on the same prompts, with
paired bootstrap intervals; and the next-token KL on harmless prompts."""

from __future__ import annotations

import pandas as pd

from .intervals import change_columns, interval_columns, mean_interval, rate_columns
from .jsonio import read_jsonl
from .refusal import label_responses

# Each intervention: the condition without intervention on the same prompts, and its two controls.
COMPARED = {
    "ablation": ("baseline harmful", ("random ablation", "control ablation")),
    "addition": ("baseline harmless", ("random addition", "control addition")),
}


def evaluation_table(labels: pd.DataFrame, divergences: pd.DataFrame, level: float, n_bootstrap: int,
                     seed: int) -> pd.DataFrame:  # fmt: skip
    intervals = {"n_bootstrap": n_bootstrap, "level": level, "seed": seed}
    by_condition = {condition: part for condition, part in labels.groupby("condition", sort=False)}
    kl = divergences.set_index("condition")["mean_kl"] if len(divergences) else pd.Series(dtype=float)
    rows = []
    for condition, part in by_condition.items():
        row = {"condition": condition, "set": part["set"].iloc[0], "n": len(part)}
        for suffix, column in (("", "refused"), ("_text", "refused_text"), ("_score", "refused_score")):
            row.update(rate_columns(f"refusal_rate{suffix}", part[column], level))
        row.update(interval_columns("mean_refusal_score", mean_interval(part["refusal_score"].to_numpy(), **intervals)))
        for intervention, (baseline, controls) in COMPARED.items():
            if condition == baseline or condition not in (intervention, *controls):
                continue
            before = by_condition[baseline]
            row.update(change_columns("change_rate", part, before, "refused", intervals))
            row.update(change_columns("change_score", part, before, "refusal_score", intervals))
            if condition == intervention:
                for control in (c for c in controls if c in by_condition):
                    kind = control.split()[0]
                    control_part = by_condition[control]
                    row.update(change_columns(f"vs_{kind}_rate", part, control_part, "refused", intervals))
                    row.update(change_columns(f"vs_{kind}_score", part, control_part, "refusal_score", intervals))
        row["mean_kl"] = kl.get(condition, float("nan"))
        rows.append(row)
    return pd.DataFrame(rows)


def summarize_evaluation(inputs: dict, outputs: dict, refusal: dict, intervals: dict) -> None:
    """evaluation_labels.csv (every response judged, text and score) and evaluation.csv."""
    labels = label_responses(read_jsonl(inputs["generations"]), refusal)
    labels.to_csv(outputs["labels"], index=False)
    table = evaluation_table(labels, pd.read_csv(inputs["kl"]), intervals["ci_level"], intervals["n_bootstrap"],
                             intervals["seed"])  # fmt: skip
    table.to_csv(outputs["table"], index=False)
