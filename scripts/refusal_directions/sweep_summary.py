"""Experiment 2: refusal rates per layer and condition with their intervals, the change each condition makes
on the same prompts (with its interval), and the next-token KL, as a table and a figure."""

from __future__ import annotations

import pandas as pd

from .intervals import change_columns, rate_columns
from .jsonio import read_jsonl
from .plotting import interventions_figure
from .refusal import label_responses

ABLATIONS = ("ablation_all", "ablation_layer", "random_ablation_all", "control_ablation_all")
ADDITIONS = ("addition", "random_addition", "control_addition")


def sweep_table(labels: pd.DataFrame, divergences: pd.DataFrame, level: float, n_bootstrap: int,
                seed: int) -> pd.DataFrame:  # fmt: skip
    """One row per layer: the refusal rate without intervention and under each condition (ablations on
    harmful prompts, additions on harmless prompts) with Wilson intervals; each condition's change in
    refusal rate and in mean refusal score against no intervention on the same prompts, and the direction's
    change against each control's, with paired bootstrap intervals; the mean next-token KL on harmless
    prompts."""
    intervals = {"n_bootstrap": n_bootstrap, "level": level, "seed": seed}
    baseline = {name: part for name, part in labels[labels["condition"] == "baseline"].groupby("set")}
    rows = []
    for layer, at_layer in labels[labels["condition"] != "baseline"].groupby("layer"):
        by_condition = {condition: part for condition, part in at_layer.groupby("condition")}
        row = {"layer": int(layer), "n_harmful": len(baseline["harmful"]), "n_harmless": len(baseline["harmless"])}
        for name in ("harmful", "harmless"):
            row.update(rate_columns(f"refusal_baseline_{name}", baseline[name]["refused"], level))
        for conditions, name in ((ABLATIONS, "harmful"), (ADDITIONS, "harmless")):
            for condition in (c for c in conditions if c in by_condition):
                part, before = by_condition[condition], baseline[name]
                row.update(rate_columns(f"refusal_{condition}", part["refused"], level))
                row.update(change_columns(f"change_{condition}", part, before, "refused", intervals))
                row.update(change_columns(f"score_change_{condition}", part, before, "refusal_score", intervals))
            direction = by_condition[conditions[0]]
            for control in (c for c in conditions if c.startswith(("random_", "control_")) and c in by_condition):
                row.update(change_columns(f"{conditions[0]}_vs_{control}", direction, by_condition[control], "refused",
                                          intervals))  # fmt: skip
        rows.append(row)
    table = pd.DataFrame(rows)
    kl = divergences.pivot_table(index="layer", columns="condition", values="mean_kl")
    for condition in kl.columns:
        table[f"kl_{condition}"] = kl.loc[table["layer"], condition].to_numpy()
    return table


def summarize_interventions(inputs: dict, outputs: dict, refusal: dict, intervals: dict, title: str, dpi: int) -> None:
    """labels.csv (every response judged), sweep.csv and sweep.png."""
    labels = label_responses(read_jsonl(inputs["generations"]), refusal)
    labels.to_csv(outputs["labels"], index=False)
    level, n_bootstrap, seed = intervals["ci_level"], intervals["n_bootstrap"], intervals["seed"]
    table = sweep_table(labels, pd.read_csv(inputs["kl"]), level, n_bootstrap, seed)
    table.to_csv(outputs["sweep"], index=False)
    interventions_figure(table, title).savefig(outputs["figure"], dpi=dpi)
