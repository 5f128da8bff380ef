"""The facts of the report's direction-methods section, read from comparison.csv (method_comparison.py): each
method's row and, for each method besides mean_diff, which of its paired differences from mean_diff exclude
zero (the interval is beyond the sampling error) and which do not."""

from __future__ import annotations

import math

import pandas as pd

from ..stats.direction_methods import MEAN_DIFF, METHODS
from .facts import records
from .method_comparison import HOOKS_ONLY, VERSUS

# What each paired difference compares, in the report's words.
COMPARED = {
    "vs_mean_diff_bypass": "the harmful refusal rate under ablation",
    "vs_mean_diff_induce": "the harmless refusal rate under addition",
    "vs_mean_diff_cross_entropy": "the cross-entropy under ablation",
}


def beyond_interval(row: dict, column: str) -> bool | None:
    """Whether a difference's interval excludes zero (None where it was not measured)."""
    low, high = row[f"{column}_ci_low"], row[f"{column}_ci_high"]
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    return low > 0 or high < 0


def method_facts(comparison: pd.DataFrame) -> dict:
    rows = records(comparison)
    verdicts = []
    for row in (r for r in rows if r["method"] != MEAN_DIFF):
        measured = {column: beyond_interval(row, column) for column in VERSUS}
        verdicts.append({
            "method": row["method"], "row": row,
            "differs": [{"what": COMPARED[c], "column": c} for c, beyond in measured.items() if beyond],
            "same": [COMPARED[c] for c, beyond in measured.items() if beyond is False],
        })  # fmt: skip
    return {
        "rows": rows,
        "verdicts": verdicts,
        "papers": {name: method.paper for name, method in METHODS.items() if name in set(comparison["method"])},
        "has_cost": bool(comparison["cross_entropy_change"].notna().any()),
        "hooks_only": [row["method"] for row in rows if row["export"] == HOOKS_ONLY],
        "hooks_only_reason": HOOKS_ONLY,
    }
