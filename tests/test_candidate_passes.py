"""Candidates scored in shared batches (each row under its own direction, the prefix once per variant) give the
scores that one pass per candidate and condition gives: the reference runs each candidate's ablation and
addition through the single-direction hooks, prompt set by prompt set, without a prefix cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from refusal_directions.data.prompt_sets import HARMFUL, HARMLESS
from refusal_directions.interventions.condition_hooks import kl_divergence
from refusal_directions.model.batching import BatchRunner
from refusal_directions.model.forward import ModelRunner
from refusal_directions.model.hooks import ablate_everywhere, add_at_layer
from refusal_directions.model.refusal_score import refusal_scores
from refusal_directions.selection.candidate_passes import Candidate, group_size, measure_candidates

from conftest import HARMFUL as HARMFUL_TEXTS
from conftest import HARMLESS as HARMLESS_TEXTS
from conftest import encode_prompts

SCORED_BY = [5, 9]
STATE_LAYERS = [0, 2]


@pytest.fixture(scope="module")
def setup(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    prompts = {HARMFUL: encode_prompts(tokenizer, HARMFUL_TEXTS[:5], "Be brief."),
               HARMLESS: encode_prompts(tokenizer, HARMLESS_TEXTS[:4], "Be brief.")}  # fmt: skip
    rng = np.random.default_rng(3)
    candidates = [Candidate(4.0 * rng.normal(size=model.config.hidden_size), layer) for layer in (0, 1, 2, 1)]
    return model, tokenizer, prompts, candidates


def one_pass_at_a_time(model, tokenizer, prompts, candidate):
    """bypass, induce, kl and the mean ablated and added states at STATE_LAYERS, one hook and pass each (an
    affine candidate's hooks with its reference points)."""
    runner = ModelRunner(model, tokenizer, "cpu", BatchRunner(2), "off")
    baseline = runner.next_token_logits(prompts[HARMLESS])
    affine = candidate.ablation_references is not None
    with ablate_everywhere(model, candidate.direction, candidate.ablation_references):
        ablated_logits, ablated_states = runner.last_states(prompts[HARMFUL])
        side_logits = runner.next_token_logits(prompts[HARMLESS])
    added = candidate.addition_target if affine else candidate.direction
    with add_at_layer(model, added, candidate.layer, replaced=candidate.direction if affine else None):
        added_logits, added_states = runner.last_states(prompts[HARMLESS])
    return (refusal_scores(ablated_logits, SCORED_BY).mean(), refusal_scores(added_logits, SCORED_BY).mean(),
            kl_divergence(baseline, side_logits).mean(), ablated_states[STATE_LAYERS].mean(axis=1),
            added_states[STATE_LAYERS].mean(axis=1))  # fmt: skip


def assert_one_pass_scores(model, tokenizer, prompts, candidates, measured) -> None:
    """Each candidate's measures equal one_pass_at_a_time's."""
    for got, candidate in zip(measured, candidates, strict=True):
        bypass, induce, kl, ablated, added = one_pass_at_a_time(model, tokenizer, prompts, candidate)
        assert got.bypass == pytest.approx(bypass, abs=1e-4) and got.induce == pytest.approx(induce, abs=1e-4)
        assert got.kl == pytest.approx(kl, rel=1e-3, abs=1e-7)
        np.testing.assert_allclose(got.ablated_means, ablated, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got.added_means, added, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("max_prompts", [3, 40], ids=["one candidate a group", "three candidates a group"])
def test_shared_batches_give_the_one_pass_scores(setup, max_prompts):
    model, tokenizer, prompts, candidates = setup
    rows_per_candidate = 5 + 4 + 4
    assert group_size(max_prompts, rows_per_candidate) == {3: 1, 40: 3}[max_prompts]
    runner = ModelRunner(model, tokenizer, "cpu", BatchRunner(max_prompts), "auto")
    assert len(runner._prefix([*prompts[HARMFUL], *prompts[HARMLESS]], keep=1)) > 0  # the system turn is cached
    baseline = runner.next_token_logits(prompts[HARMLESS])
    measured = measure_candidates(runner, prompts, candidates, baseline, SCORED_BY, STATE_LAYERS)
    assert_one_pass_scores(model, tokenizer, prompts, candidates, measured)
    # the candidates differ, so a mix-up of rows between them would show
    assert len({round(m.bypass, 3) for m in measured}) == len(measured)


def test_affine_candidates_in_shared_batches_give_the_one_pass_scores(setup):
    """ace's candidates (stats/method_direction.affine_points) beside a linear one in the same group."""
    from refusal_directions.stats.method_direction import affine_points

    model, tokenizer, prompts, candidates = setup
    rng = np.random.default_rng(4)
    affine = []
    for candidate in candidates[1:3]:
        unit = candidate.direction / np.linalg.norm(candidate.direction)
        n_layers = model.config.num_hidden_layers
        points = affine_points(unit, rng.normal(size=(n_layers, len(unit))) * 3, rng.normal(size=len(unit)) * 3)
        affine.append(Candidate(candidate.direction, candidate.layer, **points))
    group = [candidates[0], *affine]
    runner = ModelRunner(model, tokenizer, "cpu", BatchRunner(40), "auto")
    baseline = runner.next_token_logits(prompts[HARMLESS])
    measured = measure_candidates(runner, prompts, group, baseline, SCORED_BY, STATE_LAYERS)
    assert_one_pass_scores(model, tokenizer, prompts, group, measured)
    linear = measure_candidates(runner, prompts, candidates[1:3], baseline, SCORED_BY, STATE_LAYERS)
    assert all(abs(a.bypass - b.bypass) > 1e-3 for a, b in zip(linear, measured[1:], strict=True))  # the edit counts
