"""Per-model tables: one row per layer with multiple-comparison corrections and validity, the strongest
layers, and the run summary."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

# The output contract: these columns come first, in this order.
LEADING_COLUMNS = [
    "layer",
    "magnitude",
    "cohens_d",
    "t_stat",
    "p_value",
    "log10_p",
    "mean_proj_harmful",
    "mean_proj_harmless",
    "valid",
    "valid_seed_rule",
    "welch_t",
    "welch_log10_p",
    "cohens_d_heldout",
    "log10_p_heldout",
    "d_inflation",
    "null_d_mean",
    "null_d_p99",
    "p_perm",
    "p_holm",
    "d_ci_low",
    "d_ci_high",
    "direction_stability",
    "control_d",
    "d_minus_control",
    "control_cosine",
]


def holm_log10(log10_p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment across layers, in log10 (exact where p underflows); NaN stays NaN and
    is not counted as a test."""
    log10_p = np.asarray(log10_p, dtype=float)
    adjusted = np.full(len(log10_p), np.nan)
    tested = np.flatnonzero(np.isfinite(log10_p))
    order = tested[np.argsort(log10_p[tested], kind="stable")]
    running = -np.inf
    for rank, index in enumerate(order):
        running = max(running, log10_p[index] + math.log10(len(order) - rank))
        adjusted[index] = min(running, 0.0)
    return adjusted


def validation_table(rows: list[dict], alpha: float, d_min: float) -> pd.DataFrame:
    """Layer rows in layer order with Holm-adjusted p-values across layers and both validity rules.

    ``valid``: held-out d > d_min and Holm-adjusted permutation p < alpha (the claim survives fresh prompts
    and a null that refits the direction); ``valid_seed_rule``: the seed experiment's in-sample rule.
    """
    table = pd.DataFrame(rows).sort_values("layer", ignore_index=True)
    table["p_holm"] = 10 ** holm_log10(np.log10(table["p_perm"].astype(float)))
    table["log10_p_holm_parametric"] = holm_log10(table["log10_p"].astype(float))
    heldout = table["cohens_d_heldout"].astype(float)
    table["valid"] = (heldout > d_min) & (table["p_holm"] < alpha)
    table["valid_seed_rule"] = table["valid_seed_rule"].fillna(False).astype(bool)
    rest = [column for column in table.columns if column not in LEADING_COLUMNS]
    return table[LEADING_COLUMNS + rest]


def permutation_floor(n_layers: int, n_permutations: int) -> float:
    """The smallest Holm-adjusted permutation p any layer can reach: n_layers / (K + 1)."""
    return min(1.0, n_layers / (n_permutations + 1))


def top_layers(table: pd.DataFrame, k: int = 10) -> pd.DataFrame:
    """The k layers with the largest |Cohen's d| (undefined d last)."""
    order = table["cohens_d"].abs().fillna(-math.inf).sort_values(ascending=False, kind="stable").index
    return table.loc[order].head(k).reset_index(drop=True)


def strongest_layer(table: pd.DataFrame, column: str = "cohens_d") -> dict | None:
    """The layer with the largest |column|, its value and relative depth (layer / number of layers)."""
    finite = table[np.isfinite(table[column].astype(float))]
    if finite.empty:
        return None
    best = finite.loc[finite[column].abs().idxmax()]
    return {"layer": int(best["layer"]), column: float(best[column]), "relative_depth": int(best["layer"]) / len(table)}
