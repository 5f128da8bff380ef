"""Experiment 2: refusal rates per layer and condition, with the next-token KL, as a table and a figure."""

from __future__ import annotations

import pandas as pd

from .jsonio import read_jsonl
from .plotting import interventions_figure
from .refusal import label_responses

RATE_CONDITIONS = ("ablation_all", "ablation_layer", "random_ablation_all", "addition", "random_addition")


def sweep_table(labels: pd.DataFrame, divergences: pd.DataFrame) -> pd.DataFrame:
    """One row per layer: baseline refusal rates, each condition's refusal rate, and KL divergences."""
    baseline = labels[labels["condition"] == "baseline"]
    rates = labels[labels["condition"] != "baseline"].pivot_table(
        index="layer", columns="condition", values="refused", aggfunc="mean"
    )
    table = pd.DataFrame({"layer": rates.index.astype(int)})
    table["n_harmful"] = int((baseline["set"] == "harmful").sum())
    table["n_harmless"] = int((baseline["set"] == "harmless").sum())
    table["refusal_baseline_harmful"] = baseline.loc[baseline["set"] == "harmful", "refused"].mean()
    table["refusal_baseline_harmless"] = baseline.loc[baseline["set"] == "harmless", "refused"].mean()
    for condition in RATE_CONDITIONS:
        table[f"refusal_{condition}"] = rates[condition].to_numpy()
    kl = divergences.pivot_table(index="layer", columns="condition", values="mean_kl")
    for condition in kl.columns:
        table[f"kl_{condition}"] = kl.loc[table["layer"], condition].to_numpy()
    return table


def summarize_interventions(generations: str, kl_csv: str, outputs: dict, refusal: dict, title: str, dpi: int) -> None:
    """labels.csv (every response judged), sweep.csv and sweep.png."""
    labels = label_responses(read_jsonl(generations), refusal)
    labels.to_csv(outputs["labels"], index=False)
    table = sweep_table(labels, pd.read_csv(kl_csv))
    table.to_csv(outputs["sweep"], index=False)
    interventions_figure(table, title).savefig(outputs["figure"], dpi=dpi)
