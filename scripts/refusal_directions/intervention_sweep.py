"""Experiment 2: per layer, on test-split prompts, ablate the direction (everywhere, and at that layer only)
on harmful prompts and add it on harmless prompts; do the same with two controls of the same strength, a
random direction and the control contrast's direction (wording, not harm); record the responses and the
next-token KL divergence on harmless prompts."""

from __future__ import annotations

import logging
from contextlib import nullcontext

import numpy as np
import pandas as pd
import torch
from safetensors.numpy import load_file

from .errors import UserError
from .execution import ExecutionSettings
from .interventions import ablate_at_layer, ablate_everywhere, add_at_layer, kl_divergence, random_like, same_norm
from .jsonio import write_jsonl
from .model_job import ModelJob, refusal_tokens, split_prompts
from .modeling import decoder_layers
from .progress import Progress
from .refusal_score import refusal_scores

log = logging.getLogger(__name__)


def conditions(model, layer: int, directions: dict[str, np.ndarray], seed: int) -> dict:
    """Each condition: the prompt set it runs on and the hooks that make it (entered when used).
    ``directions``: the layer's ``unit`` direction and raw ``difference``, and the control contrast's raw
    ``control`` difference when there is one."""
    unit, difference = directions["unit"], directions["difference"]
    random_difference = random_like(difference, seed + layer)
    made = {
        "ablation_all": ("harmful", lambda: ablate_everywhere(model, unit)),
        "ablation_layer": ("harmful", lambda: ablate_at_layer(model, unit, layer)),
        "random_ablation_all": ("harmful", lambda: ablate_everywhere(model, random_difference)),
        "addition": ("harmless", lambda: add_at_layer(model, difference, layer)),
        "random_addition": ("harmless", lambda: add_at_layer(model, random_difference, layer)),
    }
    if "control" in directions:
        control = same_norm(directions["control"], difference)
        made["control_ablation_all"] = ("harmful", lambda: ablate_everywhere(model, control))
        made["control_addition"] = ("harmless", lambda: add_at_layer(model, control, layer))
    return made


def run_intervention_sweep(
    spec: dict, inputs: dict, outputs: dict, settings: dict, execution: ExecutionSettings
) -> None:
    """generations.jsonl (every response per layer and condition, with the prompt's refusal score under the
    same condition) and kl.csv (next-token KL on harmless prompts per layer and condition)."""
    job = ModelJob.load(spec, inputs, execution)
    model, runner = job.model, job.runner
    tensors = {name: values.astype(np.float64) for name, values in load_file(inputs["directions"]).items()}
    n_layers = len(decoder_layers(model))
    layers = settings["layers"] if settings["layers"] is not None else list(range(n_layers))
    if max(layers) >= n_layers:
        raise UserError(
            f"interventions.layers has layer {max(layers)} but the model has {n_layers} layers (0-{n_layers - 1})"
        )
    subsets = split_prompts(inputs, "test", settings["n_prompts"], settings["seed"])
    token_ids = {name: job.encode(records) for name, records in subsets.items()}
    scored_by = refusal_tokens(inputs)

    def run(name: str, layer, condition: str, make_hooks) -> tuple[list[dict], torch.Tensor | None]:
        """Under one condition: each prompt's response and refusal score, and the harmless prompts'
        next-token logits (for the KL; not for ablation at one layer, nor for the baseline of harmful prompts,
        which the harmless baseline gives)."""
        ids = token_ids[name]
        label = f"{condition} ({name})" if layer is None else f"layer {layer} {condition} ({name})"
        with make_hooks():
            generating = Progress(f"{label}: generation and refusal score", len(ids))
            responses, logits = runner.generate(ids, settings["max_new_tokens"], progress=generating)
            if name == "harmless":
                harmless = logits
            elif condition not in ("ablation_layer", "baseline"):
                progress = Progress(f"{label}: next-token distribution, harmless prompts", len(subsets["harmless"]))
                harmless = runner.next_token_logits(token_ids["harmless"], progress)
            else:
                harmless = None
        scores = refusal_scores(logits, scored_by)
        records = [
            {"layer": layer, "condition": condition, "set": name, "id": r["id"], "row": r["row"], "text": r["text"],
             "response": response, "refusal_score": float(score)}
            for r, response, score in zip(subsets[name], responses, scores, strict=True)
        ]  # fmt: skip
        return records, harmless

    generations, _ = run("harmful", None, "baseline", nullcontext)
    harmless_records, baseline = run("harmless", None, "baseline", nullcontext)
    generations += harmless_records
    divergences = []
    for layer in layers:
        layer_directions = {"unit": tensors["unit_directions"][layer], "difference": tensors["mean_differences"][layer]}
        if "control_mean_differences" in tensors:
            layer_directions["control"] = tensors["control_mean_differences"][layer]
        for condition, (name, make_hooks) in conditions(model, layer, layer_directions, settings["seed"]).items():
            records, harmless = run(name, layer, condition, make_hooks)
            generations += records
            if harmless is not None:
                kl = kl_divergence(baseline, harmless)
                divergences.append({"layer": layer, "condition": condition, "mean_kl": float(kl.mean()),
                                    "median_kl": float(np.median(kl)), "max_kl": float(kl.max())})  # fmt: skip
        log.info("layer %d done", layer)
    write_jsonl(outputs["generations"], generations)
    pd.DataFrame(divergences).to_csv(outputs["kl"], index=False)
