"""First-order estimates of every candidate's bypass and induce scores (attribution patching), from one forward
and backward pass per validation batch instead of three passes per candidate.

With s the refusal score of a prompt (model/refusal_score.py) and w_i every output that a residual-stream writer
(the embedding, each attention, each MLP: model.hooks.residual_writers) adds at each position:

- bypass: ablating a unit direction r everywhere changes each w_i by -(w_i . r) r, so to first order
  s changes by -sum_i (g_i . r)(w_i . r) = -r^T M r, where g_i = ds/dw_i and M = sum_i g_i w_i^T (summed over
  the writers and positions of the harmful prompts; one d x d matrix serves every candidate);
- induce: adding v to the output of block l at every position changes s by sum_t G_l,t . v, with G_l,t =
  ds/d(output of block l at position t) on the harmless prompts.

Exact where s is linear in the change; an ablation that removes much of the refusal is not small, so the
estimate ranks candidates (selection.prefilter) rather than replacing their exact scores, and candidate
scoring writes it next to the exact score of the candidates it scored both ways.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.prompt_sets import HARMFUL, HARMLESS
from ..model.batching import BatchRunner, left_padded
from ..model.hooks import hooks, residual_writers
from ..model.loading import decoder_layers
from ..workflow.progress import Progress


def differentiable_scores(logits: torch.Tensor, token_ids: list[int]) -> torch.Tensor:
    """model.refusal_score.refusal_scores, kept in the autograd graph: log P(refusal tokens) - log P(the rest)."""
    refusal = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
    refusal[token_ids] = True
    return logits[:, refusal].logsumexp(-1) - logits[:, ~refusal].logsumexp(-1)


@dataclass(frozen=True)
class Attribution:
    """The sums the estimates need, over the validation prompts of each set, and the scores without change."""

    writer_products: np.ndarray  # M = sum g w^T over the harmful prompts' writers and positions, [d, d]
    block_gradients: np.ndarray  # sum over the harmless prompts' positions of ds/d(block output), [layers, d]
    harmful_score: float
    harmless_score: float
    n_harmful: int
    n_harmless: int

    def bypass(self, direction: np.ndarray) -> float:
        """Estimated mean refusal score of the harmful prompts with ``direction`` ablated everywhere."""
        unit = direction / np.linalg.norm(direction)
        return float(self.harmful_score - unit @ self.writer_products @ unit / self.n_harmful)

    def induce(self, direction: np.ndarray, layer: int) -> float:
        """Estimated mean refusal score of the harmless prompts with ``direction`` added at block ``layer``."""
        return float(self.harmless_score + self.block_gradients[layer] @ direction / self.n_harmless)


def _keep_outputs(kept: list):
    """A forward hook that keeps the module's output in the graph (its gradient is read after backward)."""

    def hook(_module, _inputs, output):
        hidden = output[0] if isinstance(output, tuple) else output
        if not hidden.requires_grad:  # the embedding's output: the first tensor of the graph
            hidden.requires_grad_(True)
        hidden.retain_grad()
        kept.append(hidden)

    return hook


def _backward(model, token_ids: list[list[int]], refusal_ids: list[int], modules, pad_id: int, device):
    """One batch forward and backward: the refusal scores, the kept outputs of ``modules`` (each with its
    gradient) in module order, and the mask of the real (not padding) positions [B, T]."""
    kept: list[torch.Tensor] = []
    batch = left_padded(token_ids, pad_id, device)
    with torch.enable_grad(), hooks([(module, _keep_outputs(kept)) for module in modules]):
        logits = model(**batch, use_cache=False, logits_to_keep=1).logits[:, -1, :]
        scores = differentiable_scores(logits.double(), refusal_ids)
        scores.sum().backward()
    return scores.detach().cpu().numpy(), kept, batch["attention_mask"].bool()


def attribution(model, tokenizer, prompts: dict[str, list[list[int]]], refusal_ids: list[int], device,
                batches: BatchRunner) -> Attribution:  # fmt: skip
    """The sums of ``Attribution`` from one forward and backward pass per batch of each set's prompts (the
    job's batch limits; a batch that runs out of memory is split)."""
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    writers, blocks = residual_writers(model), list(decoder_layers(model))
    d_model = model.config.get_text_config().hidden_size
    products = np.zeros((d_model, d_model))
    gradients = np.zeros((len(blocks), d_model))
    scores = {}
    for name, modules in ((HARMFUL, writers), (HARMLESS, [*writers[:1], *blocks])):
        ids, totals = prompts[name], []

        def process(indices, ids=ids, modules=modules, name=name, totals=totals):
            batch_scores, kept, mask = _backward(model, [ids[i] for i in indices], refusal_ids, modules,
                                                 tokenizer.pad_token_id, device)  # fmt: skip
            totals.append(batch_scores)
            real = mask.unsqueeze(-1).double()
            if name == HARMFUL:
                for output in kept:
                    gradient, value = output.grad.double() * real, output.detach().double() * real
                    products[:] += torch.einsum("btd,bte->de", gradient, value).cpu().numpy()
            else:
                for layer, output in enumerate(kept[1:]):  # kept[0]: the embedding, which only starts the graph
                    gradients[layer] += (output.grad.double() * real).sum(dim=(0, 1)).cpu().numpy()

        batches.run([len(i) for i in ids], process, Progress(f"attribution ({name})", len(ids)))
        scores[name] = float(np.concatenate(totals).mean())
    return Attribution(products, gradients, scores[HARMFUL], scores[HARMLESS], len(prompts[HARMFUL]),
                       len(prompts[HARMLESS]))  # fmt: skip
