"""Check the exported edited model against what it claims to be: the source model under directional
ablation of r by forward hooks (``model.hooks.ablate_everywhere``, the registry's ``ablation_all``). The
edited checkpoint is loaded with plain ``transformers`` (AutoModelForCausalLM, AutoTokenizer: no project
loader, no hooks but the ones that measure), the source through ``ModelJob`` with the hooks, both on the test
split's harmful and harmless prompts. A difference beyond the tolerances is a bug, never a result: the job
fails with one line and writes nothing."""

from __future__ import annotations

import gc
import logging

import numpy as np
import torch

from ..data.chat_format import PromptFormat
from ..data.prompt_sets import HARMFUL, HARMLESS, MAIN_SETS
from ..interventions.condition_hooks import kl_divergence
from ..interventions.condition_runner import divergence_row, generation_records, write_results
from ..interventions.conditions import EDITED
from ..model.forward import ModelRunner
from ..model.hooks import ablate_everywhere
from ..model.job import ModelJob, evaluation_prompts, refusal_tokens
from ..model.loading import decoder_layers, resolve_device
from ..model.refusal_score import refusal_scores
from ..workflow.errors import UserError
from ..workflow.execution import ExecutionSettings
from ..workflow.jsonio import write_json
from ..workflow.progress import Progress
from .orthogonalization import export_direction

log = logging.getLogger(__name__)

# The largest differences a correct edit shows, by the coarsest dtype involved (the saved checkpoint's and
# the one both models run in). float32: the edit is exact up to float rounding of the projection (relative
# 1e-7 per weight), which moves logits by ~1e-6 of their scale and leaves ~1e-7 of the residual stream along
# r; the bounds leave two orders of margin and still catch any missed writer or a still-tied head.
# bfloat16/float16: the edited weights are rounded to 8 (11) significant bits after the edit while the hooks
# project exactly, so logits move by a few percent of their scale and a greedy continuation can flip at a near
# tie. Measured at Qwen2.5-1.5B's shape with random weights in bf16 on CUDA (benchmarks/README.md, "The edited
# model"): a correct edit gave logits 0.025-0.043, refusal score 0.03-0.06, KL 1.3e-4-3.7e-4, 69-100% of the
# continuations identical, residual component 0.86e-3-1.1e-3, head 0; one block's MLP output left unedited gave
# residual 8.0e-3 and nothing else out of the ordinary; a head edited with the tied embedding, head 1 and
# nothing else. The residual bound sits between the two; the head figure is exact in any dtype (the head is
# saved untouched, 2e-2 allows a saved dtype coarser than the source's).
TOLERANCES = {
    "float32": {"max_relative_logit_difference": 1e-4, "max_refusal_score_difference": 1e-3, "mean_kl": 1e-6,
                "min_identical_continuations": 1.0, "max_residual_component": 1e-5, "max_head_change_along_r": 1e-6},
    "half": {"max_relative_logit_difference": 0.1, "max_refusal_score_difference": 0.5, "mean_kl": 1e-2,
             "min_identical_continuations": 0.5, "max_residual_component": 4e-3, "max_head_change_along_r": 2e-2},
}  # fmt: skip


def tolerances(*dtypes: torch.dtype) -> dict:
    """The tolerances of the coarsest of ``dtypes``."""
    return TOLERANCES["float32" if all(dtype == torch.float32 for dtype in dtypes) else "half"]


class DirectionComponent:
    """Forward hooks on the embedding and every decoder block that keep the largest |Q h| / |h| of any position
    they see (h: the residual stream after that block; Q: the unit direction r, or the rows of a basis)."""

    def __init__(self, model, directions: np.ndarray):
        self.basis = torch.as_tensor(np.atleast_2d(directions), dtype=torch.float32)
        self.largest = 0.0
        modules = [model.get_input_embeddings(), *decoder_layers(model)]
        self.handles = [module.register_forward_hook(self._hook) for module in modules]

    def _hook(self, _module, _inputs, output):
        hidden = (output[0] if isinstance(output, tuple) else output).float()
        norm = hidden.norm(dim=-1)
        ratio = (hidden @ self.basis.to(hidden.device).T).norm(dim=-1) / norm
        ratio = ratio[torch.isfinite(ratio) & (norm > 0)]
        if ratio.numel():
            self.largest = max(self.largest, float(ratio.max()))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def head_along(model, directions: np.ndarray) -> np.ndarray:
    """What the LM head reads along r (or each row of a basis): its weight times r, one value per token (and
    direction), float64, CPU."""
    weight = model.get_output_embeddings().weight.detach()
    basis = torch.as_tensor(np.asarray(directions).T, dtype=torch.float32, device=weight.device)
    return (weight.float() @ basis).double().cpu().numpy()


def head_change(source: np.ndarray, edited: np.ndarray) -> float:
    """How far the edited head's reading along r moved from the source's, relative: 0 for an untouched head, 1
    for a head edited along with a tied embedding. Under ablation nothing reaches the head along r, so only
    this weight-level figure sees that bug in half precision, where the logits' rounding hides it."""
    return float(np.linalg.norm(edited - source) / np.linalg.norm(source))


