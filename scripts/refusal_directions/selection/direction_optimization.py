"""Refusal Direction Optimization and refusal cones (Wollschläger et al. 2025, "The Geometry of Refusal in
Large Language Models"): directions found by gradient descent instead of read off the class means.

The objective of a basis B of k rows (``rdo``: k = 1), at a layer l and with an addition scale s (the
difference in means' norm there), on a batch of harmful and harmless prompts:

- ablation: with the span of B ablated everywhere, harmful prompts should comply: mean softplus(score),
  i.e. -log P(not refusal) (score: the refusal score, model/refusal_score.py);
- addition: each direction v of the cone (a random convex combination of B's unit rows; for k = 1, B itself)
  added at block l with norm s should make harmless prompts refuse: mean softplus(-score);
- retain: with the span ablated, harmless prompts' next-token distribution should stay: KL(unchanged || ablated).

loss = ablation + addition_weight * addition + kl_weight * retain, minimized by Adam from the difference in
means (the cone's other rows: seeded random directions), on minibatches of the train split; every
``validate_every`` steps the loss on the validation split decides which basis is kept, and ``patience``
validations without improvement stop the run.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.numpy import load_file

from ..data.prompt_sets import HARMFUL, HARMLESS
from ..model.batching import left_padded
from ..model.hooks import ablate_span, add_vector
from ..model.job import ModelJob, refusal_tokens, split_prompts
from ..model.resume import ResumeState
from ..stats.direction_methods import basis_size, check_basis_size
from ..stats.method_direction import MethodDirection, save_method_direction
from ..workflow.errors import UserError
from ..workflow.execution import ExecutionSettings
from ..workflow.jsonio import read_json
from ..workflow.progress import Progress
from .attribution import differentiable_scores

log = logging.getLogger(__name__)
STATE = "optimizer state"
# The columns of optimization.csv, one row per step and per validation (kept with the state for a resume).
HISTORY = ("step", "validation", "loss", "ablation", "addition", "kl")


def basis_of(raw: torch.Tensor) -> torch.Tensor:
    """Orthonormal rows spanning the rows of ``raw`` (differentiable; the first keeps its sense)."""
    if len(raw) == 1:
        return raw / raw.norm()
    q, r = torch.linalg.qr(raw.T)
    return (q * torch.sign(torch.diagonal(r))).T


def cone_directions(raw: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Unit directions of the cone of ``raw``'s rows: each row of ``weights`` [m, k] (non-negative) combines
    the unit rows."""
    combined = weights.to(raw.dtype) @ (raw / raw.norm(dim=-1, keepdim=True))
    return combined / combined.norm(dim=-1, keepdim=True)


