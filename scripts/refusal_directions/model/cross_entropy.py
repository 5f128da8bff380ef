"""Cross-entropy of text under a model: each sequence's summed loss over its scored tokens (the last ones:
a continuation after its prompt, or every token after the first of a plain text), each token predicted from
every token before it."""

from __future__ import annotations

import torch

# Logits of a batch, float32 and their log-softmax: a vocabulary of 150k leaves ~1,700 tokens per batch.
LOGITS_BYTES = 2**30


def logits_token_budget(vocab_size: int) -> int:
    """Tokens per batch whose logits (and their log-softmax) fit in LOGITS_BYTES."""
    return max(1, LOGITS_BYTES // (8 * vocab_size))


def scored_loss_sums(logits: torch.Tensor, input_ids: torch.Tensor, n_scored: torch.Tensor) -> torch.Tensor:
    """Per row of a left-padded batch ([B, W] ids, their [B, W, vocab] logits), the summed cross-entropy (nats,
    float64) of its last ``n_scored`` tokens: the rows end together, so the scored tokens are the last columns."""
    targets = input_ids[:, 1:]
    losses = torch.nn.functional.cross_entropy(logits[:, :-1].float().transpose(1, 2), targets, reduction="none")
    width = targets.shape[1]
    scored = torch.arange(width, device=targets.device) >= (width - n_scored.to(targets.device))[:, None]
    return (losses.double() * scored).sum(-1).cpu()