def load_edited(folder: str, dtype: torch.dtype, device: torch.device, execution: ExecutionSettings):
    """The edited checkpoint and its tokenizer as a user loads them (plain transformers), on the job's device."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(execution.threads)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, device_map=execution.device_map)
    if execution.device_map is None:
        model.to(device)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return model, tokenizer


def _run(runner: ModelRunner, ids: dict, max_new_tokens: int, label: str) -> dict:
    results = {}
    for name in MAIN_SETS:
        progress = Progress(f"{label} ({name}): generation and next-token logits", len(ids[name]))
        results[name] = runner.generate(ids[name], max_new_tokens, progress=progress)
    return results


def compare(edited: dict, ablated: dict, scored_by: list[int]) -> dict:
    """The figures of the check from each set's (responses, next-token logits) of both models."""
    logits_e = torch.cat([edited[name][1] for name in MAIN_SETS]).double()
    logits_a = torch.cat([ablated[name][1] for name in MAIN_SETS]).double()
    scale = logits_a.abs().amax(-1)
    relative = ((logits_e - logits_a).abs().amax(-1) / scale).max().item()
    scores = np.abs(refusal_scores(logits_e, scored_by) - refusal_scores(logits_a, scored_by))
    kl = kl_divergence(logits_a, logits_e)
    same = [e == a for name in MAIN_SETS for e, a in zip(edited[name][0], ablated[name][0], strict=True)]
    return {
        "max_relative_logit_difference": relative,
        "max_refusal_score_difference": float(scores.max()),
        "mean_kl": float(kl.mean()),
        "identical_continuations": float(np.mean(same)),
        "n_different_continuations": int(len(same) - sum(same)),
    }


def failures(figures: dict, bounds: dict) -> list[str]:
    """Each figure beyond its tolerance, as 'name value (tolerance)'."""
    problems = [
        f"{name} {figures[name]:.3g} > {bound:g}"
        for name, bound in bounds.items()
        if name.startswith(("max_", "mean_")) and not figures[name] <= bound
    ]
    identical, least = figures["identical_continuations"], bounds["min_identical_continuations"]
    if not identical >= least:
        problems.append(f"identical_continuations {identical:.3g} < {least:g}")
    return problems


def check_edited_model(
    inputs: dict, outputs: dict, model: dict, evaluation: dict, layer: int | None, execution: ExecutionSettings
) -> None:
    """edited_check.json: the edited checkpoint (``inputs['edited']``) against the source model with r
    ablated by hooks, on the test split (``evaluation``: n_prompts, seed, max_new_tokens); and the edited
    model as a condition of the evaluation (``edited_model``): its responses to the harmful prompts with their
    refusal scores, and its next-token KL on the harmless prompts against the unedited model."""
    unit, direction = export_direction(inputs, layer)
    job = ModelJob.open(model, inputs)
    prompts = evaluation_prompts(inputs, evaluation)
    ids = {name: job.encode(prompts[name]) for name in MAIN_SETS}
    max_new_tokens = evaluation["max_new_tokens"]
    # The source first, freed before the edited model loads: one model in memory at a time.
    job.load_weights(execution)
    run_dtype = job.model.dtype
    source_head = head_along(job.model, unit)
    progress = Progress("source model (harmless): next-token distribution", len(ids[HARMLESS]))
    unedited_harmless = job.runner.next_token_logits(ids[HARMLESS], progress)
    with ablate_everywhere(job.model, unit):
        ablated = _run(job.runner, ids, max_new_tokens, "source model, r ablated by hooks")
    job.model = job.runner = None
    gc.collect()
    device = resolve_device(execution.device)
    edited_model, edited_tokenizer = load_edited(inputs["edited"], run_dtype, device, execution)
    saved_dtype = _saved_dtype(inputs["edited"])
    edited_format = PromptFormat(edited_tokenizer, model["prompt_format"], model["system_prompt"], model["id"])
    for name in MAIN_SETS:
        if [edited_format.encode(record["text"]) for record in prompts[name]] != ids[name]:
            raise UserError(f"{inputs['edited']}: its tokenizer encodes the {name} prompts unlike the source's")
    component = DirectionComponent(edited_model, unit)
    try:
        runner = ModelRunner.for_job(edited_model, edited_tokenizer, device, execution)
        edited = _run(runner, ids, max_new_tokens, "edited model")
    finally:
        component.remove()
    figures = {
        **compare(edited, ablated, refusal_tokens(inputs)),
        "max_residual_component": component.largest,
        "max_head_change_along_r": head_change(source_head, head_along(edited_model, unit)),
    }
    bounds = tolerances(run_dtype, saved_dtype)
    result = {
        **figures,
        "tolerances": bounds,
        "passed": True,
        "n_prompts": {name: len(ids[name]) for name in MAIN_SETS},
        "max_new_tokens": max_new_tokens,
        "run_dtype": str(run_dtype).removeprefix("torch."),
        "saved_dtype": str(saved_dtype).removeprefix("torch."),
        "direction": {key: direction[key] for key in ("source", "layer", "position", "method", "sha256")},
        "split": "test",
    }
    log.info("check: %s", {key: figures[key] for key in figures})
    problems = failures(figures, bounds)
    if problems:
        raise UserError(
            f"the edited model differs from the hook ablation it should equal ({'; '.join(problems)}): "
            "a bug in the export, not a result"
        )
    write_json(outputs["check"], result)
    responses, logits = edited[HARMFUL]
    scores = refusal_scores(logits, refusal_tokens(inputs))
    write_results(
        generation_records(EDITED, direction["layer"], prompts[HARMFUL], responses, scores),
        [divergence_row(EDITED, direction["layer"], kl_divergence(unedited_harmless, edited[HARMLESS][1]))],
        outputs["generations"], outputs["kl"],
    )  # fmt: skip


def _saved_dtype(folder: str) -> torch.dtype:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(folder)
    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or torch.float32
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype
