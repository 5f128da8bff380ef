"""The first-order estimates of candidate scoring (selection/attribution.py) against finite differences on a
tiny model in float64: the derivative of the mean refusal score along a small ablation (everywhere) or addition (at a
layer), by central differences Richardson-extrapolated from steps of 2e-2 and 1e-2 of the full ablation (2e-3 and 1e-3
of a unit vector added), agrees with the estimate to a relative 1e-4. (The steps cannot be much smaller:
Llama's RMSNorm computes in float32 whatever the model's dtype, which puts noise of about 1e-9 into each
score.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from refusal_directions.model.batching import BatchRunner
from refusal_directions.model.hooks import hooks, residual_writers
from refusal_directions.model.loading import decoder_layers
from refusal_directions.model.refusal_score import refusal_scores
from refusal_directions.selection.attribution import attribution

from conftest import HARMFUL, HARMLESS, build_tiny_model, encode_prompts

STEP, ADDITION_STEP, RELATIVE = 2e-2, 2e-3, 1e-4


@pytest.fixture(scope="module")
def float64_model(tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = build_tiny_model(tmp_path_factory.mktemp("attribution") / "tiny", n_layers=3)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float64).eval()
    return model, AutoTokenizer.from_pretrained(folder)


def mean_score(model, token_ids, refusal_ids, pairs=()) -> float:
    """The mean refusal score, one prompt at a time (no padding), under the forward hooks ``pairs``."""
    scores = []
    with torch.no_grad(), hooks(pairs):
        for ids in token_ids:
            logits = model(input_ids=torch.tensor([ids])).logits[:, -1, :]
            scores.append(refusal_scores(logits, refusal_ids)[0])
    return float(np.mean(scores))


def derivative(function, step: float) -> float:
    """f'(0) by central differences, Richardson-extrapolated from steps h and h/2 (error O(h^4))."""

    def central(h):
        return (function(h) - function(-h)) / (2 * h)

    return (4 * central(step / 2) - central(step)) / 3


def scaled_projection(unit: torch.Tensor, scale: float):
    """x <- x - scale (x . r) r: the ablation at a fraction ``scale`` of its strength."""

    def hook(_module, _inputs, output):
        hidden = output[0] if isinstance(output, tuple) else output
        changed = hidden - scale * (hidden @ unit).unsqueeze(-1) * unit
        return (changed, *output[1:]) if isinstance(output, tuple) else changed

    return hook


def added(vector: torch.Tensor):
    def hook(_module, _inputs, output):
        hidden = output[0] if isinstance(output, tuple) else output
        return (hidden + vector, *output[1:]) if isinstance(output, tuple) else hidden + vector

    return hook


def test_the_estimates_equal_finite_differences(float64_model):
    model, tokenizer = float64_model
    prompts = {"harmful": encode_prompts(tokenizer, HARMFUL[:5]), "harmless": encode_prompts(tokenizer, HARMLESS[:5])}
    refusal_ids = [5, 17, 40]
    estimate = attribution(model, tokenizer, prompts, refusal_ids, torch.device("cpu"), BatchRunner(2))
    assert estimate.harmful_score == pytest.approx(mean_score(model, prompts["harmful"], refusal_ids), rel=1e-9)
    assert estimate.harmless_score == pytest.approx(mean_score(model, prompts["harmless"], refusal_ids), rel=1e-9)
    rng = np.random.default_rng(0)
    d_model = model.config.hidden_size
    for _ in range(3):
        direction = rng.normal(size=d_model) * 3
        unit = torch.as_tensor(direction / np.linalg.norm(direction))
        slope = derivative(
            lambda scale, unit=unit: mean_score(
                model,
                prompts["harmful"],
                refusal_ids,
                [(m, scaled_projection(unit, scale)) for m in residual_writers(model)],
            ),  # fmt: skip
            STEP,
        )
        assert estimate.bypass(direction) - estimate.harmful_score == pytest.approx(slope, rel=RELATIVE)
        for layer in range(3):
            block = decoder_layers(model)[layer]
            # the addition at a step of the unit vector: the residual stream's norm is about 1 here
            slope = derivative(
                lambda scale, block=block, unit=unit: mean_score(
                    model, prompts["harmless"], refusal_ids, [(block, added(scale * unit))]
                ),  # fmt: skip
                ADDITION_STEP,
            )
            assert estimate.induce(unit.numpy(), layer) - estimate.harmless_score == pytest.approx(slope, rel=RELATIVE)
