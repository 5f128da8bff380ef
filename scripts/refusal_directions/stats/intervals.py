"""Intervals for refusal rates and their differences: Wilson's score interval for a rate, a paired
bootstrap over prompts for the difference between two conditions on the same prompts."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy.stats import binomtest

from .resampling import percentile_interval

if TYPE_CHECKING:
    import pandas as pd

BOOTSTRAP_STREAM = 5


def wilson_interval(successes: int, n: int, level: float) -> tuple[float, float]:
    """Wilson's score interval of a proportion (sound at 0 and n, unlike the normal approximation); scipy
    puts its ends at exactly 0 and 1 when no or every prompt succeeds."""
    if n == 0:  # binomtest refuses n = 0: no prompts, no interval
        return math.nan, math.nan
    interval = binomtest(successes, n).proportion_ci(confidence_level=level, method="wilson")
    return float(interval.low), float(interval.high)


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


def interval_columns(prefix: str, values: tuple[float, float, float]) -> dict:
    """A value and its interval as table columns ``prefix``, ``prefix_ci_low``, ``prefix_ci_high``."""
    return dict(zip((prefix, f"{prefix}_ci_low", f"{prefix}_ci_high"), values, strict=True))


def rate_columns(prefix: str, refused: pd.Series, level: float) -> dict:
    """A refusal rate with its Wilson interval."""
    return interval_columns(prefix, (refused.mean(), *wilson_interval(int(refused.sum()), len(refused), level)))


def change_columns(prefix: str, after: pd.DataFrame, before: pd.DataFrame, column: str, intervals: dict) -> dict:
    """after - before on the prompts both hold (matched by row), with a paired bootstrap interval."""
    paired = after.set_index("row")[column].astype(float).align(before.set_index("row")[column].astype(float), "inner")
    return interval_columns(prefix, paired_difference(paired[0].to_numpy(), paired[1].to_numpy(), **intervals))
