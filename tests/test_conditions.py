"""The registry of conditions, the one runner and the one summary: what each condition runs on and is
compared with, the runner's scores and KL against direct computations on the tiny model, and the summary's
rates, changes and intervals against direct computations."""

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats as scipy_stats

from refusal_directions.data.chat_format import PromptFormat
from refusal_directions.data.prompt_sets import HARMLESS
from refusal_directions.interventions.condition_hooks import kl_divergence, random_like
from refusal_directions.interventions.condition_runner import ConditionRunner
from refusal_directions.interventions.condition_summary import condition_table
from refusal_directions.interventions.conditions import (
    BASELINES,
    CONDITIONS,
    EVALUATION,
    INTERVENTIONS,
    SWEEP,
    InterventionVectors,
    baseline_of,
)
from refusal_directions.model.batching import BatchRunner
from refusal_directions.model.forward import ModelRunner
from refusal_directions.model.hooks import ablate_everywhere, add_at_layer
from refusal_directions.model.job import ModelJob
from refusal_directions.model.loading import load_model, load_tokenizer
from refusal_directions.model.refusal_score import refusal_scores

from conftest import HARMFUL
from conftest import HARMLESS as HARMLESS_TEXTS

SPEC = {"id": "tiny", "trust_remote_code": False}


def test_every_condition_is_compared_with_conditions_on_its_own_prompts():
    for name, condition in CONDITIONS.items():
        assert condition.name == name and condition.label
        if condition.intervenes:
            assert CONDITIONS[condition.compared_with].prompt_set == condition.prompt_set
            assert condition.compared_with in BASELINES
        for control in condition.controls:
            assert CONDITIONS[control].prompt_set == condition.prompt_set and CONDITIONS[control].vector != "direction"
    assert set(BASELINES) == {baseline_of("harmful"), baseline_of("harmless")}
    assert set(INTERVENTIONS) <= set(EVALUATION) <= set(SWEEP)
    assert list(SWEEP[: len(BASELINES)]) == list(BASELINES)  # every KL is measured against a baseline run first
    assert len({condition.label for condition in CONDITIONS.values()}) == len(CONDITIONS)


@pytest.fixture(scope="module")
def job(tiny_model):
    model = load_model(str(tiny_model), None, SPEC, torch.device("cpu"), torch.float32)
    tokenizer = load_tokenizer(str(tiny_model), None, SPEC)
    prompt_format = PromptFormat(tokenizer, "chat", None, "tiny")
    runner = ModelRunner(model, tokenizer, "cpu", BatchRunner(3))
    return ModelJob(SPEC, str(tiny_model), None, tokenizer, prompt_format, model=model, runner=runner)


