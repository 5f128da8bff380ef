"""The refusal score of a prompt, read from the model without generating (Arditi et al. 2024): at the last
position, log P(refusal tokens) - log(1 - P(refusal tokens)), where the refusal tokens are the first
tokens of the model's typical refusals ('I' of "I'm sorry", "I cannot"; 'As' of "As an AI"). Positive: the
model is more likely than not to start a refusal."""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..workflow.errors import UserError

log = logging.getLogger(__name__)


def refusal_token_ids(tokenizer, prefixes: list[str], token_ids: list[int] | None) -> list[int]:
    """The configured token ids, or the first token of each refusal prefix (each id once, in order)."""
    if token_ids:
        ids = list(dict.fromkeys(int(token) for token in token_ids))
        if max(ids) >= len(tokenizer) or min(ids) < 0:
            raise UserError(f"refusal_score.token_ids: {ids} are not all in the vocabulary (0-{len(tokenizer) - 1})")
    else:
        firsts = [tokenizer(prefix, add_special_tokens=False)["input_ids"][:1] for prefix in prefixes]
        ids = list(dict.fromkeys(first[0] for first in firsts if first))
    log.info("refusal tokens: %s", ", ".join(f"{token} {tokenizer.decode([token])!r}" for token in ids))
    return ids


def refusal_scores(logits: torch.Tensor, token_ids: list[int]) -> np.ndarray:
    """log P(refusal) - log P(not refusal) of each row of next-token ``logits`` [n, vocab], in float64,
    exact where P is close to 0 or 1 (both sides as log-sum-exp over their own tokens)."""
    logits = logits.double()
    refusal = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
    refusal[token_ids] = True
    return (logits[:, refusal].logsumexp(-1) - logits[:, ~refusal].logsumexp(-1)).cpu().numpy()
