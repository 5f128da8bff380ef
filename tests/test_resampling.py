"""The vectorised resampling statistics against plain loops that refit every direction explicitly."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from refusal_directions.stats.resampling import (
    Contrast,
    bootstrap,
    cross_fitted,
    percentile_interval,
    permutation_null,
    permutation_pvalue,
    stratified_folds,
    weighted_cohens_d,
)


def plain_d(a_proj, b_proj):
    n1, n2 = len(a_proj), len(b_proj)
    pooled = math.sqrt(((n1 - 1) * np.var(a_proj, ddof=1) + (n2 - 1) * np.var(b_proj, ddof=1)) / (n1 + n2 - 2))
    return (np.mean(a_proj) - np.mean(b_proj)) / pooled


def refit_d(a, b):
    """Direction from a and b, then d of their own projections (the in-sample statistic)."""
    unit = a.mean(0) - b.mean(0)
    unit /= np.linalg.norm(unit)
    return plain_d(a @ unit, b @ unit)


@pytest.fixture
def groups():
    rng = np.random.default_rng(5)
    shift = np.zeros(12)
    shift[0] = 1.0
    return rng.normal(size=(15, 12)) + shift + 3.0, rng.normal(size=(11, 12)) + 3.0


def test_weighted_d_with_unit_weights_is_cohens_d():
    rng = np.random.default_rng(0)
    projections = rng.normal(size=(1, 9))
    a = np.array([[1, 1, 1, 1, 0, 0, 0, 0, 0]], float)
    assert weighted_cohens_d(projections, a, 1 - a)[0] == pytest.approx(
        plain_d(projections[0, :4], projections[0, 4:]), rel=1e-12
    )


def test_permutation_null_matches_explicit_refits(groups):
    a, b = groups
    contrast = Contrast.of(a, b)
    null = permutation_null(contrast, 40, seed=3)
    # Replay the same relabellings with an explicit loop.
    rng = np.random.default_rng([3, 2])
    order = rng.permuted(np.tile(np.arange(len(a) + len(b)), (40, 1)), axis=1)
    stacked = np.vstack([a, b])
    expected = [refit_d(stacked[row < len(a)], stacked[row >= len(a)]) for row in order]
    np.testing.assert_allclose(null, expected, rtol=1e-9)


def test_permutation_pvalue_counts_the_observed_value():
    null = np.array([0.1, 0.5, 0.9, 2.0])
    assert permutation_pvalue(0.9, null) == pytest.approx(3 / 5)
    assert permutation_pvalue(5.0, null) == pytest.approx(1 / 5)
    assert math.isnan(permutation_pvalue(float("nan"), null))


def test_bootstrap_matches_explicit_resamples(groups):
    a, b = groups
    result = bootstrap(Contrast.of(a, b), 25, seed=4)
    rng = np.random.default_rng([4, 3])
    all_a = rng.multinomial(len(a), np.full(len(a), 1 / len(a)), size=25)
    all_b = rng.multinomial(len(b), np.full(len(b), 1 / len(b)), size=25)
    in_sample, out_of_bag, units = [], [], []
    for count_a, count_b in zip(all_a, all_b, strict=True):
        ra, rb = np.repeat(a, count_a, axis=0), np.repeat(b, count_b, axis=0)
        unit = ra.mean(0) - rb.mean(0)
        unit /= np.linalg.norm(unit)
        units.append(unit)
        in_sample.append(plain_d(ra @ unit, rb @ unit))
        out_of_bag.append(plain_d(a[count_a == 0] @ unit, b[count_b == 0] @ unit))
    np.testing.assert_allclose(result.in_sample_d, in_sample, rtol=1e-9)
    np.testing.assert_allclose(result.out_of_bag_d, out_of_bag, rtol=1e-9)
    cosines = np.array(units) @ np.array(units).T
    assert result.mean_cosine == pytest.approx(cosines[~np.eye(25, dtype=bool)].mean(), rel=1e-9)


def test_cross_fitted_matches_explicit_folds(groups):
    a, b = groups
    contrast = Contrast.of(a, b)
    folds = stratified_folds(contrast.is_a, 5, seed=6)
    assert sorted(np.bincount(folds[contrast.is_a]).tolist()) == [3, 3, 3, 3, 3]
    stacked, is_a = np.vstack([a, b]), contrast.is_a
    projections = np.empty(len(is_a))
    for fold in range(5):
        test = folds == fold
        mean_a, mean_b = stacked[~test & is_a].mean(0), stacked[~test & ~is_a].mean(0)
        unit = (mean_a - mean_b) / np.linalg.norm(mean_a - mean_b)
        projections[test] = (stacked[test] - (mean_a + mean_b) / 2) @ unit
    result = cross_fitted(contrast, 5, seed=6)
    assert result["cohens_d_heldout"] == pytest.approx(plain_d(projections[is_a], projections[~is_a]), rel=1e-9)
    reference = scipy_stats.ttest_ind(projections[is_a], projections[~is_a])
    assert result["t_heldout"] == pytest.approx(reference.statistic, rel=1e-9)
    assert result["p_heldout"] == pytest.approx(reference.pvalue, rel=1e-8)


def test_percentile_interval_ignores_nan():
    assert percentile_interval(np.array([np.nan, *range(101)]), 0.9) == pytest.approx((5.0, 95.0))
