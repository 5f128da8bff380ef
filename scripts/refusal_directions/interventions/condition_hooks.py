"""A condition (conditions.py) applied to a model: the hooks that make it from this run's vectors
(model/hooks.py), the random and control vectors of the same strength that its controls use, and the
next-token KL divergence that measures what an intervention changes on harmless prompts."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch

from ..model.hooks import ablate_at_layer, ablate_everywhere, add_at_layer, orthonormal_basis
from .conditions import (
    ABLATION_AT_LAYER,
    ABLATION_EVERYWHERE,
    ADDITION_AT_LAYER,
    DIRECTION,
    EDITED_WEIGHTS,
    Condition,
    InterventionVectors,
)


def random_like(vector: np.ndarray, seed: int) -> np.ndarray:
    """A random direction with the same norm as ``vector`` (uniform on the sphere)."""
    draw = np.random.default_rng(seed).normal(size=vector.shape)
    return draw / np.linalg.norm(draw) * np.linalg.norm(vector)


def same_norm(vector: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``vector`` rescaled to the norm of ``reference`` (a control direction as strong as the direction)."""
    return vector / np.linalg.norm(vector) * np.linalg.norm(reference)


def kl_divergence(base_logits: torch.Tensor, changed_logits: torch.Tensor) -> np.ndarray:
    """KL(base || changed) of the next-token distributions of each prompt, in nats."""
    base, changed = base_logits.double().log_softmax(-1), changed_logits.double().log_softmax(-1)
    return (base.exp() * (base - changed)).sum(-1).numpy()


def condition_hooks(condition: Condition, model, vectors: InterventionVectors | None):
    """The hooks that make ``condition`` (conditions.py) with this run's vectors, as a context manager
    (entered when the condition runs). The edited model needs none: its weights carry the change."""
    if not condition.intervenes or condition.change == EDITED_WEIGHTS:
        return nullcontext()
    vector = vectors.vector(condition.vector, ablation=condition.change != ADDITION_AT_LAYER)
    # An affine method's reference points belong to its direction, not to the controls.
    own_direction = condition.vector == DIRECTION
    if condition.change == ABLATION_EVERYWHERE:
        return ablate_everywhere(model, vector, vectors.ablation_references if own_direction else None)
    if condition.change == ABLATION_AT_LAYER:
        return ablate_at_layer(model, vector, vectors.layer)
    if own_direction and vectors.addition_target is not None:
        return add_at_layer(model, vectors.addition_target, vectors.layer, replaced=vectors.vector(DIRECTION, True))
    return add_at_layer(model, vector, vectors.layer)


def random_basis(k: int, d_model: int, seed: int) -> np.ndarray:
    """k random orthonormal directions (a random subspace of dimension k)."""
    return orthonormal_basis(np.random.default_rng(seed).normal(size=(k, d_model)))


def completed_basis(direction: np.ndarray, k: int, seed: int) -> np.ndarray:
    """``direction`` completed to k orthonormal directions with random ones (a k-dimensional control that
    contains the control contrast's direction)."""
    draws = np.random.default_rng(seed).normal(size=(k - 1, len(direction)))
    return orthonormal_basis(np.vstack([direction, draws]))
