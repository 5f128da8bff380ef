"""Experiment 2: per layer, ablate the direction (everywhere, and at that layer only) on harmful prompts,
add it on harmless prompts, and do the same with a random direction of the same norm; record the
responses and the next-token KL divergence on harmless prompts."""

from __future__ import annotations

import logging
from contextlib import nullcontext

import numpy as np
import pandas as pd
from safetensors.numpy import load_file

from .batching import BatchRunner
from .chat_format import PromptFormat
from .errors import UserError
from .execution import ExecutionSettings
from .generation import generate
from .interventions import (
    ablate_at_layer,
    ablate_everywhere,
    add_at_layer,
    kl_divergence,
    next_token_log_probs,
    random_like,
)
from .jsonio import write_jsonl
from .modeling import decoder_layers, load_for_job
from .progress import Progress
from .sampling import prompt_subsets

log = logging.getLogger(__name__)


def conditions(model, layer: int, unit: np.ndarray, difference: np.ndarray, seed: int) -> dict:
    """Each condition: the prompt set it runs on and the hooks that make it (entered when used)."""
    random_unit = random_like(unit, seed + layer)
    random_difference = random_like(difference, seed + layer)
    return {
        "ablation_all": ("harmful", lambda: ablate_everywhere(model, unit)),
        "ablation_layer": ("harmful", lambda: ablate_at_layer(model, unit, layer)),
        "random_ablation_all": ("harmful", lambda: ablate_everywhere(model, random_unit)),
        "addition": ("harmless", lambda: add_at_layer(model, difference, layer)),
        "random_addition": ("harmless", lambda: add_at_layer(model, random_difference, layer)),
    }


def run_intervention_sweep(
    spec: dict, prompt_files: dict[str, str], directions: str, outputs: dict, converted_dir: str | None,
    settings: dict, execution: ExecutionSettings,
) -> None:  # fmt: skip
    """generations.jsonl (every response per layer and condition) and kl.csv (next-token KL on harmless
    prompts per layer and condition)."""
    model, tokenizer, input_device, _ = load_for_job(spec, converted_dir, execution)
    prompt_format = PromptFormat(tokenizer, spec["prompt_format"], spec["system_prompt"], spec["id"])
    runner = BatchRunner.for_job(execution, model, input_device)
    tensors = load_file(directions)
    units, differences = tensors["unit_directions"].astype(np.float64), tensors["mean_differences"].astype(np.float64)
    n_layers = len(decoder_layers(model))
    layers = settings["layers"] if settings["layers"] is not None else list(range(n_layers))
    if max(layers) >= n_layers:
        raise UserError(
            f"interventions.layers has layer {max(layers)} but the model has {n_layers} layers (0-{n_layers - 1})"
        )
    subsets = prompt_subsets(prompt_files, settings["n_prompts"], settings["seed"])
    token_ids = {name: [prompt_format.encode(r["text"]) for r in records] for name, records in subsets.items()}

    def respond(name: str, layer, condition: str, context) -> list[dict]:
        progress = Progress(f"layer {layer} {condition} ({name}): generation", len(token_ids[name]))
        with context:
            responses = generate(
                model, tokenizer, token_ids[name], settings["max_new_tokens"], runner, input_device, progress=progress
            )
        return [
            {"layer": layer, "condition": condition, "set": name, "id": r["id"], "row": r["row"], "text": r["text"],
             "response": response}
            for r, response in zip(subsets[name], responses, strict=True)
        ]  # fmt: skip

    def harmless_log_probs(layer, condition: str, context):
        harmless = token_ids["harmless"]
        progress = Progress(f"layer {layer} {condition} (harmless): next-token distribution", len(harmless))
        with context:
            return next_token_log_probs(model, tokenizer.pad_token_id, harmless, runner, input_device, progress)

    generations = respond("harmful", None, "baseline", nullcontext()) + respond(
        "harmless", None, "baseline", nullcontext()
    )
    baseline = harmless_log_probs(None, "baseline", nullcontext())
    divergences = []
    for layer in layers:
        for condition, (name, make_hooks) in conditions(
            model, layer, units[layer], differences[layer], settings["seed"]
        ).items():
            generations += respond(name, layer, condition, make_hooks())
            if condition != "ablation_layer":
                kl = kl_divergence(baseline, harmless_log_probs(layer, condition, make_hooks()))
                divergences.append({"layer": layer, "condition": condition, "mean_kl": float(kl.mean()),
                                    "median_kl": float(np.median(kl)), "max_kl": float(kl.max())})  # fmt: skip
        log.info("layer %d done", layer)
    write_jsonl(outputs["generations"], generations)
    pd.DataFrame(divergences).to_csv(outputs["kl"], index=False)
