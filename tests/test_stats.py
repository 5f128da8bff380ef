"""Layer statistics against scipy and independent formulas."""

import math

import mpmath
import numpy as np
import pytest
from scipy import stats as scipy_stats

from refusal_directions.stats.difference_in_means import (
    cohens_d,
    layer_statistics,
    log10_t_pvalue,
    pvalue_from_log10,
    student_t,
    welch_t,
)


def independent_cohens_d(x, y):
    """Cohen's d from sums of squares, written without the project's helpers."""
    n1, n2 = len(x), len(y)
    ss1 = np.sum((x - np.mean(x)) ** 2)
    ss2 = np.sum((y - np.mean(y)) ** 2)
    return (np.mean(x) - np.mean(y)) / math.sqrt((ss1 + ss2) / (n1 + n2 - 2))


@pytest.fixture
def samples():
    rng = np.random.default_rng(0)
    return rng.normal(0.4, 1.0, 37), rng.normal(0.0, 1.7, 52)


def test_student_t_and_p_match_scipy(samples):
    x, y = samples
    reference = scipy_stats.ttest_ind(x, y)
    t, df = student_t(x, y)
    assert t == pytest.approx(reference.statistic, rel=1e-12)
    assert df == len(x) + len(y) - 2
    assert 10 ** log10_t_pvalue(t, df) == pytest.approx(reference.pvalue, rel=1e-9)


def test_welch_matches_scipy(samples):
    x, y = samples
    reference = scipy_stats.ttest_ind(x, y, equal_var=False)
    t, df = welch_t(x, y)
    assert t == pytest.approx(reference.statistic, rel=1e-12)
    assert 10 ** log10_t_pvalue(t, df) == pytest.approx(reference.pvalue, rel=1e-9)


def test_cohens_d_matches_independent_formula(samples):
    x, y = samples
    assert cohens_d(x, y) == pytest.approx(independent_cohens_d(x, y), rel=1e-12)


@pytest.mark.parametrize("t", [0.0, 0.5, 3.0, 12.0, 40.0])
def test_log10_p_matches_scipy_where_representable(t):
    assert log10_t_pvalue(t, 510) == pytest.approx(math.log10(2 * scipy_stats.t.sf(t, 510)), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("t", [100.0, 150.0, 400.0])
def test_log10_p_stays_exact_where_scipy_underflows(t):
    df = 510
    assert scipy_stats.t.sf(t, df) * 2 < 1e-300  # the case the exact path exists for
    # Independent reference: 2 x the integral of the t density beyond t, by quadrature on intervals
    # that follow the density's steep decay.
    with mpmath.workdps(40):
        nu, tt = mpmath.mpf(df), mpmath.mpf(t)
        norm = mpmath.gamma((nu + 1) / 2) / (mpmath.sqrt(nu * mpmath.pi) * mpmath.gamma(nu / 2))
        breaks = [tt * (1 + mpmath.mpf(k) / 1000) for k in (0, 1, 3, 10, 30, 100, 300, 1000)] + [mpmath.inf]
        tail = mpmath.quad(lambda u: norm * (1 + u**2 / nu) ** (-(nu + 1) / 2), breaks)
        reference = float(mpmath.log10(2 * tail))
    value = log10_t_pvalue(t, df)
    assert math.isfinite(value)
    assert value == pytest.approx(reference, rel=1e-9)
    assert math.isnan(pvalue_from_log10(value)) or pvalue_from_log10(value) > 0


def test_pvalue_never_reported_as_zero():
    assert pvalue_from_log10(-400.0) != 0.0
    assert math.isnan(pvalue_from_log10(-400.0))
    assert pvalue_from_log10(-3.0) == pytest.approx(1e-3)


def test_layer_statistics_against_scipy():
    rng = np.random.default_rng(1)
    harmful = rng.normal(size=(40, 16)) + np.linspace(0, 1, 16)
    harmless = rng.normal(size=(30, 16))
    row, unit, diff = layer_statistics(harmful, harmless)
    expected_diff = harmful.mean(0) - harmless.mean(0)
    np.testing.assert_allclose(diff, expected_diff, rtol=1e-12)
    assert row["magnitude"] == pytest.approx(np.linalg.norm(expected_diff), rel=1e-12)
    np.testing.assert_allclose(unit, expected_diff / np.linalg.norm(expected_diff), rtol=1e-12)
    ph, pb = harmful @ unit, harmless @ unit
    reference = scipy_stats.ttest_ind(ph, pb)
    assert row["t_stat"] == pytest.approx(reference.statistic, rel=1e-10)
    assert row["p_value"] == pytest.approx(reference.pvalue, rel=1e-8)
    assert row["cohens_d"] == pytest.approx(independent_cohens_d(ph, pb), rel=1e-10)
    assert row["mean_proj_harmful"] == pytest.approx(ph.mean())
    assert "valid_seed_rule" not in row  # per-layer numbers carry no verdict (thresholds are table-level)


def test_zero_variance_layer_is_nan():
    harmful = np.tile(np.array([1.0, 2.0, 3.0]), (8, 1))
    harmless = np.tile(np.array([0.0, 2.0, 1.0]), (6, 1))
    row, _, _ = layer_statistics(harmful, harmless)
    assert math.isnan(row["cohens_d"]) and math.isnan(row["t_stat"]) and math.isnan(row["log10_p"])
    assert "zero pooled variance" in row["reason"]


def test_identical_means_have_no_direction():
    rng = np.random.default_rng(2)
    both = rng.normal(size=(10, 4))
    row, unit, _ = layer_statistics(both, both.copy())
    assert row["magnitude"] == 0 and np.isnan(unit).all()
    assert "identical" in row["reason"]
