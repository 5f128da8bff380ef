"""Score every candidate direction on the validation split (prompts that built no direction), as the
reference method does (Arditi et al. 2024), with the numbers COSMIC uses beside them:

- bypass: mean refusal score of harmful prompts with the candidate ablated at every layer (lower: the
  direction carries more of the refusal);
- induce: mean refusal score of harmless prompts with the raw candidate added at its layer (> 0: adding it
  makes refusal more likely than not);
- kl: mean next-token KL divergence on harmless prompts under the ablation (its side effect);
- cosmic_ablation / cosmic_addition: at the COSMIC layers (the tenth of the layers where the harmful and
  harmless training means are least similar), the cosine of the mean last-token activation of ablated harmful
  prompts with that of the unchanged harmless ones, and of added harmless prompts with the unchanged harmful
  ones; cosmic_score is their sum (higher: the intervention moves the representation further across).

With ``selection.prefilter: attribution`` every candidate first gets a first-order estimate of its bypass and
induce scores (attribution.py, one forward and backward pass per validation batch), and only the
``prefilter_top_k`` with the lowest estimated bypass are scored exactly.

Numbers only: which candidate wins is decided by choice.py, from the thresholds.
"""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pandas as pd
from safetensors import safe_open
from safetensors.numpy import load_file

from ..data.prompt_sets import HARMFUL, HARMLESS
from ..model.job import ModelJob, refusal_tokens, split_prompts
from ..model.refusal_score import refusal_scores
from ..model.resume import ResumeState
from ..stats.direction_methods import AFFINE, MEAN_DIFF, METHODS
from ..stats.method_direction import affine_points
from ..workflow.execution import ExecutionSettings
from ..workflow.progress import Progress
from .attribution import attribution
from .candidate_passes import Candidate, measure_candidates
from .layer_filter import scored_layers

log = logging.getLogger(__name__)
COSMIC_LAYER_SHARE = 0.1


