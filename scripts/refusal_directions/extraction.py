"""Last-token residual stream of every decoder block, batched by length and streamed to disk."""

from __future__ import annotations

import logging

import numpy as np
import torch

from .modeling import decoder_layers
from .runlog import UserError

log = logging.getLogger(__name__)


class LastTokenRecorder:
    """Forward hooks that keep only the last position of each block's output (no full hidden states)."""

    def __init__(self, model):
        self.captured: list[torch.Tensor | None] = []
        self.handles = []
        for index, block in enumerate(decoder_layers(model)):
            self.captured.append(None)
            self.handles.append(block.register_forward_hook(self._hook(index)))

    def _hook(self, index: int):
        def keep_last_token(_module, _inputs, output):
            hidden = output[0] if isinstance(output, tuple) else output
            # A copy, not a view: a view would keep the block's whole [batch, seq, d] output alive.
            self.captured[index] = hidden[:, -1, :].to(torch.float32, copy=True)

        return keep_last_token

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


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


def _is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


class Extractor:
    """Runs a model over formatted prompts and hands each batch's per-layer last-token rows to ``sink``.

    ``sink(indices, per_layer)`` receives the batch's positions in the prompt list and one float32 array
    [batch, d_model] per layer. ``batch_size="auto"`` starts at 32 and halves on CUDA out-of-memory.
    """

    def __init__(self, model, tokenizer, device, batch_size: int | str, progress=None):
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.auto_batch = batch_size == "auto"
        self.batch_size = 32 if self.auto_batch else int(batch_size)
        self.progress = progress
        # The LM head is never needed: run the base model only.
        self.body = getattr(model, model.base_model_prefix, model)

    def _forward(self, token_ids: list[list[int]], recorder: LastTokenRecorder) -> list[np.ndarray]:
        batch = left_padded(token_ids, self.tokenizer.pad_token_id, self.device)
        with torch.inference_mode():
            self.body(**batch, use_cache=False)
        rows = [captured.cpu().numpy() for captured in recorder.captured]
        if not all(np.isfinite(values).all() for values in rows):
            raise UserError("the model produced NaN or inf activations; try dtype: float32 in the model's config entry")
        return rows

    def run(self, texts: list[str], sink) -> None:
        token_ids = [self.tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
        recorder = LastTokenRecorder(self.model)
        try:
            pending = length_sorted_batches([len(ids) for ids in token_ids], self.batch_size)
            while pending:
                indices = pending.pop(0)
                try:
                    per_layer = self._forward([token_ids[i] for i in indices], recorder)
                except Exception as error:
                    if not (self.auto_batch and _is_out_of_memory(error) and len(indices) > 1):
                        raise
                    torch.cuda.empty_cache()
                    half = len(indices) // 2
                    self.batch_size = max(1, half)
                    log.warning("out of memory at batch size %d; retrying with %d", len(indices), half)
                    pending[:0] = [indices[:half], indices[half:]]
                    continue
                sink(indices, per_layer)
                if self.progress is not None:
                    self.progress.update(len(indices))
        finally:
            recorder.remove()
