"""Experiment 2 as a table and a figure: the condition summary (condition_summary.py) laid out with one row
per layer: the refusal rates without intervention and under each condition with Wilson intervals, each
condition's change in refusal rate and in mean refusal score against no intervention on the same prompts,
each intervention's change against each of its controls, with paired bootstrap intervals, and the mean
next-token KL on harmless prompts."""

from __future__ import annotations

import pandas as pd

from ..judging.refusal import label_responses, read_judgements
from ..stats.intervals import interval_columns
from ..workflow.jsonio import read_jsonl
from .condition_summary import condition_table
from .conditions import BASELINES, CONDITIONS, INTERVENTIONS, control_kind
from .figures import interventions_figure


def _interval(row, prefix: str) -> tuple[float, float, float]:
    return row[prefix], row[f"{prefix}_ci_low"], row[f"{prefix}_ci_high"]


def _layer_row(layer: int, conditions: pd.DataFrame, baselines: pd.DataFrame) -> dict:
    row = {"layer": int(layer), **{f"n_{r.set}": int(r.n) for r in baselines.itertuples()}}
    for name, baseline in baselines.iterrows():
        row.update(interval_columns(f"refusal_{name}", _interval(baseline, "refusal_rate")))
    for intervention in INTERVENTIONS:
        group = [name for name in CONDITIONS if CONDITIONS[name].prompt_set == CONDITIONS[intervention].prompt_set]
        for name in (n for n in group if n in conditions.index and n not in BASELINES):
            part = conditions.loc[name]
            row.update(interval_columns(f"refusal_{name}", _interval(part, "refusal_rate")))
            row.update(interval_columns(f"change_{name}", _interval(part, "change_rate")))
            row.update(interval_columns(f"score_change_{name}", _interval(part, "change_score")))
        for control in (c for c in CONDITIONS[intervention].controls if c in conditions.index):
            compared = _interval(conditions.loc[intervention], f"vs_{control_kind(control)}_rate")
            row.update(interval_columns(f"{intervention}_vs_{control}", compared))
    for name in conditions.index:
        if CONDITIONS[name].records_kl:
            row[f"kl_{name}"] = conditions.loc[name, "mean_kl"]
    return row


def sweep_table(labels: pd.DataFrame, divergences: pd.DataFrame, level: float, n_bootstrap: int,
                seed: int) -> pd.DataFrame:  # fmt: skip
    """One row per layer of the sweep, from the condition summary of every response."""
    table = condition_table(labels, divergences, level, n_bootstrap, seed)
    baselines = table[table["condition"].isin(BASELINES)].set_index("condition")
    at_layers = table[~table["condition"].isin(BASELINES)]
    rows = [_layer_row(layer, part.set_index("condition"), baselines) for layer, part in at_layers.groupby("layer")]
    return pd.DataFrame(rows)


def summarize_interventions(inputs: dict, outputs: dict, refusal: dict, intervals: dict, title: str, dpi: int) -> None:
    """labels.csv (every response judged), sweep.csv and sweep.png."""
    labels = label_responses(read_jsonl(inputs["generations"]), refusal, read_judgements(inputs.get("judgements", [])))
    labels.to_csv(outputs["labels"], index=False)
    level, n_bootstrap, seed = intervals["ci_level"], intervals["n_bootstrap"], intervals["seed"]
    table = sweep_table(labels, pd.read_csv(inputs["kl"]), level, n_bootstrap, seed)
    table.to_csv(outputs["sweep"], index=False)
    interventions_figure(table, title).savefig(outputs["figure"], dpi=dpi)
