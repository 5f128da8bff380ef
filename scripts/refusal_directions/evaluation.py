"""Evaluate the selected direction on the test split (prompts that neither built nor selected it): the
refusal score and the response of harmful prompts without and with the direction ablated everywhere, and of
harmless prompts without and with it added at its layer, each next to the same intervention with two controls
of the same strength (a random direction; the control contrast's direction: wording, not harm), and the
next-token KL on harmless prompts under each ablation."""

from __future__ import annotations

import json
import logging
from contextlib import nullcontext

import numpy as np
import pandas as pd
from safetensors import safe_open
from safetensors.numpy import load_file

from .execution import ExecutionSettings
from .interventions import ablate_everywhere, add_at_layer, kl_divergence, random_like, same_norm
from .jsonio import write_jsonl
from .model_job import ModelJob, refusal_tokens, split_prompts
from .progress import Progress
from .refusal_score import refusal_scores

log = logging.getLogger(__name__)


def evaluation_conditions(model, direction: np.ndarray, layer: int, control: np.ndarray | None, seed: int) -> dict:
    """Each condition: its prompt set and the hooks that make it (a factory, entered when used)."""
    random_direction = random_like(direction, seed)
    made = {
        "baseline harmful": ("harmful", nullcontext),
        "ablation": ("harmful", lambda: ablate_everywhere(model, direction)),
        "random ablation": ("harmful", lambda: ablate_everywhere(model, random_direction)),
        "baseline harmless": ("harmless", nullcontext),
        "addition": ("harmless", lambda: add_at_layer(model, direction, layer)),
        "random addition": ("harmless", lambda: add_at_layer(model, random_direction, layer)),
    }
    if control is not None:
        scaled = same_norm(control, direction)
        made["control ablation"] = ("harmful", lambda: ablate_everywhere(model, scaled))
        made["control addition"] = ("harmless", lambda: add_at_layer(model, scaled, layer))
    return made


def evaluate_direction(spec: dict, inputs: dict, outputs: dict, settings: dict, execution: ExecutionSettings) -> None:
    """evaluation_generations.jsonl (every response, with its prompt's refusal score under the same
    condition) and evaluation_kl.csv (next-token KL of harmless prompts under each ablation)."""
    job = ModelJob.load(spec, inputs, execution)
    runner, scored_by = job.runner, refusal_tokens(inputs)
    direction = load_file(inputs["selected"])["direction"].astype(np.float64)
    with safe_open(inputs["selected"], "numpy") as handle:
        layer = int(json.loads(handle.metadata()["refusal_directions"])["layer"])
    control = load_file(inputs["directions"]).get("control_mean_differences")
    control = None if control is None else control[layer].astype(np.float64)
    subsets = split_prompts(inputs, "test", settings["n_prompts"], settings["seed"])
    token_ids = {name: job.encode(records) for name, records in subsets.items()}
    generations, divergences, baseline = [], [], None
    conditions = evaluation_conditions(job.model, direction, layer, control, settings["seed"])
    for condition, (name, make_hooks) in conditions.items():
        ids, harmless = token_ids[name], token_ids["harmless"]
        with make_hooks():
            generating = Progress(f"{condition}: generation and refusal score", len(ids))
            responses, logits = runner.generate(ids, settings["max_new_tokens"], progress=generating)
            if name == "harmful" and condition != "baseline harmful":
                progress = Progress(f"{condition}: next-token distribution, harmless prompts", len(harmless))
                divergences.append((condition, runner.next_token_logits(harmless, progress)))
        if condition == "baseline harmless":
            baseline = logits
        scores = refusal_scores(logits, scored_by)
        generations += [
            {"condition": condition, "set": name, "id": r["id"], "row": r["row"], "text": r["text"],
             "response": response, "refusal_score": float(score), "layer": layer}
            for r, response, score in zip(subsets[name], responses, scores, strict=True)
        ]  # fmt: skip
    rows = []
    for condition, logits in divergences:
        kl = kl_divergence(baseline, logits)
        rows.append({"condition": condition, "mean_kl": float(kl.mean()), "median_kl": float(np.median(kl)),
                     "max_kl": float(kl.max())})  # fmt: skip
    write_jsonl(outputs["generations"], generations)
    pd.DataFrame(rows).to_csv(outputs["kl"], index=False)
