"""The intervention hooks on the tiny model: ablation zeroes the projection, addition shifts it exactly,
the random control differs; and generation and KL behave."""

import numpy as np
import pytest
import torch

from refusal_directions.interventions.condition_hooks import kl_divergence, random_like
from refusal_directions.model.batching import BatchRunner
from refusal_directions.model.forward import ModelRunner
from refusal_directions.model.hooks import ablate_at_layer, ablate_everywhere, add_at_layer
from refusal_directions.model.loading import decoder_layers, load_model, load_tokenizer

from conftest import HARMFUL, HARMLESS, encode_prompts

SPEC = {"id": "tiny", "trust_remote_code": False}


@pytest.fixture(scope="module")
def loaded(tiny_model):
    model = load_model(str(tiny_model), None, SPEC, torch.device("cpu"), torch.float32)
    tokenizer = load_tokenizer(str(tiny_model), None, SPEC)
    return model, tokenizer


@pytest.fixture(scope="module")
def direction():
    vector = np.random.default_rng(0).normal(size=32)
    return vector / np.linalg.norm(vector)


def block_outputs(model, token_ids):
    """Every block's output for every position of each prompt (padding-free: one prompt at a time)."""
    outputs = []
    for ids in token_ids:
        captured = []
        handles = [
            block.register_forward_hook(
                lambda m, i, o, store=captured: store.append(o[0] if isinstance(o, tuple) else o)
            )
            for block in decoder_layers(model)
        ]
        with torch.inference_mode():
            model(input_ids=torch.tensor([ids]))
        for handle in handles:
            handle.remove()
        outputs.append([state[0].double().numpy() for state in captured])
    return outputs


def prompts(tokenizer, texts):
    return encode_prompts(tokenizer, texts)


def test_ablation_everywhere_zeroes_the_projection_at_every_layer(loaded, direction):
    model, tokenizer = loaded
    with ablate_everywhere(model, direction):
        states = block_outputs(model, prompts(tokenizer, HARMFUL[:3]))
    for per_prompt in states:
        for layer_state in per_prompt:
            projection = layer_state @ direction
            assert np.abs(projection).max() < 1e-5 * np.abs(layer_state).max()


def test_ablation_at_one_layer_zeroes_it_there_only(loaded, direction):
    model, tokenizer = loaded
    with ablate_at_layer(model, direction, 1):
        states = block_outputs(model, prompts(tokenizer, HARMFUL[:2]))
    for per_prompt in states:
        assert np.abs(per_prompt[1] @ direction).max() < 1e-5 * np.abs(per_prompt[1]).max()
        assert np.abs(per_prompt[2] @ direction).max() > 1e-3  # the next block writes it back


def test_addition_shifts_the_projection_by_the_set_amount(loaded, direction):
    model, tokenizer = loaded
    texts = prompts(tokenizer, HARMLESS[:3])
    vector = 2.5 * direction
    before = block_outputs(model, texts)
    with add_at_layer(model, vector, 0):
        after = block_outputs(model, texts)
    for base, changed in zip(before, after, strict=True):
        np.testing.assert_allclose(changed[0] - base[0], np.broadcast_to(vector, base[0].shape), atol=1e-5)
        np.testing.assert_allclose((changed[0] - base[0]) @ direction, 2.5, atol=1e-5)


def test_random_control_has_the_same_norm_and_differs(loaded, direction):
    model, tokenizer = loaded
    control = random_like(3.0 * direction, seed=1)
    assert np.linalg.norm(control) == pytest.approx(3.0)
    assert abs(control @ direction) / 3.0 < 0.6
    assert not np.allclose(random_like(direction, 1), random_like(direction, 2))
    with ablate_everywhere(model, control):
        states = block_outputs(model, prompts(tokenizer, HARMFUL[:1]))
    assert np.abs(states[0][-1] @ direction).max() > 1e-3  # ablating another direction leaves this one


def runner(loaded, batch_size):
    model, tokenizer = loaded
    return ModelRunner(model, tokenizer, "cpu", BatchRunner(batch_size))


def test_kl_is_zero_without_change_and_positive_with_it(loaded, direction):
    model, tokenizer = loaded
    texts = prompts(tokenizer, HARMLESS[:4])
    base = runner(loaded, 4).next_token_logits(texts)
    np.testing.assert_allclose(kl_divergence(base, runner(loaded, 2).next_token_logits(texts)), 0, atol=1e-6)
    with add_at_layer(model, 5.0 * direction, 1):
        changed = runner(loaded, 4).next_token_logits(texts)
    assert (kl_divergence(base, changed) > 1e-4).all()
    reference = (base.double().softmax(-1) * (base.double().log_softmax(-1) - changed.double().log_softmax(-1))).sum(-1)
    np.testing.assert_allclose(kl_divergence(base, changed), reference.numpy(), rtol=1e-10)


def test_batched_greedy_generation_matches_one_by_one(loaded):
    model, tokenizer = loaded
    texts = prompts(tokenizer, HARMFUL[:3] + HARMLESS[:2])
    batched, _ = runner(loaded, 5).generate(texts, 6)
    single = [runner(loaded, 1).generate([text], 6)[0][0] for text in texts]
    assert batched == single
    assert all(isinstance(response, str) for response in batched)
