"""Does the projection on a layer's direction predict refusal? AUROC and point-biserial correlation."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors.numpy import load_file
from scipy.stats import rankdata

from .activations import layer_files, read_layer
from .jsonio import read_jsonl
from .plotting import auroc_figure
from .resampling import percentile_interval

log = logging.getLogger(__name__)

BOOTSTRAP_STREAM = 4
# Fewer refusals (or compliances) than this in a scope: AUROC and its bootstrap interval are reported but
# flagged, and the report draws no conclusion from them.
MIN_CASES = 10


def scarcity_reason(refused: np.ndarray) -> str:
    """Why the prediction statistics of these labels cannot (or can hardly) be trusted; empty if they can."""
    n_refused, n_complied = int(refused.sum()), int((~refused).sum())
    if n_refused == 0:
        return "no refusal to predict"
    if n_complied == 0:
        return "every response is a refusal"
    if min(n_refused, n_complied) < MIN_CASES:
        return f"only {min(n_refused, n_complied)} {'refusals' if n_refused < n_complied else 'compliances'}: too few"
    return ""


def auroc(scores: np.ndarray, refused: np.ndarray) -> float:
    """P(score of a refusal > score of a compliance), ties counting one half (Mann-Whitney U / n1 n0);
    NaN when one of the two outcomes never occurs."""
    n_refused = int(refused.sum())
    n_complied = len(refused) - n_refused
    if n_refused == 0 or n_complied == 0:
        return math.nan
    ranks = rankdata(scores)
    return float((ranks[refused].sum() - n_refused * (n_refused + 1) / 2) / (n_refused * n_complied))


def point_biserial(scores: np.ndarray, refused: np.ndarray) -> float:
    """Pearson correlation between the score and the 0/1 refusal label; NaN when either is constant."""
    if refused.all() or not refused.any() or np.ptp(scores) == 0:
        return math.nan
    return float(np.corrcoef(scores, refused.astype(float))[0, 1])


def bootstrap_interval(statistic, scores: np.ndarray, refused: np.ndarray, n_bootstrap: int, level: float,
                       seed: int) -> tuple[float, float]:  # fmt: skip
    """Percentile interval of ``statistic`` over resamples drawn within each outcome (both stay present)."""
    rng = np.random.default_rng([seed, BOOTSTRAP_STREAM])
    groups = [np.flatnonzero(refused), np.flatnonzero(~refused)]
    if any(len(group) == 0 for group in groups):
        return math.nan, math.nan
    values = np.empty(n_bootstrap)
    for draw in range(n_bootstrap):
        rows = np.concatenate([rng.choice(group, size=len(group)) for group in groups])
        values[draw] = statistic(scores[rows], refused[rows])
    return percentile_interval(values, level)


def prediction_row(scores: np.ndarray, refused: np.ndarray, n_bootstrap: int, level: float, seed: int) -> dict:
    """AUROC and point-biserial r of ``scores`` for ``refused``, each with its bootstrap interval."""
    auc_low, auc_high = bootstrap_interval(auroc, scores, refused, n_bootstrap, level, seed)
    r_low, r_high = bootstrap_interval(point_biserial, scores, refused, n_bootstrap, level, seed)
    return {
        "n": len(refused),
        "n_refused": int(refused.sum()),
        "auroc": auroc(scores, refused),
        "auroc_ci_low": auc_low,
        "auroc_ci_high": auc_high,
        "point_biserial_r": point_biserial(scores, refused),
        "r_ci_low": r_low,
        "r_ci_high": r_high,
    }


SCOPES = {"all prompts": ("harmful", "harmless"), "harmful prompts": ("harmful",)}


def prediction_table(labels: pd.DataFrame, paths: list[Path], units: np.ndarray, n_bootstrap: int, level: float,
                     seed: int) -> pd.DataFrame:  # fmt: skip
    rows = []
    for layer, path in enumerate(paths):
        groups, _ = read_layer(path, ("harmful", "harmless"))
        # Each labelled response's prompt, projected on this layer's direction.
        scores = np.array([groups[s][r] @ units[layer] for s, r in zip(labels["set"], labels["row"], strict=True)])
        refused = labels["refused"].to_numpy(bool)
        for scope, members in SCOPES.items():
            keep = labels["set"].isin(members).to_numpy()
            row = prediction_row(scores[keep], refused[keep], n_bootstrap, level, seed)
            rows.append({"layer": layer, "scope": scope, **row, "reason": scarcity_reason(refused[keep])})
    return pd.DataFrame(rows)


def level_table(prompt_files: dict[str, str], paths: list[Path], units: np.ndarray) -> pd.DataFrame:
    """Mean projection of every sampled prompt by its harm level (datasets with a level column only)."""
    rows = []
    for set_name, prompt_file in prompt_files.items():
        levels = pd.Series([record.get("level") for record in read_jsonl(prompt_file)])
        if levels.isna().all():
            continue
        for layer, path in enumerate(paths):
            groups, _ = read_layer(path, (set_name,))
            projections = pd.Series(groups[set_name] @ units[layer])
            for level_value, part in projections.groupby(levels):
                rows.append({"layer": layer, "set": set_name, "level": level_value, "n": len(part),
                             "mean_projection": part.mean(), "sd_projection": part.std()})  # fmt: skip
    return pd.DataFrame(rows, columns=["layer", "set", "level", "n", "mean_projection", "sd_projection"])


def write_behaviour_analysis(refusals_csv: str, directions: str, manifest: str, prompt_files: dict[str, str],
                             outputs: dict, statistics: dict, title: str, dpi: int) -> None:  # fmt: skip
    """Experiment 1: per layer, how well the projection on the direction predicts refusal (auroc_by_layer.csv
    and .png); Experiment 1a: mean projection by harm level (projection_by_level.csv)."""
    labels = pd.read_csv(refusals_csv)
    units = load_file(directions)["unit_directions"].astype(np.float64)
    paths = layer_files(manifest)
    n_bootstrap, level, seed = statistics["n_bootstrap"], statistics["ci_level"], statistics["seed"]
    table = prediction_table(labels, paths, units, n_bootstrap, level, seed)
    table.to_csv(outputs["auroc"], index=False)
    auroc_figure(table, title, statistics["ci_level"]).savefig(outputs["figure"], dpi=dpi)
    level_table(prompt_files, paths, units).to_csv(outputs["levels"], index=False)
    log.info("refusals: %d of %d responses", int(labels["refused"].sum()), len(labels))
