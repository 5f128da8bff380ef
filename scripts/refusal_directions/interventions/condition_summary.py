"""One summary of any run of conditions (condition_runner.py): per condition (and layer), the refusal rate
by the response text, by the refusal score and by either, with Wilson intervals; the mean refusal score with
a bootstrap interval; each intervention's change against no intervention on the same prompts and against
each of its controls, with paired bootstrap intervals; and the mean next-token KL on harmless prompts."""

from __future__ import annotations

import math

import pandas as pd

from ..stats.intervals import change_columns, interval_columns, mean_interval, rate_columns
from .conditions import BASELINES, CONDITIONS, control_kind

JUDGED = (("", "refused"), ("_text", "refused_text"), ("_score", "refused_score"))


def condition_row(name: str, part: pd.DataFrame, compared: dict[str, pd.DataFrame], intervals: dict) -> dict:
    """One condition's row; ``compared``: the parts of the conditions it is compared with, by name."""
    condition = CONDITIONS[name]
    layer = part["layer"].iloc[0]
    row = {"condition": name, "set": condition.prompt_set, "layer": None if pd.isna(layer) else int(layer),
           "n": len(part)}  # fmt: skip
    for suffix, column in JUDGED:
        row.update(rate_columns(f"refusal_rate{suffix}", part[column], intervals["level"]))
    row.update(interval_columns("mean_refusal_score", mean_interval(part["refusal_score"].to_numpy(), **intervals)))
    if condition.intervenes:
        before = compared[condition.compared_with]
        row.update(change_columns("change_rate", part, before, "refused", intervals))
        row.update(change_columns("change_score", part, before, "refusal_score", intervals))
    for control in (c for c in condition.controls if c in compared):
        kind = control_kind(control)
        row.update(change_columns(f"vs_{kind}_rate", part, compared[control], "refused", intervals))
        row.update(change_columns(f"vs_{kind}_score", part, compared[control], "refusal_score", intervals))
    return row


def condition_table(labels: pd.DataFrame, divergences: pd.DataFrame, level: float, n_bootstrap: int,
                    seed: int) -> pd.DataFrame:  # fmt: skip
    """One row per condition without intervention, then per layer one row per condition that ran there,
    in the registry's order; ``labels``: every response judged (judging.refusal.label_responses), ``divergences``:
    the runner's KL rows."""
    intervals = {"n_bootstrap": n_bootstrap, "level": level, "seed": seed}
    order = {name: index for index, name in enumerate(CONDITIONS)}
    baselines = {name: part for name, part in labels.groupby("condition") if name in BASELINES}
    rows = [condition_row(name, baselines[name], {}, intervals) for name in sorted(baselines, key=order.get)]
    for _, at_layer in labels[~labels["condition"].isin(BASELINES)].groupby("layer"):
        parts = {**baselines, **dict(tuple(at_layer.groupby("condition")))}
        names = sorted(set(parts) - set(BASELINES), key=order.get)
        rows += [condition_row(name, parts[name], parts, intervals) for name in names]
    table = pd.DataFrame(rows).astype({"layer": "Int64"})
    kl = {(row.condition, row.layer): row.mean_kl for row in divergences.itertuples()}
    table["mean_kl"] = [kl.get((row.condition, row.layer), math.nan) for row in table.itertuples()]
    return table
