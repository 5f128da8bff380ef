"""Run the prompt prefix that every formatted prompt of a job shares once, and each batch on top of its cache.

Every prompt starts with the same tokens (the chat template's opening, a system prompt, often the start of the
user turn). ``PrefixCache`` runs them once, batch 1, keeps their keys/values, and runs each batch of prompts
as [prefix][pads][remainder]: the remainders are left-padded *after* the prefix, the attention mask hides the
pads, and the positions of remainder tokens continue from the prefix, so every real token sees exactly the
keys and positions it would see alone and the results equal the uncached run (up to float rounding).

The cache is computed under whatever forward hooks are active when ``PrefixCache`` is built: an intervention
that acts at every position changes the prefix's keys/values too, so build one ``PrefixCache`` per
intervention condition, inside its context. Under per-row interventions (hooks.RowInterventions) the
prefix runs once per variant, as a batch of ``n_variants`` rows, and each sequence takes its variant's row.
With prefix length 0 (no shared prefix worth caching) the same methods run the plain uncached left-padded
batch, so callers need no second code path.

Assumes attention-only caches (no recurrent/linear-attention layers, whose state the pads after the prefix
would change). For sliding-window layers the pads count towards the window, which only matters when prefix,
pads and remainder together exceed the window.
"""

from __future__ import annotations

import copy

import torch

from .batching import left_padded

# The saving is the prefix's share of each prompt: one to three tokens save a few percent while every batch still
# pays for a cache copy and the unusual padding layout. Four still caches a bare chat-template opening such as
# "<|im_start|>user\n" followed by a shared first word.
MIN_PREFIX_TOKENS = 4


def shared_prefix_length(token_ids: list[list[int]], min_tokens: int = MIN_PREFIX_TOKENS) -> int:
    """The length of the longest token prefix all sequences share, capped so every sequence keeps at least one
    token after it (the last position is what callers read); 0 when that is shorter than ``min_tokens``."""
    if not token_ids:
        return 0
    length = min(len(ids) for ids in token_ids) - 1
    first = token_ids[0]
    for ids in token_ids[1:]:
        length = next((i for i in range(length) if ids[i] != first[i]), length)
    return length if length >= max(min_tokens, 1) else 0


class PrefixCache:
    """The key/value cache of ``prefix_ids`` in ``model`` (a ``*ForCausalLM``), computed once at construction
    under the forward hooks active then, and the batches, forwards and generations that run on top of it.

    Methods take whole token sequences (each must start with the prefix) and strip the prefix themselves.
    An empty ``prefix_ids`` means "no cache": every method then runs the sequences uncached.
    """

    def __init__(self, model, prefix_ids: list[int], pad_id: int, n_variants: int = 1):
        self.model = model
        self.prefix_ids = list(prefix_ids)
        self.pad_id = pad_id
        self.device = model.get_input_embeddings().weight.device
        self.cache = None
        if self.prefix_ids:
            ids = torch.tensor([self.prefix_ids] * n_variants, dtype=torch.long, device=self.device)
            with torch.inference_mode():
                self.cache = model(input_ids=ids, use_cache=True, logits_to_keep=1).cache

    def __len__(self) -> int:
        return len(self.prefix_ids)

    def cache_for(self, variants: list[int]):
        """A fresh copy of the prefix cache with one row per sequence: the prefix as variant ``variants[i]``
        computed it (None without a prefix). A forward appends the batch's keys/values to the cache it is
        given, so each batch needs its own copy; copying the prefix is cheap (a few MB even for a 7B model)."""
        if self.cache is None:
            return None
        with torch.inference_mode():
            cache = copy.deepcopy(self.cache)
            cache.batch_select_indices(torch.as_tensor(variants, dtype=torch.long, device=self.device))
        return cache

    def _remainders(self, token_ids: list[list[int]]) -> list[list[int]]:
        size = len(self.prefix_ids)
        for ids in token_ids:
            if len(ids) <= size or ids[:size] != self.prefix_ids:
                raise ValueError("every sequence must start with the cached prefix and have a token after it")
        return [ids[size:] for ids in token_ids]

    def batch(self, token_ids: list[list[int]], variants: list[int] | None = None) -> dict:
        """Model inputs for ``token_ids`` on top of the prefix: ``input_ids`` the remainders left-padded to a common
        width W; ``attention_mask`` [B, prefix + W] (ones for prefix and remainder tokens, zeros for the pads);
        ``position_ids`` [B, W] continuing from the prefix (remainder token j at prefix + j; pads get positions
        nothing reads); ``cache`` a fresh copy of the prefix cache, row i from prefix variant ``variants[i]``
        (the first for every row when None). Transformers 5.24 takes no ``cache_position``: the cache's length
        gives the query offset."""
        remainders = left_padded(self._remainders(token_ids), self.pad_id, self.device)
        prefix_mask = torch.ones((len(token_ids), len(self)), dtype=torch.long, device=self.device)
        return {
            "input_ids": remainders["input_ids"],
            "attention_mask": torch.cat([prefix_mask, remainders["attention_mask"]], dim=1),
            "position_ids": remainders["position_ids"] + len(self),
            "cache": self.cache_for([0] * len(token_ids) if variants is None else variants),
        }

    def last_logits(self, token_ids: list[list[int]], variants: list[int] | None = None) -> torch.Tensor:
        """The logits at the last position of each sequence, [B, vocab]. Forward hooks on the decoder blocks see
        the remainder positions only ([B, W, d]); the last one is each sequence's last token."""
        batch = self.batch(token_ids, variants)
        with torch.inference_mode():
            return self.model(**batch, use_cache=batch["cache"] is not None, logits_to_keep=1).logits[:, -1, :]

    def generate(self, token_ids: list[list[int]], **generate_kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        """The new tokens ``model.generate`` appends to each sequence, [B, new] (greedy or sampled, as the keyword
        arguments say), and the logits of its first step at each sequence's last position, [B, vocab], as the
        model returns them (before any logits processor). ``generate`` is given the full [prefix][pads][remainder]
        ids and mask with the prefix cache: it feeds only the ids the cache lacks and derives positions from the
        mask."""
        batch = self.batch(token_ids)
        prefix = torch.tensor([self.prefix_ids], dtype=torch.long, device=self.device).expand(len(token_ids), -1)
        input_ids = torch.cat([prefix, batch["input_ids"]], dim=1)
        first_logits = []

        def keep_first_logits(_module, _inputs, output):
            if not first_logits:
                first_logits.append(output.logits[:, -1, :])

        handle = self.model.register_forward_hook(keep_first_logits)
        try:
            with torch.inference_mode():
                output = self.model.generate(
                    input_ids=input_ids,
                    attention_mask=batch["attention_mask"],
                    cache=batch["cache"],
                    pad_token_id=self.pad_id,
                    **generate_kwargs,
                )
        finally:
            handle.remove()
        return output[:, input_ids.shape[1] :], first_logits[0]
