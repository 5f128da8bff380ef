"""Batched generation of responses, in prompt order, with optional intervention hooks active."""

from __future__ import annotations

import numpy as np
import torch

from .extraction import length_sorted_batches


def generate(
    model,
    tokenizer,
    texts: list[str],
    max_new_tokens: int,
    batch_size: int,
    device,
    do_sample: bool = False,
    temperature: float = 1.0,
    seed: int = 0,
) -> list[str]:
    """The model's response to each formatted prompt (greedy unless ``do_sample``), decoded without special
    tokens. Prompts are batched by length and left-padded; ``generate`` derives positions from the mask."""
    token_ids = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
    responses: list[str | None] = [None] * len(texts)
    if do_sample:
        torch.manual_seed(seed)
    for indices in length_sorted_batches([len(ids) for ids in token_ids], batch_size):
        batch = tokenizer.pad({"input_ids": [token_ids[i] for i in indices]}, return_tensors="pt").to(device)
        with torch.inference_mode():
            output = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=do_sample,
                temperature=temperature if do_sample else None,
                top_p=None,
                top_k=None,
                pad_token_id=tokenizer.pad_token_id,
            )
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        for index, text in zip(indices, tokenizer.batch_decode(new_tokens, skip_special_tokens=True), strict=True):
            responses[int(index)] = text.strip()
    return responses


def subset_rows(n_total: int, n_wanted: int | None, seed: int, stream: int) -> np.ndarray:
    """A seeded random subset of row numbers (all rows if ``n_wanted`` is None or too large), in order;
    ``stream`` gives each prompt set its own draw."""
    if n_wanted is None or n_wanted >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng([seed, stream]).choice(n_total, size=n_wanted, replace=False))


def prompt_subsets(prompt_files: dict[str, str], n_wanted: int | None, seed: int) -> dict[str, list[dict]]:
    """The formatted prompt records of each set, cut to a seeded subset of ``n_wanted`` (each keeps its
    ``row`` in the set, which is its row in the activation files)."""
    from .prompts import read_jsonl

    subsets = {}
    for stream, (name, path) in enumerate(prompt_files.items()):
        records = read_jsonl(path)
        subsets[name] = [{**records[row], "row": int(row)} for row in subset_rows(len(records), n_wanted, seed, stream)]
    return subsets
