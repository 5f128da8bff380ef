"""Per-model tables: one row per layer, the strongest layers, and the run summary."""

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
]


def validation_table(rows: list[dict]) -> pd.DataFrame:
    """Layer rows in layer order; ``valid`` applies the seed's rule (p < alpha and |d| > d_min)."""
    table = pd.DataFrame(rows).sort_values("layer", ignore_index=True)
    table["valid"] = table["valid_seed_rule"].astype(bool)
    rest = [column for column in table.columns if column not in LEADING_COLUMNS]
    return table[LEADING_COLUMNS + rest]


def top_layers(table: pd.DataFrame, k: int = 10) -> pd.DataFrame:
    """The k layers with the largest |Cohen's d| (undefined d last)."""
    order = table["cohens_d"].abs().fillna(-math.inf).sort_values(ascending=False, kind="stable").index
    return table.loc[order].head(k).reset_index(drop=True)


def strongest_layer(table: pd.DataFrame) -> dict | None:
    finite = table[np.isfinite(table["cohens_d"])]
    if finite.empty:
        return None
    best = finite.loc[finite["cohens_d"].abs().idxmax()]
    return {"layer": int(best["layer"]), "cohens_d": float(best["cohens_d"]), "relative_depth": None}
