"""Experiment 2: per layer, on test-split prompts, every condition of ``conditions.SWEEP`` with that layer's
direction (ablated everywhere and at that layer only on harmful prompts, added on harmless prompts), each
next to the same intervention with two controls of the same strength, a random direction and the control
contrast's direction (wording, not harm); the conditions without intervention run once."""

from __future__ import annotations

import logging

import numpy as np
from safetensors.numpy import load_file

from ..model.job import ModelJob, refusal_tokens, split_prompts
from ..model.loading import decoder_layers
from ..model.resume import ResumeState
from ..workflow.errors import UserError
from ..workflow.execution import ExecutionSettings
from .condition_hooks import random_like, same_norm
from .condition_runner import ConditionRunner
from .conditions import BASELINES, SWEEP, InterventionVectors

log = logging.getLogger(__name__)


def layer_vectors(tensors: dict[str, np.ndarray], layer: int, seed: int) -> InterventionVectors:
    """Layer ``layer``'s direction (its unit vector for ablation, the raw difference in means for addition),
    a random direction of the same norm and the control contrast's difference rescaled to it."""
    difference = tensors["mean_differences"][layer]
    control = tensors.get("control_mean_differences")
    return InterventionVectors(
        difference,
        layer,
        random=random_like(difference, seed + layer),
        control=None if control is None else same_norm(control[layer], difference),
        unit=tensors["unit_directions"][layer],
    )


def run_intervention_sweep(
    inputs: dict, outputs: dict, model: dict, interventions: dict, execution: ExecutionSettings
) -> None:
    """generations.jsonl (every response per layer and condition, with the prompt's refusal score under the
    same condition) and kl.csv (next-token KL on harmless prompts per layer and condition)."""
    job = ModelJob.load(model, inputs, execution)
    tensors = {name: values.astype(np.float64) for name, values in load_file(inputs["directions"]).items()}
    n_layers = len(decoder_layers(job.model))
    layers = interventions["layers"] if interventions["layers"] is not None else list(range(n_layers))
    if max(layers) >= n_layers:
        raise UserError(
            f"interventions.layers has layer {max(layers)} but the model has {n_layers} layers (0-{n_layers - 1})"
        )
    prompts = split_prompts(inputs, "test", interventions["n_prompts"], interventions["seed"])
    runner = ConditionRunner(
        job, prompts, refusal_tokens(inputs), interventions["max_new_tokens"], ResumeState(execution.resume)
    )
    runner.run_all(BASELINES)
    at_layer = [name for name in SWEEP if name not in BASELINES]
    for layer in layers:
        runner.run_all(at_layer, layer_vectors(tensors, layer, interventions["seed"]))
        log.info("layer %d done", layer)
    runner.write(outputs["generations"], outputs["kl"])
