"""Evaluate the selected direction (or a direction method's result) on the test split (prompts that neither
built nor selected it): every condition of ``interventions.conditions.EVALUATION`` (no intervention, the
direction ablated everywhere on harmful prompts and added at its layer on harmless ones, each next to the same
intervention with two controls of the same strength: a random direction and the control contrast's direction,
wording rather than harm)."""

from __future__ import annotations

import json

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

from ..interventions.condition_hooks import completed_basis, random_basis, random_like, same_norm
from ..interventions.condition_runner import ConditionRunner
from ..interventions.conditions import EVALUATION, InterventionVectors
from ..model.job import ModelJob, evaluation_prompts, refusal_tokens
from ..model.resume import ResumeState
from ..stats.method_direction import load_method_direction
from ..workflow.execution import ExecutionSettings


def selected_vectors(selected_path: str, directions_path: str, seed: int) -> InterventionVectors:
    """The selected direction at its layer, a random direction of its norm and the control contrast's
    direction at that layer rescaled to it (None without a control contrast)."""
    direction = load_file(selected_path)["direction"].astype(np.float64)
    with safe_open(selected_path, "numpy") as handle:
        layer = int(json.loads(handle.metadata()["refusal_directions"])["layer"])
    control = load_file(directions_path).get("control_mean_differences")
    control = None if control is None else same_norm(control[layer].astype(np.float64), direction)
    return InterventionVectors(direction, layer, random=random_like(direction, seed), control=control)


def method_vectors(method_path: str, directions_path: str, seed: int) -> InterventionVectors:
    """A direction method's result (stats/method_direction.py) as the evaluation's vectors: its basis, its
    addition (and an affine method's reference points), a random subspace and the control contrast's direction
    of the same dimension and strength (the control completed with random directions when k > 1)."""
    result = load_method_direction(method_path)
    control = load_file(directions_path).get("control_mean_differences")
    control = None if control is None else same_norm(control[result.layer].astype(np.float64), result.addition)
    k, d_model = result.basis.shape
    return InterventionVectors(
        result.addition, result.layer, random=random_like(result.addition, seed), control=control, basis=result.basis,
        random_basis=None if k == 1 else random_basis(k, d_model, seed),
        control_basis=None if k == 1 or control is None else completed_basis(control, k, seed),
        ablation_references=result.ablation_references, addition_target=result.addition_target,
    )  # fmt: skip


def evaluation_vectors(inputs: dict, seed: int) -> InterventionVectors:
    """The vectors of the direction a job evaluates: a direction method's result (``inputs['method']``) or the
    selected direction (``inputs['selected']``)."""
    if "method" in inputs:
        return method_vectors(inputs["method"], inputs["directions"], seed)
    return selected_vectors(inputs["selected"], inputs["directions"], seed)


def evaluate_direction(
    inputs: dict, outputs: dict, model: dict, evaluation: dict, execution: ExecutionSettings
) -> None:
    """evaluation_generations.jsonl (every response, with its prompt's refusal score under the same condition)
    and evaluation_kl.csv (next-token KL of harmless prompts under each condition that records it)."""
    job = ModelJob.load(model, inputs, execution)
    prompts = evaluation_prompts(inputs, evaluation)
    runner = ConditionRunner(
        job, prompts, refusal_tokens(inputs), evaluation["max_new_tokens"], ResumeState(execution.resume)
    )
    runner.run_all(EVALUATION, evaluation_vectors(inputs, evaluation["seed"]))
    runner.write(outputs["generations"], outputs["kl"])