def cone_weights(k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random convex combinations of ``k`` rows (Dirichlet(1)); one direction has only itself."""
    return np.ones((1, 1)) if k == 1 else rng.dirichlet(np.ones(k), size=n)


@dataclass
class RefusalObjective:
    """The loss of a basis on one batch (see the module's docstring), on a model whose weights are frozen."""

    model: object
    layer: int
    scale: float
    refusal_ids: list[int]
    pad_id: int
    device: torch.device
    addition_weight: float
    kl_weight: float

    def _logits(self, token_ids: list[list[int]]) -> torch.Tensor:
        batch = left_padded(token_ids, self.pad_id, self.device)
        return self.model(**batch, use_cache=False, logits_to_keep=1).logits[:, -1, :].double()

    def __call__(self, raw: torch.Tensor, harmful: list[list[int]], harmless: list[list[int]],
                 unchanged_harmless: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, dict]:  # fmt: skip
        """The total loss (in the graph of ``raw``) and its three parts as numbers. ``unchanged_harmless``: the
        harmless prompts' next-token logits without intervention; ``weights``: the cone's combinations."""
        basis = basis_of(raw)
        with ablate_span(self.model, basis.to(self.model.dtype)):
            ablated = self._logits(harmful + harmless)
        ablation = F.softplus(differentiable_scores(ablated[: len(harmful)], self.refusal_ids)).mean()
        base = unchanged_harmless.double().log_softmax(-1)
        retain = (base.exp() * (base - ablated[len(harmful) :].log_softmax(-1))).sum(-1).mean()
        additions = []
        for direction in cone_directions(raw, weights):
            with add_vector(self.model, (self.scale * direction).to(self.model.dtype), self.layer):
                added = self._logits(harmless)
            additions.append(F.softplus(-differentiable_scores(added, self.refusal_ids)).mean())
        addition = torch.stack(additions).mean()
        total = ablation + self.addition_weight * addition + self.kl_weight * retain
        parts = {"ablation": ablation, "addition": addition, "kl": retain}
        return total, {name: float(value.detach()) for name, value in parts.items()}


def initial_basis(direction: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The difference in means (unit) and k - 1 seeded random unit directions orthogonal to it and each other."""
    rows = [direction / np.linalg.norm(direction)]
    rng = np.random.default_rng([seed, k])
    for _ in range(k - 1):
        draw = rng.normal(size=direction.shape)
        for row in rows:
            draw -= (draw @ row) * row
        rows.append(draw / np.linalg.norm(draw))
    return np.stack(rows)


@dataclass
class OptimizationResult:
    basis: np.ndarray  # the kept raw rows [k, d] (their span: basis_of)
    history: list[dict]
    best_step: int
    steps_run: int


def optimize(objective: RefusalObjective, start: np.ndarray, train: dict, validation: dict,
             unchanged: dict, settings: dict, resume: ResumeState | None = None) -> OptimizationResult:  # fmt: skip
    """Adam on the rows of ``start`` [k, d] against ``objective``: ``train`` and ``validation`` are token ids
    by prompt set, ``unchanged`` the harmless prompts' next-token logits without intervention by split
    ("train", "validation"); ``settings``: steps, learning_rate, batch_prompts, validate_every, patience,
    seed. With ``resume``, the state at each validation is kept, and a rerun continues from it."""
    raw = torch.nn.Parameter(torch.tensor(start, dtype=torch.float64))  # a copy: the steps must not move start
    optimizer = torch.optim.Adam([raw], lr=settings["learning_rate"])
    k, seed = len(start), settings["seed"]
    # The validation's cone directions, fixed (the steps draw theirs from [seed, step], step >= 1).
    validation_weights = torch.as_tensor(cone_weights(k, max(k, 2), np.random.default_rng([seed, 0])))
    history, best = [], {"loss": np.inf, "raw": start.copy(), "step": 0}
    first, stale = 1, 0
    saved = resume.saved(STATE) if resume is not None else None
    if saved is not None:
        first, stale = int(saved["step"][0]) + 1, int(saved["stale"][0])
        raw.data = torch.as_tensor(saved["raw"])
        optimizer.state[raw] = {"step": torch.tensor(float(saved["step"][0])),
                                "exp_avg": torch.as_tensor(saved["exp_avg"]),
                                "exp_avg_sq": torch.as_tensor(saved["exp_avg_sq"])}  # fmt: skip
        best = {"loss": float(saved["best_loss"][0]), "raw": saved["best_raw"], "step": int(saved["best_step"][0])}
        history = [dict(zip(HISTORY, row, strict=True)) for row in saved["history"].tolist()]
        log.info("resuming at step %d (kept by an earlier run)", first)
    step = first - 1
    for step in range(first, settings["steps"] + 1):
        rng = np.random.default_rng([seed, step])
        rows = {name: rng.choice(len(train[name]), min(settings["batch_prompts"], len(train[name])), replace=False)
                for name in (HARMFUL, HARMLESS)}  # fmt: skip
        optimizer.zero_grad()
        loss, parts = objective(raw, [train[HARMFUL][i] for i in rows[HARMFUL]],
                                [train[HARMLESS][i] for i in rows[HARMLESS]], unchanged["train"][rows[HARMLESS]],
                                torch.as_tensor(cone_weights(k, k, rng)))  # fmt: skip
        loss.backward()
        optimizer.step()
        history.append({"step": step, "validation": 0, "loss": float(loss.detach()), **parts})
        log.info("step %d of %d: train loss %.4f (ablation %.4f, addition %.4f, KL %.4f)", step, settings["steps"],
                 history[-1]["loss"], parts["ablation"], parts["addition"], parts["kl"])  # fmt: skip
        if step % settings["validate_every"] and step != settings["steps"]:
            continue
        with torch.no_grad():
            loss, parts = objective(raw, validation[HARMFUL], validation[HARMLESS], unchanged["validation"],
                                    validation_weights)  # fmt: skip
        history.append({"step": step, "validation": 1, "loss": float(loss), **parts})
        log.info("step %d: validation loss %.4f", step, float(loss))
        if float(loss) < best["loss"]:
            best, stale = {"loss": float(loss), "raw": raw.detach().numpy().copy(), "step": step}, 0
        else:
            stale += 1
        if resume is not None:
            state = optimizer.state[raw]
            resume.save(STATE, {
                "step": np.array([step]), "stale": np.array([stale]), "raw": raw.detach().numpy(),
                "exp_avg": state["exp_avg"].numpy(), "exp_avg_sq": state["exp_avg_sq"].numpy(),
                "best_loss": np.array([best["loss"]]), "best_raw": best["raw"], "best_step": np.array([best["step"]]),
                "history": np.array([[row[key] for key in HISTORY] for row in history]),
            })  # fmt: skip
        if stale >= settings["patience"]:
            log.info("stopped at step %d: %d validations without improvement", step, stale)
            break
    return OptimizationResult(best["raw"], history, best["step"], step)


def optimization_start(inputs: dict, settings: dict) -> tuple[np.ndarray, int, int, str]:
    """The difference in means the optimization starts from, its layer and position, and where it comes from:
    the selected mean_diff direction (``inputs['selected']``), or the train-split direction of the configured
    ``layer`` (``inputs['directions']``, the last token)."""
    if settings["layer"] is None:
        with safe_open(inputs["selected"], "numpy") as handle:
            where = json.loads(handle.metadata()["refusal_directions"])
        direction = load_file(inputs["selected"])["direction"].astype(np.float64)
        return direction, int(where["layer"]), int(where["position"]), "the selected mean_diff direction"
    differences = load_file(inputs["directions"])["mean_differences"]
    layer = settings["layer"]
    if not 0 <= layer < len(differences):
        raise UserError(f"the optimization's layer {layer} is outside the model (layers 0-{len(differences) - 1})")
    return differences[layer].astype(np.float64), layer, -1, f"the train-split direction of layer {layer}"


def optimize_direction(inputs: dict, outputs: dict, model: dict, method: str, settings: dict,
                       execution: ExecutionSettings) -> None:  # fmt: skip
    """direction.safetensors (stats/method_direction.py) and optimization.csv (the loss at every step, and on
    the validation split at each validation) of ``rdo`` or ``cone`` (``settings``: directions.<method>)."""
    k = basis_size(method, settings)
    check_basis_size(method, k, int(read_json(inputs["manifest"])["d_model"]))
    direction, layer, position, source = optimization_start(inputs, settings)
    job = ModelJob.load(model, inputs, execution)
    for parameter in job.model.parameters():
        parameter.requires_grad_(False)
    ids = {split: {name: job.encode(records) for name, records in split_prompts(inputs, split).items()}
           for split in ("train", "validation")}  # fmt: skip
    unchanged = {split: job.runner.next_token_logits(ids[split][HARMLESS], Progress(f"unchanged ({split}, harmless)",
                                                                                     len(ids[split][HARMLESS])))
                 for split in ids}  # fmt: skip
    scale = float(np.linalg.norm(direction))
    objective = RefusalObjective(job.model, layer, scale, refusal_tokens(inputs), job.tokenizer.pad_token_id,
                                 job.runner.device, settings["addition_weight"], settings["kl_weight"])  # fmt: skip
    log.info("%s: k = %d at layer %d, position %d, from %s", method, k, layer, position, source)
    result = optimize(objective, initial_basis(direction, k, settings["seed"]), ids["train"], ids["validation"],
                      unchanged, settings, ResumeState(execution.resume))  # fmt: skip
    raw = torch.as_tensor(result.basis)
    center = cone_directions(raw, torch.full((1, k), 1.0 / k))[0]
    save_method_direction(outputs["direction"], MethodDirection(
        method, basis_of(raw).numpy(), scale * center.numpy(), layer, position,
        about={"source": f"optimized from {source}", "best_step": result.best_step, "steps_run": result.steps_run},
    ))  # fmt: skip
    pd.DataFrame(result.history).to_csv(outputs["history"], index=False)
