"""Held-out, permutation and bootstrap statistics of a difference-in-means direction, vectorised.

Every resample defines a direction v = X^T w (w: +weights on one group, -weights on the other), and
every statistic needs only the projections X v / |v|. With the Gram matrix G = X X^T both come from one
product M = W G: projections = M / |v| and |v|^2 = rowsum(M * W). So K permutations or B bootstraps
cost one (K x n) @ (n x n) product, whatever the hidden size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .difference_in_means import cohens_d, log10_t_pvalue, pvalue_from_log10, student_t

CHUNK = 1000  # resamples per matrix product: bounds memory at CHUNK x n doubles
# Independent random streams, so changing one count (e.g. n_bootstrap) leaves the others' draws alone.
FOLD_STREAM, PERMUTATION_STREAM, BOOTSTRAP_STREAM = 1, 2, 3


@dataclass(frozen=True)
class Contrast:
    """Two groups of activations stacked as rows of X (centred: shifts change no statistic here)."""

    x: np.ndarray
    is_a: np.ndarray

    @classmethod
    def of(cls, a: np.ndarray, b: np.ndarray) -> Contrast:
        stacked = np.vstack([a, b]).astype(np.float64)
        return cls(stacked - stacked.mean(axis=0), np.r_[np.ones(len(a), bool), np.zeros(len(b), bool)])

    @property
    def gram(self) -> np.ndarray:
        return self.x @ self.x.T


def weighted_cohens_d(projections: np.ndarray, weight_a: np.ndarray, weight_b: np.ndarray) -> np.ndarray:
    """Cohen's d (pooled SD) per row, each prompt counted ``weight`` times (0 = left out)."""
    n_a, n_b = weight_a.sum(axis=1), weight_b.sum(axis=1)
    mean_a = (weight_a * projections).sum(axis=1) / n_a
    mean_b = (weight_b * projections).sum(axis=1) / n_b
    ss_a = (weight_a * (projections - mean_a[:, None]) ** 2).sum(axis=1)
    ss_b = (weight_b * (projections - mean_b[:, None]) ** 2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (mean_a - mean_b) / np.sqrt((ss_a + ss_b) / (n_a + n_b - 2))


def _unit_projections(gram: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Projections of every prompt on each direction X^T w / |X^T w|, and the norms |X^T w|."""
    product = weights @ gram
    norms = np.sqrt(np.maximum((product * weights).sum(axis=1), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return product / norms[:, None], norms


def _mean_difference_weights(in_a: np.ndarray, in_b: np.ndarray) -> np.ndarray:
    """Weights w with X^T w = weighted mean of group a - weighted mean of group b."""
    return in_a / in_a.sum(axis=1, keepdims=True) - in_b / in_b.sum(axis=1, keepdims=True)


def permutation_null(contrast: Contrast, n_permutations: int, seed: int) -> np.ndarray:
    """In-sample Cohen's d of the direction refitted after each random relabelling (group sizes kept)."""
    rng = np.random.default_rng([seed, PERMUTATION_STREAM])
    gram, n_a = contrast.gram, int(contrast.is_a.sum())
    null = []
    for start in range(0, n_permutations, CHUNK):
        count = min(CHUNK, n_permutations - start)
        order = rng.permuted(np.tile(np.arange(len(contrast.is_a)), (count, 1)), axis=1)
        in_a = (order < n_a).astype(np.float64)  # a random n_a of the prompts take label a
        projections, _ = _unit_projections(gram, _mean_difference_weights(in_a, 1.0 - in_a))
        null.append(weighted_cohens_d(projections, in_a, 1.0 - in_a))
    return np.concatenate(null) if null else np.empty(0)


def permutation_pvalue(observed: float, null: np.ndarray) -> float:
    """(1 + #{null >= observed}) / (K + 1): never 0, exact for exchangeable labels."""
    if not math.isfinite(observed) or len(null) == 0:
        return math.nan
    return float((1 + np.sum(null >= observed - 1e-12 * abs(observed))) / (len(null) + 1))


@dataclass(frozen=True)
class BootstrapResult:
    in_sample_d: np.ndarray  # d of each resample's direction on the resample itself
    out_of_bag_d: np.ndarray  # d of each resample's direction on the prompts it did not draw
    mean_cosine: float  # mean pairwise cosine between the resamples' unit directions


def bootstrap(contrast: Contrast, n_bootstrap: int, seed: int) -> BootstrapResult:
    """Resample prompts with replacement within each group and refit the direction each time."""
    rng = np.random.default_rng([seed, BOOTSTRAP_STREAM])
    gram, is_a = contrast.gram, contrast.is_a
    index_a, index_b = np.flatnonzero(is_a), np.flatnonzero(~is_a)
    in_sample, out_of_bag = [], []
    direction_sum = np.zeros(len(is_a))  # sum of w / |X^T w|: the sum of unit directions is X^T of it
    for start in range(0, n_bootstrap, CHUNK):
        count = min(CHUNK, n_bootstrap - start)
        counts_a = np.zeros((count, len(is_a)))
        counts_b = np.zeros((count, len(is_a)))
        counts_a[:, index_a] = rng.multinomial(len(index_a), np.full(len(index_a), 1 / len(index_a)), size=count)
        counts_b[:, index_b] = rng.multinomial(len(index_b), np.full(len(index_b), 1 / len(index_b)), size=count)
        weights = _mean_difference_weights(counts_a, counts_b)
        projections, norms = _unit_projections(gram, weights)
        in_sample.append(weighted_cohens_d(projections, counts_a, counts_b))
        left_out_a = ((counts_a == 0) & is_a).astype(np.float64)
        left_out_b = ((counts_b == 0) & ~is_a).astype(np.float64)
        out_of_bag.append(weighted_cohens_d(projections, left_out_a, left_out_b))
        direction_sum += (weights / norms[:, None]).sum(axis=0)
    sum_norm_sq = float(direction_sum @ gram @ direction_sum)
    mean_cosine = (sum_norm_sq - n_bootstrap) / (n_bootstrap * (n_bootstrap - 1)) if n_bootstrap > 1 else math.nan
    return BootstrapResult(np.concatenate(in_sample), np.concatenate(out_of_bag), mean_cosine)


def percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def stratified_folds(is_a: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold number of each prompt: each group shuffled and dealt round-robin into n_folds folds."""
    rng = np.random.default_rng([seed, FOLD_STREAM])
    folds = np.empty(len(is_a), dtype=int)
    for group in (np.flatnonzero(is_a), np.flatnonzero(~is_a)):
        folds[rng.permutation(group)] = np.arange(len(group)) % n_folds
    return folds


def cross_fitted(contrast: Contrast, n_folds: int, seed: int) -> dict:
    """Held-out effect: each fold is scored on the direction fitted to the other folds, relative to the
    midpoint of their two group means (so folds share a zero point), and Cohen's d, Student's t and p
    are computed on these out-of-fold scores."""
    x, is_a = contrast.x, contrast.is_a
    folds = stratified_folds(is_a, n_folds, seed)
    projections = np.empty(len(is_a))
    for fold in range(n_folds):
        test, train = folds == fold, folds != fold
        mean_a, mean_b = x[train & is_a].mean(axis=0), x[train & ~is_a].mean(axis=0)
        norm = np.linalg.norm(mean_a - mean_b)
        midpoint = (mean_a + mean_b) / 2
        projections[test] = (x[test] - midpoint) @ ((mean_a - mean_b) / norm) if norm > 0 else np.nan
    t_stat, df = student_t(projections[is_a], projections[~is_a])
    log10_p = log10_t_pvalue(t_stat, df)
    return {
        "cohens_d_heldout": cohens_d(projections[is_a], projections[~is_a]),
        "t_heldout": t_stat,
        "p_heldout": pvalue_from_log10(log10_p),
        "log10_p_heldout": log10_p,
    }
