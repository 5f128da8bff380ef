"""Prompts in batches: grouped by length, left-padded, and split in half when a batch runs out of memory."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch

log = logging.getLogger(__name__)


def length_sorted_batches(lengths: list[int], batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length, longest first (an out-of-memory error shows early)."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


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


class BatchRunner:
    """Runs ``process(indices)`` over length-sorted batches of prompts. A batch that runs out of memory is
    split in two and the smaller size is kept for the rest of the job, so one job never fails on memory
    while a single prompt fits (Snakemake does not retry model jobs: a retry would repeat user errors too)."""

    def __init__(self, batch_size: int):
        self.batch_size = batch_size

    def run(self, lengths: list[int], process: Callable[[np.ndarray], None], progress=None) -> None:
        pending = length_sorted_batches(lengths, self.batch_size)
        while pending:
            indices = pending.pop(0)
            try:
                process(indices)
            except Exception as error:
                if not (is_out_of_memory(error) and len(indices) > 1):
                    raise
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                self.batch_size = len(indices) // 2
                log.warning("out of memory at batch size %d; going on with %d", len(indices), self.batch_size)
                rest = np.concatenate([indices, *pending])
                pending = [rest[start : start + self.batch_size] for start in range(0, len(rest), self.batch_size)]
                continue
            if progress is not None:
                progress.update(len(indices))
