"""Batches bounded by a prompt count and a token budget, and the out-of-memory back-off."""

import numpy as np
import pytest
import torch

from refusal_directions.model.batching import BatchRunner, budget_batches, token_budget


def test_token_budget_batches():
    lengths = np.array([5, 300, 40, 41, 7, 1200, 39, 6, 300, 8])
    batches = budget_batches(lengths, max_prompts=4, max_tokens=600)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    assert batches[0].tolist() == [5]  # longer than the budget: a batch of its own
    for batch in batches:
        assert len(batch) <= 4
        assert len(batch) == 1 or len(batch) * lengths[batch].max() <= 600
    widths = [lengths[batch].max() for batch in batches]
    assert widths == sorted(widths, reverse=True)  # longest first
    assert [len(b) for b in budget_batches(lengths, max_prompts=4, max_tokens=10**9)] == [4, 4, 2]


def test_token_budget_from_the_config_or_the_device():
    assert token_budget(512, model=None, device=torch.device("cpu")) == 512
    assert token_budget("auto", model=None, device=torch.device("cpu")) == 16384


class OutOfMemoryAbove:
    """A batch of more than ``limit`` padded tokens raises CUDA's out-of-memory error."""

    def __init__(self, lengths, limit):
        self.lengths, self.limit, self.done = lengths, limit, []

    def __call__(self, indices):
        if len(indices) * self.lengths[indices].max() > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.done.extend(indices.tolist())


def test_out_of_memory_halves_and_keeps_the_smaller_limits():
    lengths = np.array([10] * 16 + [50] * 4)
    runner = BatchRunner(max_prompts=8, max_tokens=10**6)
    work = OutOfMemoryAbove(lengths, limit=100)
    runner.run(lengths, work)
    assert sorted(work.done) == list(range(20))
    assert runner.max_prompts == 2 and runner.max_tokens == 100


def test_a_single_prompt_out_of_memory_and_other_errors_fail():
    lengths = np.array([10, 10])
    with pytest.raises(torch.OutOfMemoryError):
        BatchRunner(max_prompts=2).run(lengths, OutOfMemoryAbove(lengths, limit=5))
    calls = []

    def failing(indices):
        calls.append(len(indices))
        raise ValueError("not a memory problem")

    with pytest.raises(ValueError):
        BatchRunner(max_prompts=2).run(lengths, failing)
    assert calls == [2]
