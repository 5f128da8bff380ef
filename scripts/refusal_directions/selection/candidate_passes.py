"""The three passes that score a candidate direction exactly, with the rows of several candidates in one batch.

Each candidate needs its ablation everywhere on the harmful validation prompts (bypass), its addition at its
layer on the harmless ones (induce) and its ablation on the harmless ones (the KL). Run one pass at a time, a
candidate costs three passes and three prefix computations, and a pass smaller than a batch leaves the batch
part empty. Here every (candidate, pass, prompt) is a row under its own intervention
(model.hooks.RowInterventions: two variants per candidate, its ablation and its addition): the rows of a
group of candidates fill batches together and the shared prompt prefix runs once per variant. A group holds as
many candidates as one batch's prompt limit takes (at least one), so memory stays that of one batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from ..data.prompt_sets import HARMLESS
from ..interventions.condition_hooks import kl_divergence
from ..interventions.conditions import BYPASS, CONDITIONS, INDUCE
from ..model.forward import ModelRunner, PositionRecorder
from ..model.hooks import RowInterventions
from ..model.refusal_score import refusal_scores
from ..model.resume import ResumeState
from ..workflow.progress import Progress

log = logging.getLogger(__name__)
# The passes of one candidate: (name, prompt set, whether the variant is its addition rather than its ablation).
PASSES = (
    ("bypass", CONDITIONS[BYPASS].prompt_set, False),
    ("induce", CONDITIONS[INDUCE].prompt_set, True),
    ("kl", HARMLESS, False),
)


@dataclass(frozen=True)
class Candidate:
    direction: np.ndarray  # added as it is; ablation projects out its unit vector
    layer: int  # where the addition acts
    # An affine edit's reference points (stats/method_direction.affine_points): ablation holds the component
    # along the unit vector at each layer's reference [n_layers, d], addition moves it to the target.
    ablation_references: np.ndarray | None = None
    addition_target: np.ndarray | None = None


@dataclass
class CandidateMeasures:
    """A candidate's mean refusal scores under ablation (harmful prompts) and addition (harmless prompts), the
    mean next-token KL of its ablation on harmless prompts, and the mean last-token states of the ablated and
    the added prompts at the ``layers`` asked for [len(layers), d_model]."""

    bypass: float
    induce: float
    kl: float
    ablated_means: np.ndarray
    added_means: np.ndarray


def group_size(max_prompts: int, rows_per_candidate: int) -> int:
    """How many candidates share batches: as many as one batch's prompt limit holds, at least one."""
    return max(1, max_prompts // rows_per_candidate)


def measure_candidates(runner: ModelRunner, prompts: dict[str, list[list[int]]], candidates: list[Candidate],
                       baseline_logits: torch.Tensor, scored_by: list[int], layers: list[int],
                       resume: ResumeState | None = None) -> list[CandidateMeasures]:  # fmt: skip
    """Each candidate's measures (in order), from its passes over ``prompts`` (token ids by prompt set);
    ``baseline_logits`` are the harmless prompts' next-token logits without intervention (for the KL). With
    ``resume``, each group's measures are kept when done, and a group an earlier run finished is not run."""
    rows_per_candidate = sum(len(prompts[prompt_set]) for _, prompt_set, _ in PASSES)
    size = group_size(runner.batches.max_prompts, rows_per_candidate)
    log.info("%d candidates in groups of %d (%d rows each)", len(candidates), size, rows_per_candidate)
    measures = []
    for start in range(0, len(candidates), size):
        group, numbers = candidates[start : start + size], np.arange(start, min(start + size, len(candidates)))
        saved = resume.saved(numbers) if resume is not None else None
        if saved is not None:
            log.info("candidates %d-%d: measured by an earlier run", start + 1, start + len(group))
            measures += [CandidateMeasures(*(float(saved[name][i]) for name in ("bypass", "induce", "kl")),
                                           saved["ablated_means"][i], saved["added_means"][i])
                         for i in range(len(group))]  # fmt: skip
            continue
        progress = Progress(f"candidates {start + 1}-{start + len(group)} of {len(candidates)}: bypass, induce and KL",
                            rows_per_candidate * len(group))  # fmt: skip
        done = _measure_group(runner, prompts, group, baseline_logits, scored_by, layers, progress)
        if resume is not None:
            resume.save(numbers, {name: np.array([getattr(m, name) for m in done])
                                  for name in ("bypass", "induce", "kl", "ablated_means", "added_means")})  # fmt: skip
        measures += done
    return measures


def _measure_group(runner, prompts, group, baseline_logits, scored_by, layers, progress) -> list[CandidateMeasures]:
    d_model = len(group[0].direction)
    units, additions, at = np.zeros((2 * len(group), d_model)), np.zeros((2 * len(group), d_model)), []
    affine = [candidate.ablation_references for candidate in group if candidate.ablation_references is not None]
    references = np.zeros((len(units), *affine[0].shape)) if affine else None
    replaced = np.zeros_like(units) if affine else None
    for index, candidate in enumerate(group):
        unit = candidate.direction / np.linalg.norm(candidate.direction)
        units[2 * index] = unit
        additions[2 * index + 1] = candidate.direction
        at += [-1, candidate.layer]
        if candidate.ablation_references is not None:
            references[2 * index] = candidate.ablation_references
            additions[2 * index + 1] = candidate.addition_target
            replaced[2 * index + 1] = unit
    # One row per (candidate, pass, prompt), in that order.
    token_ids, variants, row_of = [], [], []
    for index in range(len(group)):
        for name, prompt_set, adds in PASSES:
            for prompt, ids in enumerate(prompts[prompt_set]):
                token_ids.append(ids)
                variants.append(2 * index + adds)
                row_of.append((index, name, prompt))
    scores, kls = np.empty(len(token_ids)), np.full(len(token_ids), np.nan)
    states = np.empty((len(token_ids), len(layers), d_model))
    is_kl = np.array([name == "kl" for _, name, _ in row_of])
    prompt_of = np.array([prompt for _, _, prompt in row_of])

    def keep(indices, logits):
        logits = logits.float().cpu()
        scores[indices] = refusal_scores(logits, scored_by)
        kl_rows = is_kl[indices]
        if kl_rows.any():
            kls[indices[kl_rows]] = kl_divergence(baseline_logits[prompt_of[indices[kl_rows]]], logits[kl_rows])
        recorded = recorder.rows()
        states[indices] = np.stack([recorded[layer][:, -1] for layer in layers], axis=1)

    with RowInterventions(runner.model, units, additions, np.array(at), references, replaced) as rows:
        recorder = PositionRecorder(runner.model)  # after the hooks: it records the block outputs with the addition
        try:
            runner.each_batch(token_ids, keep, progress, rows=rows, variants=np.array(variants))
        finally:
            recorder.remove()
    measures = []
    for index in range(len(group)):
        of_pass = {name: np.array([row for row, (i, n, _) in enumerate(row_of) if i == index and n == name])
                   for name, _, _ in PASSES}  # fmt: skip
        measures.append(CandidateMeasures(
            bypass=float(scores[of_pass["bypass"]].mean()), induce=float(scores[of_pass["induce"]].mean()),
            kl=float(kls[of_pass["kl"]].mean()), ablated_means=states[of_pass["bypass"]].mean(axis=0),
            added_means=states[of_pass["induce"]].mean(axis=0),
        ))  # fmt: skip
    return measures