def test_the_runner_scores_every_condition_and_records_kl_for_ablation_and_addition(job):
    prompts = {
        name: [{"id": f"{name}-{i}", "row": i, "text": text} for i, text in enumerate(texts[:4])]
        for name, texts in (("harmful", HARMFUL), ("harmless", HARMLESS_TEXTS))
    }
    direction = 4.0 * np.random.default_rng(1).normal(size=job.model.config.hidden_size)
    vectors = InterventionVectors(direction, 1, random=random_like(direction, 7), control=None)
    runner = ConditionRunner(job, prompts, scored_by=[5, 9], max_new_tokens=3)
    runner.run_all(EVALUATION, vectors)
    generations = pd.DataFrame(runner.generations)
    ran = [name for name in EVALUATION if CONDITIONS[name].vector != "control"]  # no control contrast here
    assert generations["condition"].unique().tolist() == ran
    assert (generations.groupby("condition").size() == 4).all()
    ids = {name: [job.prompt_format.encode(r["text"]) for r in records] for name, records in prompts.items()}
    with ablate_everywhere(job.model, direction):
        ablated = job.runner.next_token_logits(ids["harmful"])
        ablated_harmless = job.runner.next_token_logits(ids[HARMLESS])
    with add_at_layer(job.model, direction, 1):
        added = job.runner.next_token_logits(ids[HARMLESS])
    baseline = job.runner.next_token_logits(ids[HARMLESS])
    scores = generations.set_index("condition")["refusal_score"]
    np.testing.assert_allclose(scores["ablation_all"], refusal_scores(ablated, [5, 9]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scores["addition"], refusal_scores(added, [5, 9]), rtol=1e-5, atol=1e-5)
    kl = pd.DataFrame(runner.divergences).set_index("condition")["mean_kl"]
    assert set(kl.index) == {name for name in ran if CONDITIONS[name].records_kl}
    assert kl["addition"] == pytest.approx(kl_divergence(baseline, added).mean(), rel=1e-4, abs=1e-7)
    assert kl["ablation_all"] == pytest.approx(kl_divergence(baseline, ablated_harmless).mean(), rel=1e-4, abs=1e-7)
    assert kl["addition"] > 0


def test_conditions_an_earlier_run_finished_are_replayed_with_the_same_results(job, tmp_path, monkeypatch):
    from refusal_directions.model.resume import ResumeState
    from refusal_directions.workflow.resume_place import ResumePlace

    prompts = {
        name: [{"id": f"{name}-{i}", "row": i, "text": text} for i, text in enumerate(texts[:3])]
        for name, texts in (("harmful", HARMFUL), ("harmless", HARMLESS_TEXTS))
    }
    direction = 4.0 * np.random.default_rng(2).normal(size=job.model.config.hidden_size)
    vectors = InterventionVectors(direction, 1, random=random_like(direction, 7), control=None)
    place = ResumePlace(str(tmp_path / "resume"), "key", "evaluate_direction")
    first = ConditionRunner(job, prompts, scored_by=[5, 9], max_new_tokens=3, resume=ResumeState(place))
    first.run_all(EVALUATION[:3], vectors)  # interrupted after three conditions
    monkeypatch.setattr(job.runner, "generate", lambda *args, **kwargs: pytest.fail("a finished condition ran again"))
    again = ConditionRunner(job, prompts, scored_by=[5, 9], max_new_tokens=3, resume=ResumeState(place))
    again.run_all(EVALUATION[:3], vectors)
    monkeypatch.undo()
    assert again.generations == first.generations and again.divergences == first.divergences
    again.run_all(EVALUATION[3:], vectors)  # the rest runs, with the replayed harmless baseline for its KL
    whole = ConditionRunner(job, prompts, scored_by=[5, 9], max_new_tokens=3)
    whole.run_all(EVALUATION, vectors)
    assert again.generations == whole.generations and again.divergences == whole.divergences


def judged(condition, layer, refused, scores):
    prompt_set = CONDITIONS[condition].prompt_set
    return [
        {"condition": condition, "set": prompt_set, "layer": layer, "row": row, "refused": value,
         "refused_text": value, "refused_score": score > 0, "refusal_score": score}
        for row, (value, score) in enumerate(zip(refused, scores, strict=True))
    ]  # fmt: skip


def test_the_summary_against_a_direct_computation():
    rng = np.random.default_rng(3)
    refused = {name: rng.random(20) < p for name, p in (("baseline_harmful", 0.8), ("ablation_all", 0.3),
                                                          ("random_ablation_all", 0.75))}  # fmt: skip
    scores = {name: rng.normal(size=20) for name in refused}
    rows = []
    for name in refused:
        rows += judged(name, None if name in BASELINES else 4, refused[name], scores[name])
    divergences = pd.DataFrame([{"layer": 4, "condition": "ablation_all", "mean_kl": 0.25}])
    table = condition_table(pd.DataFrame(rows), divergences, level=0.9, n_bootstrap=2000, seed=0)
    table = table.set_index("condition")
    assert table.index.tolist() == ["baseline_harmful", "ablation_all", "random_ablation_all"]
    for name in refused:
        k = int(refused[name].sum())
        wilson = scipy_stats.binomtest(k, 20).proportion_ci(0.9, method="wilson")
        assert table.loc[name, "refusal_rate"] == k / 20
        assert (table.loc[name, "refusal_rate_ci_low"], table.loc[name, "refusal_rate_ci_high"]) == pytest.approx(
            (wilson.low, wilson.high), abs=1e-12
        )
        assert table.loc[name, "mean_refusal_score"] == pytest.approx(scores[name].mean())
    ablation = table.loc["ablation_all"]
    assert ablation["layer"] == 4 and pd.isna(table.loc["baseline_harmful", "layer"])
    assert ablation["change_rate"] == pytest.approx(refused["ablation_all"].mean() - refused["baseline_harmful"].mean())
    assert ablation["change_score"] == pytest.approx(scores["ablation_all"].mean() - scores["baseline_harmful"].mean())
    difference = scores["ablation_all"] - scores["random_ablation_all"]
    assert ablation["vs_random_score"] == pytest.approx(difference.mean())
    # the paired interval comes from the spread of the per-prompt differences: about mean +- 1.645 SE at 90%
    half = 1.645 * difference.std() / np.sqrt(20)
    assert ablation["vs_random_score_ci_low"] == pytest.approx(difference.mean() - half, abs=0.25 * half)
    assert ablation["vs_random_score_ci_high"] == pytest.approx(difference.mean() + half, abs=0.25 * half)
    assert "vs_control_score" not in table or pd.isna(ablation["vs_control_score"])
    assert ablation["mean_kl"] == 0.25 and pd.isna(table.loc["random_ablation_all", "mean_kl"])
