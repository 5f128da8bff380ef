"""The facts of the report's direction analysis (header, summary, method, results, layer patterns), read from
summary.json, validation_results.csv and top10_layers.csv: rows selected and counted, nothing estimated."""

from __future__ import annotations

import math
from itertools import pairwise

import pandas as pd


def bands(n_layers: int) -> list[tuple[str, range]]:
    """Early, middle and late thirds of the depth."""
    cuts = [0, round(n_layers / 3), round(2 * n_layers / 3), n_layers]
    names = ("Early", "Middle", "Late")
    return [(name, range(cuts[i], cuts[i + 1])) for i, name in enumerate(names) if cuts[i] < cuts[i + 1]]


def _extent(values: pd.Series) -> tuple[float, float]:
    """The smallest and the largest value of a column over some layers."""
    return float(values.min()), float(values.max())


def _clearly_beats_control(table: pd.DataFrame) -> pd.Series:
    """Layers whose held-out effect exceeds the control's beyond sampling error: the control's held-out d
    lies below the lower end of the main held-out d's bootstrap interval."""
    return table["control_d_heldout"] < table["d_heldout_ci_low"]


def band_facts(table: pd.DataFrame, n_layers: int) -> list[dict]:
    rows = []
    for name, layers in bands(n_layers):
        part = table[table["layer"].isin(layers)]
        rows.append(
            {
                "name": name,
                "first": layers.start,
                "last": layers.stop - 1,
                "n": len(part),
                "d": _extent(part["cohens_d"]),
                "d_heldout": _extent(part["cohens_d_heldout"]),
                # The one aggregate in the report: a description of the band's rows, not an estimate.
                "mean_inflation": float(part["d_inflation"].mean()),
                "n_seed_rule": int(part["valid_seed_rule"].sum()),
                "n_valid": int(part["valid"].sum()),
                "control_d_heldout": _extent(part["control_d_heldout"]),
                "n_beat_control": int(_clearly_beats_control(part).sum()),
                "d_heldout_minus_control": _extent(part["d_heldout_minus_control"]),
            }
        )
    return rows


def trend_facts(table: pd.DataFrame) -> dict:
    """How held-out d moves with depth: the steps in which it rises between layers with a defined d."""
    finite = [value for value in table["cohens_d_heldout"] if math.isfinite(value)]
    return {
        "n_defined": len(finite),
        "n_steps": len(finite) - 1,
        "n_rising": sum(b > a for a, b in pairwise(finite)),
        "first_magnitude": float(table["magnitude"].iloc[0]),
        "last_magnitude": float(table["magnitude"].iloc[-1]),
    }


def records(table: pd.DataFrame) -> list[dict]:
    """Rows as plain Python values (the templates print ints as they are and format every float)."""
    return table.to_dict("records")


def direction_facts(
    summary: dict, table: pd.DataFrame, top: pd.DataFrame, datasets: dict, sampling_seed: int, title: str
) -> dict:
    has_control = bool(table["control_d"].notna().any())
    survivors = table[table["valid"]]
    undefined = table[table["reason"].fillna("") != ""]
    return {
        "title": title,
        "summary": summary,
        "n_seed_rule": len(summary["valid_seed_rule_layers"]),
        "sources": {name: spec["source"] for name, spec in datasets.items()},
        "sampling_seed": sampling_seed,
        "has_control": has_control,
        "beating_control": [int(layer) for layer in survivors[_clearly_beats_control(survivors)]["layer"]],
        "top": records(top),
        "bands": band_facts(table, summary["n_layers"]),
        "trend": trend_facts(table),
        "undefined": [{"layer": int(row.layer), "reason": row.reason} for row in undefined.itertuples()],
    }
