"""Difference-in-means direction, Cohen's d and t-tests for one layer, with exact log10 p-values."""

from __future__ import annotations

import math

import mpmath
import numpy as np

# Below this a double loses precision (subnormal) and soon underflows to 0: p is reported via log10 only.
SMALLEST_NORMAL = np.finfo(np.float64).tiny
# Projections whose pooled SD is this small relative to their scale count as constant.
RELATIVE_ZERO_SD = 1e-12


def log10_t_pvalue(t: float, df: float) -> float:
    """log10 of the two-sided p-value of Student's t with ``df`` degrees of freedom, exact far below 1e-308.

    p = I_x(df/2, 1/2) with x = df / (df + t^2) (regularised incomplete beta), evaluated by mpmath
    with an unbounded exponent, so the result stays finite where scipy's p underflows to 0.
    """
    if not (math.isfinite(t) and df > 0):
        return math.nan
    x = mpmath.mpf(df) / (mpmath.mpf(df) + mpmath.mpf(t) ** 2)
    with mpmath.workdps(30):
        return float(mpmath.log10(mpmath.betainc(mpmath.mpf(df) / 2, 0.5, 0, x, regularized=True)))


def pvalue_from_log10(log10_p: float) -> float:
    """The p-value as a double, or NaN where it is below the normal double range (use log10_p there)."""
    if not math.isfinite(log10_p):
        return math.nan
    p = 10.0**log10_p
    return p if p >= SMALLEST_NORMAL else math.nan


def pooled_sd(x: np.ndarray, y: np.ndarray) -> float:
    n1, n2 = len(x), len(y)
    return math.sqrt(((n1 - 1) * x.var(ddof=1) + (n2 - 1) * y.var(ddof=1)) / (n1 + n2 - 2))


def _is_constant(sd: float, x: np.ndarray, y: np.ndarray) -> bool:
    scale = max(np.abs(x).max(initial=0.0), np.abs(y).max(initial=0.0))
    return sd <= RELATIVE_ZERO_SD * scale or sd == 0.0


def cohens_d(x: np.ndarray, y: np.ndarray) -> float:
    """(mean x - mean y) / pooled SD; NaN when the pooled SD is zero."""
    sd = pooled_sd(x, y)
    return math.nan if _is_constant(sd, x, y) else float((x.mean() - y.mean()) / sd)


def student_t(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Independent-samples t statistic with pooled variance, and its degrees of freedom."""
    n1, n2 = len(x), len(y)
    sd = pooled_sd(x, y)
    if _is_constant(sd, x, y):
        return math.nan, float(n1 + n2 - 2)
    return float((x.mean() - y.mean()) / (sd * math.sqrt(1 / n1 + 1 / n2))), float(n1 + n2 - 2)


def welch_t(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Welch's unequal-variance t statistic and its Welch-Satterthwaite degrees of freedom."""
    v1, v2 = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    if _is_constant(math.sqrt(v1 + v2), x, y):
        return math.nan, math.nan
    df = (v1 + v2) ** 2 / (v1**2 / (len(x) - 1) + v2**2 / (len(y) - 1))
    return float((x.mean() - y.mean()) / math.sqrt(v1 + v2)), float(df)


def difference_in_means(harmful: np.ndarray, harmless: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Raw direction mean(harmful) - mean(harmless), its unit vector (NaN if zero) and its norm."""
    diff = harmful.mean(axis=0) - harmless.mean(axis=0)
    norm = float(np.linalg.norm(diff))
    unit = diff / norm if norm > 0 else np.full_like(diff, np.nan)
    return diff, unit, norm


def projection_tests(proj_harmful: np.ndarray, proj_harmless: np.ndarray) -> dict:
    """Cohen's d, Student's and Welch's t-tests of two sets of projections."""
    t_stat, df = student_t(proj_harmful, proj_harmless)
    log10_p = log10_t_pvalue(t_stat, df)
    welch, welch_df = welch_t(proj_harmful, proj_harmless)
    welch_log10_p = log10_t_pvalue(welch, welch_df)
    return {
        "cohens_d": cohens_d(proj_harmful, proj_harmless),
        "t_stat": t_stat,
        "df": df,
        "p_value": pvalue_from_log10(log10_p),
        "log10_p": log10_p,
        "welch_t": welch,
        "welch_df": welch_df,
        "welch_p": pvalue_from_log10(welch_log10_p),
        "welch_log10_p": welch_log10_p,
    }


def layer_statistics(harmful: np.ndarray, harmless: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
    """In-sample statistics of one layer (numbers only: verdicts are made across layers, in tables.py);
    returns (row, unit direction, raw difference)."""
    diff, unit, magnitude = difference_in_means(harmful, harmless)
    proj_harmful, proj_harmless = harmful @ unit, harmless @ unit
    row = {
        "n_harmful": len(harmful),
        "n_harmless": len(harmless),
        "magnitude": magnitude,
        "mean_proj_harmful": float(proj_harmful.mean()),
        "mean_proj_harmless": float(proj_harmless.mean()),
        "sd_proj_harmful": float(proj_harmful.std(ddof=1)),
        "sd_proj_harmless": float(proj_harmless.std(ddof=1)),
        **projection_tests(proj_harmful, proj_harmless),
    }
    if magnitude == 0:
        row["reason"] = "harmful and harmless means are identical: no direction"
    elif not math.isfinite(row["cohens_d"]):
        row["reason"] = "projections have zero pooled variance: Cohen's d undefined"
    else:
        row["reason"] = ""
    return row, unit, diff
