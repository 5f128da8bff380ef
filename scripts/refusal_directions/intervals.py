"""Intervals for refusal rates and their differences: Wilson's score interval for a rate, a paired
bootstrap over prompts for the difference between two conditions on the same prompts."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from .resampling import percentile_interval

BOOTSTRAP_STREAM = 5


def wilson_interval(successes: int, n: int, level: float) -> tuple[float, float]:
    """Wilson's score interval of a proportion (sound at 0 and n, unlike the normal approximation)."""
    if n == 0:
        return math.nan, math.nan
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_difference(after: np.ndarray, before: np.ndarray, n_bootstrap: int, level: float,
                      seed: int) -> tuple[float, float, float]:  # fmt: skip
    """mean(after) - mean(before) over the same prompts, with a percentile interval from resampling the
    prompts (pairs stay together)."""
    after, before = np.asarray(after, dtype=float), np.asarray(before, dtype=float)
    if len(after) == 0:
        return math.nan, math.nan, math.nan
    differences = after - before
    rng = np.random.default_rng([seed, BOOTSTRAP_STREAM])
    draws = rng.integers(0, len(differences), (n_bootstrap, len(differences)))
    low, high = percentile_interval(differences[draws].mean(axis=1), level)
    return float(differences.mean()), low, high


def mean_interval(values: np.ndarray, n_bootstrap: int, level: float, seed: int) -> tuple[float, float, float]:
    """The mean of ``values`` with a bootstrap percentile interval."""
    return paired_difference(values, np.zeros(len(values)), n_bootstrap, level, seed)
