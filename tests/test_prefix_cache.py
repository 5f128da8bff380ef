"""The shared-prefix cache gives what the uncached model gives: block outputs, logits, generated tokens, and
the same under interventions when the cache is computed inside their context."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from refusal_directions.model.hooks import ablate_everywhere, add_at_layer
from refusal_directions.model.loading import decoder_layers
from refusal_directions.model.prefix_cache import PrefixCache, shared_prefix_length

from conftest import HARMFUL, HARMLESS, encode_prompts

BATCH = 4


@pytest.fixture(scope="module")
def loaded(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    return model, tokenizer


def token_ids(tokenizer, texts: list[str]) -> list[list[int]]:
    return encode_prompts(tokenizer, texts)


@pytest.fixture(scope="module")
def prompts(loaded) -> list[list[int]]:
    """Harmful prompts of varied lengths: each batch of BATCH has padding."""
    texts = [HARMFUL[i] + f" {HARMLESS[i]}" * (i % 3) for i in range(8)]
    ids = token_ids(loaded[1], texts)
    for start in range(0, len(ids), BATCH):
        assert len({len(row) for row in ids[start : start + BATCH]}) > 1
    return ids


class LastPositions:
    """Forward hooks that keep each decoder block's output at the last position."""

    def __init__(self, model):
        self.rows: list[torch.Tensor | None] = [None] * len(decoder_layers(model))
        self.handles = [
            block.register_forward_hook(self._keep(index)) for index, block in enumerate(decoder_layers(model))
        ]

    def _keep(self, index: int):
        def hook(_module, _inputs, output):
            hidden = output[0] if isinstance(output, tuple) else output
            self.rows[index] = hidden[:, -1, :].clone()

        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def alone(model, ids: list[list[int]]) -> list[torch.Tensor]:
    """Reference: each sequence run by itself (batch 1, no cache, no padding); per block, then logits, [n, d]."""
    recorder = LastPositions(model)
    try:
        per_prompt = []
        for row in ids:
            with torch.inference_mode():
                logits = model(input_ids=torch.tensor([row]), use_cache=False, logits_to_keep=1).logits[:, -1, :]
            per_prompt.append([*recorder.rows, logits])
    finally:
        recorder.remove()
    return [torch.cat(outputs) for outputs in zip(*per_prompt, strict=True)]


def cached(cache: PrefixCache, ids: list[list[int]]) -> list[torch.Tensor]:
    """Per block, then logits, [n, d], from batches of BATCH on top of the prefix cache."""
    recorder = LastPositions(cache.model)
    try:
        per_batch = []
        for start in range(0, len(ids), BATCH):
            logits = cache.last_logits(ids[start : start + BATCH])
            per_batch.append([*recorder.rows, logits])
    finally:
        recorder.remove()
    return [torch.cat(outputs) for outputs in zip(*per_batch, strict=True)]


def relative_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| per row over the row's norm, largest over rows."""
    return float(((a - b).abs().amax(-1) / b.norm(dim=-1)).max())


def assert_same(got: list[torch.Tensor], expected: list[torch.Tensor]) -> None:
    for index, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert relative_gap(a, b) <= 1e-4, f"output {index} differs"


def uncached_generation(model, tokenizer, ids: list[list[int]], **kwargs) -> torch.Tensor:
    batch = tokenizer.pad({"input_ids": ids}, return_tensors="pt")
    with torch.inference_mode():
        output = model.generate(**batch, pad_token_id=tokenizer.pad_token_id, **kwargs)
    return output[:, batch["input_ids"].shape[1] :]


def test_shared_prefix_length():
    assert shared_prefix_length([[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 7, 8]]) == 5
    assert shared_prefix_length([[1, 2, 3, 4, 5, 6], [9, 2, 3, 4, 5, 6]]) == 0
    # A sequence equal to the shared start keeps its last token out of the prefix.
    assert shared_prefix_length([[1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6, 7]]) == 4
    assert shared_prefix_length([[1, 2, 3, 4, 5], [1, 2, 3, 4, 5]]) == 4
    assert shared_prefix_length([[1, 2, 3, 9, 9], [1, 2, 3, 4, 5]]) == 0
    assert shared_prefix_length([[1, 2, 3, 9, 9], [1, 2, 3, 4, 5]], min_tokens=2) == 3
    assert shared_prefix_length([[1, 2, 3, 4, 5, 6]]) == 5
    assert shared_prefix_length([[1], [1]], min_tokens=0) == 0
    assert shared_prefix_length([]) == 0


