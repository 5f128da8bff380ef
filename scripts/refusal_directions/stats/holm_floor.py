"""The floor of the permutation null under Holm's correction: with L layers and K permutations no layer's
adjusted p can fall below L / (K + 1). Standard library only: the workflow definition warns with it before
any job, the tables after the run."""

from __future__ import annotations


def permutation_floor(n_layers: int, n_permutations: int) -> float:
    """The smallest Holm-adjusted permutation p any layer can reach: n_layers / (K + 1)."""
    return min(1.0, n_layers / (n_permutations + 1))


def holm_floor_warning(n_layers: int, n_permutations: int, alpha: float) -> str | None:
    """The warning when no layer can be valid because the permutation null is too coarse (None otherwise)."""
    floor = permutation_floor(n_layers, n_permutations)
    if floor < alpha:
        return None
    return (
        f"with {n_permutations} permutations and {n_layers} layers the smallest Holm-adjusted p is {floor:.3g} >= "
        f"alpha = {alpha:g}: no layer can be valid; raise n_permutations above {int(n_layers / alpha)}"
    )
