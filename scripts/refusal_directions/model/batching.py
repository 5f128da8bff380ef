"""Prompts in batches: grouped by length, bounded by a prompt count and a token budget, left-padded, and
split in half when a batch runs out of memory."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch

from ..workflow.execution import ExecutionSettings

log = logging.getLogger(__name__)

# max_batch_tokens "auto" off CUDA: a batch of this many (padded) tokens needs well under 1 GB of
# activations for models up to a few billion parameters.
CPU_TOKEN_BUDGET = 16384
# Share of the free GPU memory a batch's activations may take (the rest: the caches of attention and
# generation, fragmentation).
GPU_MEMORY_SHARE = 0.5


def _cut(order: np.ndarray, lengths: np.ndarray, max_prompts: int, max_tokens: int) -> list[np.ndarray]:
    batches, start = [], 0
    while start < len(order):
        longest = int(lengths[order[start]])  # ``order`` is longest first: the first prompt sets the width
        size = max(1, min(max_prompts, max_tokens // max(longest, 1)))
        batches.append(order[start : start + size])
        start += size
    return batches


def budget_batches(lengths, max_prompts: int, max_tokens: int) -> list[np.ndarray]:
    """Indices in batches of similar length, longest first (an out-of-memory error shows early). A batch
    holds at most ``max_prompts`` prompts and at most ``max_tokens`` tokens once padded to its longest
    prompt, so long prompts get small batches and short ones large batches; a prompt longer than
    ``max_tokens`` gets a batch of its own."""
    lengths = np.asarray(lengths)
    return _cut(np.argsort(-lengths, kind="stable"), lengths, max_prompts, max_tokens)


def left_padded(token_ids: list[list[int]], pad_id: int, device) -> dict[str, torch.Tensor]:
    """Left-padded batch with its attention mask and the positions each sequence would have alone."""
    width = max(map(len, token_ids))
    input_ids = torch.full((len(token_ids), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(token_ids), width), dtype=torch.long)
    for row, ids in enumerate(token_ids):
        input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, width - len(ids) :] = 1
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    return {
        "input_ids": input_ids.to(device),
        "attention_mask": attention_mask.to(device),
        "position_ids": position_ids.to(device),
    }


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's out-of-memory error, or the CPU allocator's."""
    message = str(error).lower()
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in message or "can't allocate memory" in message


def token_budget(setting: int | str, model, device: torch.device) -> int:
    """``max_batch_tokens``: as configured, or on CUDA sized from the free memory and the activations one
    token holds in a forward pass (the hidden state and its copies, the MLP's intermediate activations)."""
    if setting != "auto":
        return int(setting)
    if device.type != "cuda":
        return CPU_TOKEN_BUDGET
    config = model.config.get_text_config()
    intermediate = getattr(config, "intermediate_size", None) or 4 * config.hidden_size
    bytes_per_token = model.dtype.itemsize * (8 * config.hidden_size + 3 * intermediate)
    free, _ = torch.cuda.mem_get_info(device)
    return max(256, int(GPU_MEMORY_SHARE * free / bytes_per_token))


class BatchRunner:
    """Runs ``process(indices)`` over batches of prompts (``budget_batches``). A batch that runs out of
    memory is split in two and the smaller limits are kept for the rest of the job, so a job never fails
    on memory while one prompt fits (Snakemake does not retry model jobs locally: a retry would repeat any
    other error too)."""

    def __init__(self, max_prompts: int, max_tokens: int = np.iinfo(np.int64).max):
        self.max_prompts = max_prompts
        self.max_tokens = max_tokens

    @classmethod
    def for_job(cls, execution: ExecutionSettings, model, device) -> BatchRunner:
        runner = cls(execution.max_batch_size, token_budget(execution.max_batch_tokens, model, device))
        log.info("batches of at most %d prompts and %d tokens", runner.max_prompts, runner.max_tokens)
        return runner

    def run(self, lengths: list[int], process: Callable[[np.ndarray], None], progress=None,
            replay: Callable[[np.ndarray], bool] | None = None) -> None:  # fmt: skip
        """``process(indices)`` for each batch; with ``replay``, a batch for which ``replay(indices)`` is true
        was finished by an earlier run (resume.py) and the caller has taken its results from there."""
        lengths = np.asarray(lengths)
        pending = budget_batches(lengths, self.max_prompts, self.max_tokens)
        n_batches, n_replayed = len(pending), 0
        while pending:
            indices = pending.pop(0)
            if replay is not None and replay(indices):
                n_replayed += 1
                if progress is not None:
                    progress.update(len(indices))
                continue
            try:
                process(indices)
            except Exception as error:
                if not (is_out_of_memory(error) and len(indices) > 1):
                    raise
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                self.max_prompts = len(indices) // 2
                self.max_tokens = min(self.max_tokens, self.max_prompts * int(lengths[indices].max()))
                log.warning("out of memory at batch size %d; going on with %d", len(indices), self.max_prompts)
                pending = _cut(np.concatenate([indices, *pending]), lengths, self.max_prompts, self.max_tokens)
                continue
            if progress is not None:
                progress.update(len(indices))
        if n_replayed:
            log.info("resumed: %d of %d batches were finished by an earlier run; %d computed now", n_replayed,
                     n_batches, n_batches - n_replayed)  # fmt: skip