def test_batch_layout(loaded, prompts):
    model, tokenizer = loaded
    size = shared_prefix_length(prompts)
    cache = PrefixCache(model, prompts[0][:size], tokenizer.pad_token_id)
    rows = prompts[:BATCH]
    batch = cache.batch(rows)
    width = max(map(len, rows)) - size
    assert batch["input_ids"].shape == batch["position_ids"].shape == (BATCH, width)
    assert batch["attention_mask"].shape == (BATCH, size + width)
    assert batch["cache"].get_seq_length() == size and batch["cache"].layers[0].keys.shape[0] == BATCH
    for row, ids in enumerate(rows):
        n = len(ids) - size
        assert batch["input_ids"][row, width - n :].tolist() == ids[size:]
        assert batch["attention_mask"][row].tolist() == [1] * size + [0] * (width - n) + [1] * n
        assert batch["position_ids"][row, width - n :].tolist() == list(range(size, len(ids)))
    # A forward extends the copy it is given, never the stored prefix cache.
    cache.last_logits(rows)
    assert cache.cache.get_seq_length() == size and cache.cache.layers[0].keys.shape[0] == 1
    with pytest.raises(ValueError, match="start with the cached prefix"):
        cache.batch([[tokenizer.pad_token_id, *prompts[0]]])


def test_cached_matches_uncached(loaded, prompts):
    model, tokenizer = loaded
    size = shared_prefix_length(prompts)
    assert size >= 8  # "<|im_start|>user" and the shared start of the harmful texts
    assert_same(cached(PrefixCache(model, prompts[0][:size], tokenizer.pad_token_id), prompts), alone(model, prompts))


def test_generation_matches_uncached(loaded, prompts):
    model, tokenizer = loaded
    rows = prompts[:BATCH]
    cache = PrefixCache(model, rows[0][: shared_prefix_length(prompts)], tokenizer.pad_token_id)
    greedy = {"max_new_tokens": 8, "do_sample": False}
    expected = uncached_generation(model, tokenizer, rows, **greedy)
    assert expected.shape == (BATCH, 8)
    assert torch.equal(cache.generate(rows, **greedy)[0], expected)
    sampled = {"max_new_tokens": 8, "do_sample": True, "temperature": 1.0, "top_k": None, "top_p": None}
    torch.manual_seed(3)
    expected = uncached_generation(model, tokenizer, rows, **sampled)
    torch.manual_seed(3)
    assert torch.equal(cache.generate(rows, **sampled)[0], expected)


@pytest.mark.parametrize(
    "intervene",
    [lambda model, draw: ablate_everywhere(model, draw), lambda model, draw: add_at_layer(model, draw, 0)],
    ids=["ablate_everywhere", "add_at_layer_0"],
)
def test_cache_follows_the_intervention(loaded, prompts, intervene):
    model, tokenizer = loaded
    draw = np.random.default_rng(0).normal(size=model.config.hidden_size)
    prefix = prompts[0][: shared_prefix_length(prompts)]
    outside = PrefixCache(model, prefix, tokenizer.pad_token_id)
    with intervene(model, draw):
        inside = PrefixCache(model, prefix, tokenizer.pad_token_id)
        expected = alone(model, prompts)
        assert_same(cached(inside, prompts), expected)
        stale = cached(outside, prompts)
    # A cache computed outside the context misses the intervention's effect on the prefix: ten times the tolerance.
    assert max(relative_gap(a, b) for a, b in zip(stale, expected, strict=True)) > 1e-3


