"""One runner for any list of conditions (conditions.py) in a model job: under each condition, every prompt of
its set gets a greedy response and a refusal score (from generation's first step), and where the condition
records it, the next-token KL on harmless prompts against no intervention, with a progress line per batch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..data.prompt_sets import HARMLESS
from ..model.job import ModelJob
from ..model.refusal_score import refusal_scores
from ..model.resume import ResumeState, tensor_texts, texts_tensor
from ..workflow.jsonio import write_jsonl
from ..workflow.progress import Progress
from .condition_hooks import condition_hooks, kl_divergence
from .conditions import CONDITIONS, InterventionVectors, baseline_of


class ConditionRunner:
    """Runs conditions on one job's prompts (``prompts``: the prompt records of each set) and keeps every
    response and KL row until ``write``. The baseline on harmless prompts runs before any condition whose
    KL is recorded: every KL is measured against it."""

    def __init__(self, job: ModelJob, prompts: dict[str, list[dict]], scored_by: list[int], max_new_tokens: int,
                 resume: ResumeState | None = None):  # fmt: skip
        self.job, self.prompts, self.scored_by, self.max_new_tokens = job, prompts, scored_by, max_new_tokens
        self.token_ids = {name: job.encode(records) for name, records in prompts.items()}
        self.generations: list[dict] = []
        self.divergences: list[dict] = []
        self.baseline_logits = None
        self.resume = resume if resume is not None else ResumeState(None)

    def run_all(self, names, vectors: InterventionVectors | None = None) -> None:
        """Each named condition that this run has the vectors for (a control contrast is optional)."""
        for name in names:
            if vectors is None or CONDITIONS[name].available(vectors):
                self.run(name, vectors)

    def run(self, name: str, vectors: InterventionVectors | None = None) -> None:
        """One condition: its responses, refusal scores and KL, kept when done (model/resume.py); a condition that
        an earlier run of the job finished is taken from there instead of running again."""
        condition = CONDITIONS[name]
        layer = vectors.layer if condition.intervenes else None
        part = f"{name} at layer {layer}"
        measured = self.resume.saved(part)
        if measured is None:
            measured = self._measure(name, layer, vectors)
            self.resume.save(part, measured)
        if name == baseline_of(HARMLESS):
            self.baseline_logits = torch.from_numpy(measured["logits"])
        responses = tensor_texts(measured["responses"])
        self.generations += generation_records(
            name, layer, self.prompts[condition.prompt_set], responses, measured["refusal_scores"]
        )
        if "kl" in measured:
            self.divergences.append(divergence_row(name, layer, measured["kl"]))

    def _measure(self, name: str, layer: int | None, vectors: InterventionVectors | None) -> dict[str, np.ndarray]:
        """The responses (UTF-8 JSON), refusal scores and, where the condition records it, the KL against the
        harmless baseline (and the baseline's own logits, which later conditions' KL needs)."""
        condition = CONDITIONS[name]
        prompt_set, runner = condition.prompt_set, self.job.runner
        ids = self.token_ids[prompt_set]
        label = f"{name} ({prompt_set})" if layer is None else f"layer {layer} {name} ({prompt_set})"
        with condition_hooks(condition, self.job.model, vectors):
            generating = Progress(f"{label}: generation and refusal score", len(ids))
            responses, logits = runner.generate(ids, self.max_new_tokens, progress=generating)
            harmless_logits = None
            if condition.records_kl and prompt_set == HARMLESS:
                harmless_logits = logits
            elif condition.records_kl:
                harmless = self.token_ids[HARMLESS]
                progress = Progress(f"{label}: next-token distribution, harmless prompts", len(harmless))
                harmless_logits = runner.next_token_logits(harmless, progress)
        measured = {
            "responses": texts_tensor(responses),
            "refusal_scores": refusal_scores(logits, self.scored_by),
        }
        if name == baseline_of(HARMLESS):
            measured["logits"] = logits.numpy()
        if harmless_logits is not None:
            measured["kl"] = kl_divergence(self.baseline_logits, harmless_logits)
        return measured

    def write(self, generations_path: str, kl_path: str) -> None:
        write_results(self.generations, self.divergences, generations_path, kl_path)


def generation_records(name: str, layer: int | None, prompts: list[dict], responses: list[str], scores) -> list[dict]:
    """One condition's responses as the summary reads them (condition_summary.py), one record per prompt."""
    prompt_set = CONDITIONS[name].prompt_set
    return [
        {"condition": name, "set": prompt_set, "layer": layer, "id": record["id"], "row": record["row"],
         "text": record["text"], "response": response, "refusal_score": float(score)}
        for record, response, score in zip(prompts, responses, scores, strict=True)
    ]  # fmt: skip


def divergence_row(name: str, layer: int | None, kl: np.ndarray) -> dict:
    """A condition's next-token KL on the harmless prompts against no intervention (``kl``: per prompt)."""
    return {"layer": layer, "condition": name, "mean_kl": float(kl.mean()), "median_kl": float(np.median(kl)),
            "max_kl": float(kl.max())}  # fmt: skip


def write_results(generations: list[dict], divergences: list[dict], generations_path: str, kl_path: str) -> None:
    write_jsonl(generations_path, generations)
    columns = ["layer", "condition", "mean_kl", "median_kl", "max_kl"]
    pd.DataFrame(divergences, columns=columns).to_csv(kl_path, index=False)
