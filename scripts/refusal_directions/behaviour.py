"""Does the projection on a layer's direction predict refusal? AUROC and point-biserial correlation."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata

from .resampling import percentile_interval

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