def test_no_shared_prefix_runs_uncached(loaded):
    model, tokenizer = loaded
    ids = token_ids(tokenizer, [HARMFUL[0], HARMLESS[1], HARMFUL[12] + " " + HARMLESS[2], HARMLESS[13]])
    assert shared_prefix_length(ids) == 0  # only the chat template's "<|im_start|>user" is shared
    cache = PrefixCache(model, [], tokenizer.pad_token_id)
    assert len(cache) == 0 and cache.cache is None and cache.cache_for([0] * BATCH) is None
    assert_same(cached(cache, ids), alone(model, ids))
    greedy = {"max_new_tokens": 8, "do_sample": False}
    assert torch.equal(cache.generate(ids, **greedy)[0], uncached_generation(model, tokenizer, ids, **greedy))


# -- the model jobs' runner: every pass cached equals uncached ---------------------------------------------


def runners(loaded):
    from refusal_directions.model.batching import BatchRunner
    from refusal_directions.model.forward import ModelRunner

    model, tokenizer = loaded
    return [ModelRunner(model, tokenizer, "cpu", BatchRunner(3), mode) for mode in ("auto", "off")]


def close(cached, uncached, relative=1e-4):
    """max |cached - uncached| of each row within ``relative`` of the row's norm."""
    cached, uncached = np.asarray(cached, dtype=float), np.asarray(uncached, dtype=float)
    scale = np.linalg.norm(uncached.reshape(len(uncached), -1), axis=-1)
    difference = np.abs(cached - uncached).reshape(len(uncached), -1).max(axis=-1)
    assert (difference <= relative * scale).all(), (difference / scale).max()


@pytest.fixture(scope="module")
def system_prompts(loaded):
    """Prompts with a system turn: a long shared prefix, as with a default system prompt."""
    return encode_prompts(loaded[1], [HARMFUL[i] + f" {HARMLESS[i]}" * (i % 3) for i in range(7)], "Be brief.")


def test_extraction_rows_cached_equal_uncached(loaded, system_prompts):
    from refusal_directions.model.extraction import Extractor

    results = []
    for runner in runners(loaded):
        rows = {}

        def sink(indices, per_layer, scores, rows=rows):
            for position, index in enumerate(indices):
                rows[int(index)] = (np.stack([values[position] for values in per_layer]), scores[position])

        Extractor(runner, n_positions=5, refusal_tokens=[5, 9]).run(system_prompts, sink)
        results.append([rows[i] for i in range(len(system_prompts))])
    assert len(runners(loaded)[0]._prefix(system_prompts, keep=5)) > 0  # the cached run did use a prefix
    close([states for states, _ in results[0]], [states for states, _ in results[1]])
    np.testing.assert_allclose([s for _, s in results[0]], [s for _, s in results[1]], atol=1e-4)


def test_generation_cached_gives_the_same_greedy_tokens(loaded, system_prompts):
    cached, uncached = (runner.generate(system_prompts, 8)[0] for runner in runners(loaded))
    assert cached == uncached


@pytest.mark.parametrize("condition", ["ablation everywhere", "ablation at one layer", "addition"])
def test_each_intervention_condition_cached_equals_uncached(loaded, system_prompts, condition):
    from refusal_directions.model.hooks import ablate_at_layer

    model, _ = loaded
    direction = np.random.default_rng(5).normal(size=model.config.hidden_size)
    make = {
        "ablation everywhere": lambda: ablate_everywhere(model, direction),
        "ablation at one layer": lambda: ablate_at_layer(model, direction, 1),
        "addition": lambda: add_at_layer(model, 3.0 * direction, 0),
    }[condition]
    results = []
    for runner in runners(loaded):
        with make():  # the prefix is cached under the condition's hooks
            results.append((runner.next_token_logits(system_prompts), *runner.generate(system_prompts, 6)))
    close(results[0][0].numpy(), results[1][0].numpy())
    assert results[0][1] == results[1][1]
    for logits, _, first_step_logits in results:  # generation's first step gives the refusal-score logits too
        close(first_step_logits.numpy(), logits.numpy())


def test_prompts_without_a_shared_prefix_run_uncached(loaded):
    cached, uncached = runners(loaded)
    ids = encode_prompts(loaded[1], HARMFUL[:3])
    unrelated = [ids[0], [7, 8, 9, 10] + ids[1][4:]]  # no common first token
    assert len(cached._prefix(unrelated, keep=1)) == 0
    assert torch.equal(cached.next_token_logits(unrelated), uncached.next_token_logits(unrelated))
