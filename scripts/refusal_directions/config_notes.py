"""What the terminal says about how a valid config will be read, before any job: the split sizes when the
splits are proportions of another total, and a permutation count too small for any layer to be valid (the
Holm floor). Standard library only: the workflow definition prints these."""

from __future__ import annotations

from .splits import SPLITS, split_sizes


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


def split_note(n_prompts: int, weights: dict) -> str | None:
    """The split sizes used, when the configured splits do not add up to the prompts sampled (they are
    proportions: the sizes differ from the numbers given). None when they add up."""
    given = [weights[name] for name in SPLITS]
    if sum(given) == n_prompts:
        return None
    sizes = split_sizes(n_prompts, weights)
    return (
        f"splits: {n_prompts} prompts per set are split {' / '.join(str(sizes[name]) for name in SPLITS)} "
        f"(train / validation / test, in the proportions {' : '.join(f'{value:g}' for value in given)})"
    )
