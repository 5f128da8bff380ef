"""Everything the workflow reports about one layer: in-sample, held-out, null, intervals, control."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from safetensors.numpy import save_file

from ..data.splits import read_split
from ..model.activations import read_layer
from ..workflow.errors import UserError
from ..workflow.jsonio import write_json
from ..workflow.permissions import as_new_file
from .difference_in_means import layer_statistics
from .resampling import Contrast, bootstrap, cross_fitted, percentile_interval, permutation_null, permutation_pvalue

log = logging.getLogger(__name__)

RESAMPLED_KEYS = (
    "cohens_d_heldout", "t_heldout", "p_heldout", "log10_p_heldout", "d_inflation", "null_d_mean", "null_d_p99",
    "p_perm", "n_permutations", "d_ci_low", "d_ci_high", "d_heldout_ci_low", "d_heldout_ci_high",
    "direction_stability",
)  # fmt: skip
CONTROL_KEYS = (
    "control_d", "control_d_heldout", "control_magnitude", "d_minus_control", "d_heldout_minus_control",
    "control_cosine",
)  # fmt: skip


@dataclass(frozen=True)
class StatsSettings:
    """What the per-layer numbers depend on; the thresholds that turn them into verdicts are not here."""

    n_folds: int
    n_permutations: int
    n_bootstrap: int
    ci_level: float
    seed: int


def _check_sizes(groups: dict[str, np.ndarray], n_folds: int) -> None:
    for name, rows in groups.items():
        if len(rows) < max(n_folds, 2):
            raise UserError(
                f"prompt set '{name}' has {len(rows)} prompts; n_folds = {n_folds} needs at least that many"
            )


def resampled_statistics(
    a: np.ndarray, b: np.ndarray, observed_d: float, settings: StatsSettings
) -> tuple[dict, np.ndarray]:
    """Held-out effect, permutation null and bootstrap intervals of the contrast a - b."""
    contrast = Contrast.of(a, b)
    held_out = cross_fitted(contrast, settings.n_folds, settings.seed)
    null = permutation_null(contrast, settings.n_permutations, settings.seed)
    resamples = bootstrap(contrast, settings.n_bootstrap, settings.seed)
    ci_low, ci_high = percentile_interval(resamples.in_sample_d, settings.ci_level)
    heldout_low, heldout_high = percentile_interval(resamples.out_of_bag_d, settings.ci_level)
    row = {
        **held_out,
        "d_inflation": observed_d - held_out["cohens_d_heldout"],
        "null_d_mean": float(null.mean()),
        "null_d_p99": float(np.percentile(null, 99)),
        "p_perm": permutation_pvalue(observed_d, null),
        "n_permutations": len(null),
        "d_ci_low": ci_low,
        "d_ci_high": ci_high,
        "d_heldout_ci_low": heldout_low,
        "d_heldout_ci_high": heldout_high,
        "direction_stability": resamples.mean_cosine,
    }
    return row, null


def control_statistics(control_a: np.ndarray, control_b: np.ndarray, main_unit: np.ndarray, main: dict,
                       settings: StatsSettings) -> dict:  # fmt: skip
    """The form-only contrast through the same estimators: the baseline the main effect has to beat."""
    row, unit, _ = layer_statistics(control_a, control_b)
    held_out = cross_fitted(Contrast.of(control_a, control_b), settings.n_folds, settings.seed)
    cosine = float(unit @ main_unit) if np.isfinite(unit).all() and np.isfinite(main_unit).all() else math.nan
    return {
        "control_d": row["cohens_d"],
        "control_d_heldout": held_out["cohens_d_heldout"],
        "control_magnitude": row["magnitude"],
        "d_minus_control": main["cohens_d"] - row["cohens_d"],
        "d_heldout_minus_control": main["cohens_d_heldout"] - held_out["cohens_d_heldout"],
        "control_cosine": cosine,
    }


def analyse_layer(groups: dict[str, np.ndarray], settings: StatsSettings, control: tuple[str, str] | None):
    """One layer's row, its unit direction, raw difference in means and permutation null.

    ``groups`` maps prompt-set names to activations; the main contrast is harmful - harmless.
    """
    _check_sizes(groups, settings.n_folds)
    harmful, harmless = groups["harmful"], groups["harmless"]
    row, unit, diff = layer_statistics(harmful, harmless)
    row.update(dict.fromkeys(RESAMPLED_KEYS + CONTROL_KEYS, math.nan))
    if row["reason"]:  # no direction or no variance: nothing to resample
        return row, unit, diff, np.empty(0)
    resampled, null = resampled_statistics(harmful, harmless, row["cohens_d"], settings)
    row.update(resampled)
    if control:
        row.update(control_statistics(groups[control[0]], groups[control[1]], unit, row, settings))
    return row, unit, diff, null


def write_layer_statistics(inputs: dict, outputs: dict, statistics: dict, control: dict | None) -> None:
    """One layer's statistics on the train split of ``splits``, as JSON (``stats``), and its permutation null
    of d as safetensors (``null``), from its ``activations`` file; ``statistics``: StatsSettings' fields,
    ``control``: the control contrast's sets ``a`` and ``b``, if any."""
    settings = StatsSettings(**statistics)
    contrast = (control["a"], control["b"]) if control else None
    names = ("harmful", "harmless", *(contrast or ()))
    groups, attrs = read_layer(inputs["activations"], names)
    groups = {name: values[read_split(inputs["splits"], name, "train")] for name, values in groups.items()}
    row, _, _, null = analyse_layer(groups, settings, contrast)
    row = {"layer": int(attrs["layer"]), **row}
    write_json(outputs["stats"], row)
    save_file({"null_d": null.astype(np.float32)}, outputs["null"])
    as_new_file(outputs["null"])
    log.info(
        "layer %d: d = %.3f, held-out d = %.3f, permutation p = %.2g",
        row["layer"], row["cohens_d"], row.get("cohens_d_heldout", math.nan), row.get("p_perm", math.nan),
    )  # fmt: skip