def candidate_layers(n_layers: int, n_positions: int, scoring: dict) -> tuple[list[int], list[int]]:
    """The layers whose candidates (every kept position) are scored, and the strided layers left out: those
    the layer filter can select (layer_filter.scored_layers), thinned evenly so that layers x positions stays
    within ``max_candidates``."""
    layers = scored_layers(n_layers, scoring)
    max_candidates = scoring["max_candidates"]
    max_layers = None if max_candidates is None else max(1, max_candidates // n_positions)
    if max_layers is not None and len(layers) > max_layers:
        layers = sorted({layers[round(i)] for i in np.linspace(0, len(layers) - 1, max_layers)})
    return layers, [layer for layer in range(0, n_layers, scoring["layer_stride"]) if layer not in layers]


def prefiltered(estimates: dict[tuple[int, int], dict], top_k: int) -> list[tuple[int, int]]:
    """The (position, layer) of the ``top_k`` candidates with the lowest estimated bypass, in the order the
    exhaustive search scores them."""
    ranked = sorted(estimates, key=lambda candidate: estimates[candidate]["bypass_estimate"])
    return sorted(ranked[:top_k])


def cosmic_layers(harmful_means: np.ndarray, harmless_means: np.ndarray) -> list[int]:
    """The tenth of the layers (at least one) where the last-token training means of the two classes have
    the lowest cosine similarity: where they are represented most differently."""
    a, b = harmful_means[-1], harmless_means[-1]  # [layers, d_model] at the last position
    cosines = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return sorted(np.argsort(cosines)[: max(1, math.ceil(COSMIC_LAYER_SHARE * len(cosines)))].tolist())


def mean_cosine(means: np.ndarray, reference: np.ndarray) -> float:
    """Mean over layers of the cosine between two sets of mean states [layers, d_model]."""
    norms = np.linalg.norm(means, axis=-1) * np.linalg.norm(reference, axis=-1)
    return float(np.mean((means * reference).sum(-1) / norms))


def candidate(candidates: dict, position: int, layer: int, affine: bool) -> Candidate:
    """The candidate at (``position``, ``layer``) of a candidates file's tensors; with ``affine``, with the
    reference points of its class means (stats/method_direction.affine_points)."""
    direction = candidates["candidates"][position, layer]
    if not affine:
        return Candidate(direction, layer)
    harmless, harmful = candidates["harmless_means"][position], candidates["harmful_means"][position, layer]
    points = affine_points(
        direction / np.linalg.norm(direction), harmless.astype(np.float64), harmful.astype(np.float64)
    )
    return Candidate(direction, layer, **points)


def score_candidates(inputs: dict, outputs: dict, model: dict, scoring: dict, execution: ExecutionSettings,
                     method: str = MEAN_DIFF) -> None:  # fmt: skip
    """candidate_scores.csv: one row per candidate (layer, position): for each scored one bypass, induce, kl
    and the COSMIC numbers, and the baselines without intervention; with ``prefilter: attribution`` every
    selectable candidate's first-order estimates (attribution.py), of which the ``prefilter_top_k`` with the
    lowest estimated bypass are scored exactly; the others are listed with ``scored`` false."""
    job = ModelJob.load(model, inputs, execution)
    runner, scored_by = job.runner, refusal_tokens(inputs)
    prompts = {name: job.encode(records) for name, records in split_prompts(inputs, "validation").items()}
    candidates_path = inputs["candidates"]
    tensors = load_file(candidates_path)
    with safe_open(candidates_path, "numpy") as handle:
        tokens = json.loads(handle.metadata()["refusal_directions"])["positions"]
    tensors["candidates"] = tensors["candidates"].astype(np.float64)
    candidates = tensors["candidates"]  # [positions, layers, d_model]
    affine = METHODS[method].edit == AFFINE
    n_positions, n_layers, _ = candidates.shape
    cosmic = cosmic_layers(tensors["harmful_means"], tensors["harmless_means"])
    layers, skipped = candidate_layers(n_layers, n_positions, scoring)
    log.info("%d candidates: %d position(s) x layers %s; COSMIC layers %s", n_positions * len(layers), n_positions,
             layers, cosmic)  # fmt: skip
    if skipped:
        log.info("not scored: layers %s (the layer filter or max_candidates leaves them out)", skipped)

    def baseline_pass(name: str):
        """Logits and last-position states of the ``name`` prompts without intervention."""
        return runner.last_states(prompts[name], Progress(f"baseline ({name})", len(prompts[name])))

    harmful_logits, harmful_states = baseline_pass(HARMFUL)
    harmless_logits, harmless_states = baseline_pass(HARMLESS)
    baseline = {
        "baseline_harmful_score": float(refusal_scores(harmful_logits, scored_by).mean()),
        "baseline_harmless_score": float(refusal_scores(harmless_logits, scored_by).mean()),
    }
    log.info("baseline refusal scores: harmful %.3f, harmless %.3f", *baseline.values())
    estimates = {}
    if scoring["prefilter"] == "attribution":
        estimate = attribution(job.model, job.tokenizer, prompts, scored_by, runner.device, runner.batches)
        estimates = {
            (position, layer): {"bypass_estimate": estimate.bypass(candidates[position, layer]),
                                "induce_estimate": estimate.induce(candidates[position, layer], layer)}
            for position in range(n_positions) for layer in layers
        }  # fmt: skip
        exact = prefiltered(estimates, scoring["prefilter_top_k"])
        log.info("prefilter: %d of %d candidates scored exactly (lowest estimated bypass)", len(exact), len(estimates))
    else:
        exact = [(position, layer) for position in range(n_positions) for layer in layers]
    scored = measure_candidates(
        runner, prompts, [candidate(tensors, position, layer, affine) for position, layer in exact],
        harmless_logits, scored_by, cosmic, ResumeState(execution.resume),
    )  # fmt: skip
    harmless_means, harmful_means = harmless_states[cosmic].mean(axis=1), harmful_states[cosmic].mean(axis=1)
    rows = []
    for (position, layer), measures in zip(exact, scored, strict=True):
        ablation = mean_cosine(measures.ablated_means, harmless_means)
        addition = mean_cosine(measures.added_means, harmful_means)
        rows.append({
            "layer": layer, "position": position - n_positions, "token": tokens[position],
            "bypass": measures.bypass, "induce": measures.induce, "kl": measures.kl,
            "cosmic_ablation": ablation, "cosmic_addition": addition, "cosmic_score": ablation + addition,
            "norm": float(np.linalg.norm(candidates[position, layer])), **baseline,
            "n_validation_harmful": len(prompts[HARMFUL]), "n_validation_harmless": len(prompts[HARMLESS]),
            "cosmic_layers": " ".join(map(str, cosmic)), "n_layers": n_layers, "scored": True,
            **estimates.get((position, layer), {}),
        })  # fmt: skip
    # The strided layers left out are listed without scores, so the table says they were not scored.
    common = {key: rows[0][key] for key in ("n_validation_harmful", "n_validation_harmless", "cosmic_layers",
                                             "n_layers", *baseline)}  # fmt: skip
    left_out = [(p, layer) for p in range(n_positions) for layer in skipped] + [c for c in estimates if c not in exact]
    for position, layer in left_out:
        norm = float(np.linalg.norm(candidates[position, layer]))
        rows.append({"layer": layer, "position": position - n_positions, "token": tokens[position],
                     "norm": norm, **common, "scored": False, **estimates.get((position, layer), {})})  # fmt: skip
    pd.DataFrame(rows).to_csv(outputs["scores"], index=False)
