"""The direction methods: one registry, one entry per method (README: "Direction methods").

A method is its name (the one spelling in config, paths, tables, figures and the report), its label, what it
reads (the train split's activations, or the model too), whether it yields one direction or a basis of ``k``,
whether its ablation is linear (a projection through the origin) or affine (relative to a reference point),
its settings in ``directions.<name>`` and the paper it comes from. The closed-form methods' candidate at one
layer and position is ``candidate_vector``; the optimized ones (``rdo``, ``cone``) are model jobs
(selection/direction_optimization.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..workflow.errors import UserError

# What a method reads.
ACTIVATIONS = "train-split activations"
MODEL = "train-split activations and the model (gradient descent)"
# How its ablation acts.
LINEAR = "linear"
AFFINE = "affine"


@dataclass(frozen=True)
class DirectionMethod:
    name: str
    label: str
    reads: str
    edit: str
    paper: str
    # Yields a basis of ``k`` directions (its setting), not one.
    has_basis: bool = False

    @property
    def optimized(self) -> bool:
        return self.reads == MODEL


METHODS: dict[str, DirectionMethod] = {
    method.name: method
    for method in (
        DirectionMethod("mean_diff", "difference in means", ACTIVATIONS, LINEAR, "Arditi et al. 2024"),
        DirectionMethod(
            "projected", "projected difference in means", ACTIVATIONS, LINEAR,
            "projected abliteration (2025 model editors; MPOA proposed for heretic)",
        ),
        DirectionMethod("pca", "first principal component of paired differences", ACTIVATIONS, LINEAR,
                        "Zou et al. 2023 (representation engineering)"),
        DirectionMethod("ace", "affine concept editing", ACTIVATIONS, AFFINE, "Marshall et al. 2024"),
        DirectionMethod("rdo", "refusal direction optimization", MODEL, LINEAR, "Wollschläger et al. 2025"),
        DirectionMethod("cone", "refusal cone", MODEL, LINEAR, "Wollschläger et al. 2025", has_basis=True),
    )
}  # fmt: skip
MEAN_DIFF = "mean_diff"
# The closed-form methods whose candidates are the difference in means itself (only their edit differs).
SAME_CANDIDATES = tuple(name for name, m in METHODS.items() if not m.optimized and m.edit == AFFINE)


def check_basis_size(method: str, k: int, d_model: int | None = None) -> None:
    """A basis of ``k`` directions needs 1 <= k <= the model's width (checked when the width is known)."""
    if k <= 0 or (d_model is not None and k > d_model):
        width = "" if d_model is None else f" ({d_model})"
        raise UserError(f"directions.{method}.k: {k}; a cone needs 1 <= k <= the model's width{width}")


def check_methods(directions: dict) -> None:
    """A config's ``directions`` before any job: known method names, ``mean_diff`` among them when an optimized
    method needs its selected layer, positive step counts, a positive ``k`` for a method with a basis (the
    model's width is checked by its job: the config does not hold it)."""
    methods = directions["methods"]
    unknown = [name for name in methods if name not in METHODS]
    if unknown:
        raise UserError(f"directions.methods: unknown method '{unknown[0]}' (known: {', '.join(METHODS)})")
    for name in (name for name in methods if METHODS[name].optimized):
        settings = directions[name]
        if settings["steps"] <= 0:
            raise UserError(f"directions.{name}.steps: {settings['steps']}; an optimization needs at least one step")
        if settings["layer"] is None and MEAN_DIFF not in methods:
            raise UserError(f"directions.{name}.layer: not set, and mean_diff (whose selected layer it takes) is "
                            "not in directions.methods")  # fmt: skip
        if METHODS[name].has_basis:
            check_basis_size(name, settings["k"])


def basis_size(method: str, settings: dict) -> int:
    """How many directions a method yields: its ``k`` setting for a method with a basis, else one."""
    return settings["k"] if METHODS[method].has_basis else 1


def projected(difference: np.ndarray, harmless_mean: np.ndarray) -> np.ndarray:
    """The difference in means without its component along the harmless mean: ablating it leaves what the
    harmless prompts share untouched."""
    along = harmless_mean / np.linalg.norm(harmless_mean)
    return difference - (difference @ along) * along


def first_component(harmful: np.ndarray, harmless: np.ndarray, seed: int) -> np.ndarray:
    """The first principal component of harmful - harmless differences of randomly paired prompts, each pair's
    order flipped at random (representation engineering: the component is the axis the pairs differ along,
    not their mean), sign-aligned with the difference in means and scaled to its norm."""
    rng = np.random.default_rng(seed)
    n_pairs = min(len(harmful), len(harmless))
    pairs = harmful[rng.permutation(len(harmful))[:n_pairs]] - harmless[rng.permutation(len(harmless))[:n_pairs]]
    pairs *= rng.choice([-1.0, 1.0], size=(n_pairs, 1))
    _, _, rows = np.linalg.svd(pairs - pairs.mean(axis=0), full_matrices=False)
    difference = harmful.mean(axis=0) - harmless.mean(axis=0)
    component = rows[0] if rows[0] @ difference >= 0 else -rows[0]
    return component * np.linalg.norm(difference)


def candidate_vector(method: str, harmful: np.ndarray, harmless: np.ndarray, seed: int) -> np.ndarray:
    """A closed-form method's candidate from the train rows of both classes at one layer and position [n, d]
    (float64): what its addition adds, and whose unit vector its ablation removes."""
    harmful, harmless = harmful.astype(np.float64), harmless.astype(np.float64)
    difference = harmful.mean(axis=0) - harmless.mean(axis=0)
    if method == "projected":
        return projected(difference, harmless.mean(axis=0))
    if method == "pca":
        return first_component(harmful, harmless, seed)
    return difference


def principal_angles(basis: np.ndarray, other: np.ndarray) -> np.ndarray:
    """The principal angles between the spans of two sets of rows, in degrees, smallest first."""
    from scipy.linalg import subspace_angles

    return np.sort(np.degrees(subspace_angles(np.atleast_2d(basis).T, np.atleast_2d(other).T)))
