"""Per-model tables: one row per layer with multiple-comparison corrections and validity, the strongest
layers, and the run summary. Every verdict (alpha, d_min) is made here, from the per-layer numbers."""

from __future__ import annotations

import logging
import math
import pickle
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import pandas as pd
from safetensors.numpy import load_file

from ..data.splits import split_sizes
from ..model.activations import LAYER_CONVENTION
from ..workflow.jsonio import read_json, write_json
from .holm_floor import holm_floor_warning, permutation_floor

log = logging.getLogger(__name__)
SUMMARY_PACKAGES = ("numpy", "scipy", "pandas", "h5py", "mpmath", "safetensors", "snakemake")

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
    and a null that refits the direction); ``valid_seed_rule``: the seed experiment's in-sample rule, p < alpha
    and |d| > d_min on the prompts that built the direction.
    """
    table = pd.DataFrame(rows).sort_values("layer", ignore_index=True)
    table["p_holm"] = 10 ** holm_log10(np.log10(table["p_perm"].astype(float)))
    table["log10_p_holm_parametric"] = holm_log10(table["log10_p"].astype(float))
    heldout = table["cohens_d_heldout"].astype(float)
    table["valid"] = (heldout > d_min) & (table["p_holm"] < alpha)
    in_sample_d = table["cohens_d"].astype(float)
    table["valid_seed_rule"] = (table["log10_p"].astype(float) < math.log10(alpha)) & (in_sample_d.abs() > d_min)
    rest = [column for column in table.columns if column not in LEADING_COLUMNS]
    return table[LEADING_COLUMNS + rest]


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


def _installed(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def write_tables(
    inputs: dict,
    outputs: dict[str, str],
    model: dict,
    statistics: dict,
    thresholds: dict,
    splits: dict,
    control: dict | None,
    config_hash: str,
) -> None:
    """validation_results.csv, top10_layers.csv, summary.json and validated_directions.pkl of one model, from
    its layers' ``stats``, the extraction's ``manifest`` and the ``directions``."""
    alpha, d_min = thresholds["alpha"], thresholds["d_min"]
    manifest = read_json(inputs["manifest"])
    table = validation_table([read_json(path) for path in inputs["stats"]], alpha, d_min)
    table.to_csv(outputs["validation"], index=False)
    top_layers(table).to_csv(outputs["top10"], index=False)

    units = load_file(inputs["directions"])["unit_directions"]
    valid_layers = [int(layer) for layer in table.loc[table["valid"], "layer"]]
    with open(outputs["pickle"], "wb") as handle:
        pickle.dump({layer: units[layer].copy() for layer in valid_layers}, handle, protocol=4)

    n_permutations = statistics["n_permutations"]
    floor = permutation_floor(len(table), n_permutations)
    warning = holm_floor_warning(len(table), n_permutations, alpha)
    if warning:
        log.warning(warning)
    summary = {
        "model": {"slug": model["slug"], "id": model["id"], "weights_revision": manifest["weights_revision"]},
        "dtype": manifest["dtype"],
        "n_harmful": int(table["n_harmful"].iloc[0]),
        "n_harmless": int(table["n_harmless"].iloc[0]),
        "n_sampled": {"harmful": manifest["sets"]["harmful"], "harmless": manifest["sets"]["harmless"]},
        "splits": {
            **split_sizes(manifest["sets"]["harmful"], splits),
            "seed": splits["seed"],
            "statistics_on": "train",
        },  # fmt: skip
        "n_layers": manifest["n_layers"],
        "d_model": manifest["d_model"],
        "layer_convention": LAYER_CONVENTION,
        "valid_rule": "held-out Cohen's d > d_min and Holm-adjusted permutation p < alpha",
        "valid_layers": valid_layers,
        "n_valid_layers": len(valid_layers),
        "valid_seed_rule_layers": [int(layer) for layer in table.loc[table["valid_seed_rule"], "layer"]],
        "strongest_layer": strongest_layer(table, "cohens_d"),
        "strongest_heldout_layer": strongest_layer(table, "cohens_d_heldout"),
        "thresholds": {"alpha": alpha, "d_min": d_min},
        "statistics": statistics,
        "smallest_attainable_p_holm": floor,
        "control": control,
        "n_control": {
            role: split_sizes(manifest["sets"][name], splits)["train"] for role, name in (control or {}).items()
        },
        "package_versions": {**manifest["package_versions"], **{p: _installed(p) for p in SUMMARY_PACKAGES}},
        "config_hash": config_hash,
    }
    write_json(outputs["summary"], summary)
    log.info("%d of %d layers valid; strongest %s", len(valid_layers), len(table), summary["strongest_layer"])
