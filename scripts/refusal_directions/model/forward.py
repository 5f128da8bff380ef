"""A loaded model run over tokenized prompts: in batches (batching.BatchRunner), under whatever forward hooks
are active (recorders, interventions), for the next-token logits at each prompt's last position or for
generated responses. Every job that runs the model goes through here."""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..workflow.errors import UserError
from ..workflow.execution import ExecutionSettings
from .batching import BatchRunner, left_padded
from .cross_entropy import logits_token_budget, scored_loss_sums
from .hooks import RowInterventions
from .loading import decoder_layers
from .prefix_cache import PrefixCache, shared_prefix_length
from .resume import ResumeState, tensor_texts, texts_tensor

log = logging.getLogger(__name__)


class PositionRecorder:
    """Forward hooks that keep the last ``n_positions`` positions of each block's output (no full hidden
    states)."""

    def __init__(self, model, n_positions: int = 1):
        self.n_positions = n_positions
        self.captured: list[torch.Tensor | None] = []
        self.handles = []
        for index, block in enumerate(decoder_layers(model)):
            self.captured.append(None)
            self.handles.append(block.register_forward_hook(self._hook(index)))

    def _hook(self, index: int):
        def keep_last_positions(_module, _inputs, output):
            hidden = output[0] if isinstance(output, tuple) else output
            # A copy, not a view: a view would keep the block's whole [batch, seq, d] output alive.
            self.captured[index] = hidden[:, -self.n_positions :, :].to(torch.float32, copy=True)

        return keep_last_positions

    def rows(self) -> list[np.ndarray]:
        """The last batch's rows, one float32 array [batch, n_positions, d_model] per layer."""
        rows = [captured.cpu().numpy() for captured in self.captured]
        if not all(np.isfinite(values).all() for values in rows):
            raise UserError("the model produced NaN or inf activations; try dtype: float32 in the model's config entry")
        return rows

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


