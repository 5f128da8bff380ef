"""What the terminal says about how a valid config will be read, before any job: the split sizes when the
splits are proportions of another total (the other note, a permutation count too small for any layer to be
valid, is stats/holm_floor.py's). Standard library only: the workflow definition prints these."""

from __future__ import annotations

from ..data.splits import SPLITS, split_sizes


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