class ModelRunner:
    """With ``prefix_cache: auto``, the longest token prefix all prompts of a pass share (the chat template's
    opening and system prompt: half the tokens of a short prompt) runs once per pass, under the hooks active
    in that pass, and every batch runs on top of its key/value cache (prefix_cache.py); ``off`` runs every
    prompt whole. Both give the same numbers up to float rounding."""

    def __init__(self, model, tokenizer, device, batches: BatchRunner, prefix_cache: str = "auto"):
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.batches = batches
        self.prefix_cache = prefix_cache

    @classmethod
    def for_job(cls, model, tokenizer, device, execution: ExecutionSettings) -> ModelRunner:
        """The runner a job's execution settings ask for: its batch limits and prefix cache."""
        return cls(model, tokenizer, device, BatchRunner.for_job(execution, model, device), execution.prefix_cache)

    def _prefix(self, token_ids: list[list[int]], keep: int, n_variants: int = 1) -> PrefixCache:
        """The shared prefix of this pass, cached under the active hooks (once per variant of per-row
        interventions); every prompt keeps at least ``keep`` tokens after it (the positions a recorder reads).
        Empty (every prompt runs whole) when off or not worth it."""
        length = 0
        if self.prefix_cache != "off":
            length = shared_prefix_length([ids[: len(ids) - keep + 1] for ids in token_ids])
        if length:
            log.info("prefix cache: %d shared tokens of %.1f on average", length, np.mean([len(i) for i in token_ids]))
        return PrefixCache(self.model, token_ids[0][:length], self.tokenizer.pad_token_id, n_variants)

    def each_batch(self, token_ids: list[list[int]], handle, progress=None, keep: int = 1,
                   rows: RowInterventions | None = None, variants: np.ndarray | None = None,
                   replay=None) -> None:  # fmt: skip
        """``handle(indices, logits)`` for each batch: the batch's positions in ``token_ids`` and the
        next-token logits [batch, vocab] at each prompt's last position (the LM head runs on that position
        only). Hooks on the decoder blocks see at least the last ``keep`` positions of every prompt. With
        per-row interventions ``rows``, sequence i runs under their variant ``variants[i]``: sequences of
        different variants share batches, and the shared prefix runs once per variant. ``replay``: as in
        ``BatchRunner.run``, for the batches an earlier run finished."""
        if rows is not None:
            rows.select(np.arange(rows.n_variants))
        prefix = self._prefix(token_ids, keep, 1 if rows is None else rows.n_variants)

        def process(indices):
            batch_variants = None
            if rows is not None:
                batch_variants = variants[indices]
                rows.select(batch_variants)
            handle(indices, prefix.last_logits([token_ids[i] for i in indices], batch_variants))

        self.batches.run([len(ids) - len(prefix) for ids in token_ids], process, progress, replay)

    def next_token_logits(self, token_ids: list[list[int]], progress=None) -> torch.Tensor:
        """[n_prompts, vocab] float32 on the CPU, in prompt order."""
        rows = PromptOrder(len(token_ids))
        self.each_batch(token_ids, rows.keep, progress)
        return rows.stacked()

    def last_states(self, token_ids: list[list[int]], progress=None) -> tuple[torch.Tensor, np.ndarray]:
        """The next-token logits [n, vocab] (float32, CPU) and every layer's output at the last token
        [n_layers, n, d_model] (float64), in prompt order."""
        n_layers = len(decoder_layers(self.model))
        logits = PromptOrder(len(token_ids))
        states = np.empty((n_layers, len(token_ids), self.model.config.get_text_config().hidden_size))
        recorder = PositionRecorder(self.model)

        def keep(indices, batch_logits):
            logits.keep(indices, batch_logits)
            states[:, indices] = np.stack([values[:, -1] for values in recorder.rows()])

        try:
            self.each_batch(token_ids, keep, progress)
        finally:
            recorder.remove()
        return logits.stacked(), states

    def generate(self, token_ids: list[list[int]], max_new_tokens: int, do_sample: bool = False,
                 temperature: float = 1.0, seed: int = 0, progress=None,
                 resume: ResumeState | None = None) -> tuple[list[str], torch.Tensor]:  # fmt: skip
        """The model's response to each prompt (greedy unless ``do_sample``), decoded without special tokens,
        and the next-token logits [n, vocab] (float32, CPU) at each prompt's last position, which generation's
        first step computes anyway: a caller that needs both runs the prompts once. Sampling draws from a
        generator seeded by ``seed`` and the batch's first prompt, so a batch samples the same tokens however
        the job got to it. With ``resume``, each batch is kept when done and a batch an earlier run finished
        is taken from there."""
        responses: list[str | None] = [None] * len(token_ids)
        logits = PromptOrder(len(token_ids))
        prefix = self._prefix(token_ids, keep=1)
        sampling = {"max_new_tokens": max_new_tokens, "do_sample": do_sample, "top_p": None, "top_k": None,
                    "temperature": temperature if do_sample else None}  # fmt: skip

        def keep(indices, texts, first_logits):
            logits.keep(indices, first_logits)
            for index, text in zip(indices, texts, strict=True):
                responses[int(index)] = text

        def process(indices):
            if do_sample:
                torch.manual_seed(seed * 1_000_003 + int(min(indices)))
            new_tokens, first_logits = prefix.generate([token_ids[i] for i in indices], **sampling)
            texts = [text.strip() for text in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
            if resume is not None:
                resume.save(indices, {"responses": texts_tensor(texts), "logits": first_logits.float().cpu().numpy()})
            keep(indices, texts, first_logits)

        def replay(indices) -> bool:
            saved = resume.saved(indices) if resume is not None else None
            if saved is not None:
                keep(indices, tensor_texts(saved["responses"]), torch.from_numpy(saved["logits"]))
            return saved is not None

        # A batch's token budget covers the tokens it will generate as well.
        lengths = [len(ids) - len(prefix) + max_new_tokens for ids in token_ids]
        self.batches.run(lengths, process, progress, replay)
        return responses, logits.stacked()

    def loss_sums(self, token_ids: list[list[int]], n_scored: list[int], progress=None) -> np.ndarray:
        """Each sequence's summed cross-entropy over its last ``n_scored`` tokens (cross_entropy.py), in prompt
        order. Every sequence runs whole (no prefix cache) in batches whose logits fit the budget."""
        vocab_size = self.model.config.get_text_config().vocab_size
        batches = BatchRunner(self.batches.max_prompts, min(self.batches.max_tokens, logits_token_budget(vocab_size)))
        sums = np.zeros(len(token_ids))

        def process(indices):
            batch = left_padded([token_ids[i] for i in indices], self.tokenizer.pad_token_id, self.device)
            with torch.inference_mode():
                logits = self.model(**batch).logits
            sums[indices] = scored_loss_sums(logits, batch["input_ids"], torch.tensor([n_scored[i] for i in indices]))

        batches.run([len(ids) for ids in token_ids], process, progress)
        return sums


class PromptOrder:
    """Per-batch logits gathered back into prompt order, as float32 on the CPU."""

    def __init__(self, n_prompts: int):
        self.rows: list[torch.Tensor | None] = [None] * n_prompts

    def keep(self, indices, logits: torch.Tensor) -> None:
        for position, index in enumerate(indices):
            self.rows[int(index)] = logits[position].float().cpu()

    def stacked(self) -> torch.Tensor:
        return torch.stack(self.rows)
