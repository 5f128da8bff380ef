"""The finished batches a model job keeps for a rerun after an interruption: tied to the job's params and
inputs, replayed instead of run again, never mixed with another job's."""

from __future__ import annotations

import os

import numpy as np
import pytest

from refusal_directions.model.resume import ResumeState
from refusal_directions.workflow.resume_place import ResumePlace, job_key, resume_place


def test_the_key_follows_params_and_inputs_but_not_key_order(tmp_path):
    data = tmp_path / "inputs" / "prompts.jsonl"
    data.parent.mkdir()
    data.write_text("{}\n")
    key = job_key({"model": {"id": "m", "dtype": "float32"}, "positions": "last"}, [str(data.parent)])
    assert key == job_key({"positions": "last", "model": {"dtype": "float32", "id": "m"}}, [str(data.parent)])
    assert key != job_key({"model": {"id": "m", "dtype": "bfloat16"}, "positions": "last"}, [str(data.parent)])
    os.utime(data, ns=(0, 0))  # the input rewritten: Snakemake reruns the job, and its old batches must go
    assert key != job_key({"model": {"id": "m", "dtype": "float32"}, "positions": "last"}, [str(data.parent)])


def test_resume_place_names_the_job():
    place = resume_place("extract_activations", {"model": "tiny"}, {}, [])
    assert place.folder == "results/resume/extract_activations/model=tiny"
    assert place.job == "extract_activations (model=tiny)"


def test_batches_are_kept_and_found_again_under_the_same_key_only(tmp_path):
    place = ResumePlace(str(tmp_path / "job"), "key-1", "job")
    first = ResumeState(place)
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    first.save([4, 7], {"values": values})
    assert first.saved([4, 7]) is None  # only batches of an earlier run are replayed
    again = ResumeState(place)
    np.testing.assert_array_equal(again.saved([4, 7])["values"], values)
    assert again.saved([7, 4]) is None and again.saved([4]) is None
    assert "1 finished batches are kept in" in again.summary()
    other = ResumeState(ResumePlace(place.folder, "key-2", "job"))  # other params or inputs: start afresh
    assert other.saved([4, 7]) is None and not list((tmp_path / "job").glob("batch-*"))
    assert not list((tmp_path / "job").glob("*.partial"))


def test_without_a_place_nothing_is_kept(tmp_path):
    state = ResumeState(None)
    state.save([1], {"values": np.zeros(2)})
    assert state.saved([1]) is None and state.summary() == "this job: nothing is kept"


def test_measured_candidates_are_replayed_without_running_the_model(tmp_path, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from refusal_directions.data.prompt_sets import HARMFUL, HARMLESS
    from refusal_directions.model.batching import BatchRunner
    from refusal_directions.model.forward import ModelRunner
    from refusal_directions.selection.candidate_passes import Candidate, measure_candidates

    from conftest import HARMFUL as HARMFUL_TEXTS
    from conftest import HARMLESS as HARMLESS_TEXTS
    from conftest import build_tiny_model, encode_prompts

    folder = build_tiny_model(tmp_path / "model")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    prompts = {HARMFUL: encode_prompts(tokenizer, HARMFUL_TEXTS[:3]),
               HARMLESS: encode_prompts(tokenizer, HARMLESS_TEXTS[:3])}  # fmt: skip
    rng = np.random.default_rng(0)
    candidates = [Candidate(rng.normal(size=model.config.hidden_size), layer) for layer in (0, 1, 2)]
    runner = ModelRunner(model, tokenizer, "cpu", BatchRunner(9), "auto")  # one candidate a group
    baseline = runner.next_token_logits(prompts[HARMLESS])
    place = ResumePlace(str(tmp_path / "resume"), "key", "score_candidates")
    measured = measure_candidates(runner, prompts, candidates, baseline, [5], [1], ResumeState(place))

    def no_model(*_args, **_kwargs):
        raise AssertionError("a group measured by an earlier run ran again")

    monkeypatch.setattr(runner, "each_batch", no_model)
    replayed = measure_candidates(runner, prompts, candidates, baseline, [5], [1], ResumeState(place))
    for a, b in zip(measured, replayed, strict=True):
        assert (a.bypass, a.induce, a.kl) == (b.bypass, b.induce, b.kl)
        np.testing.assert_array_equal(a.ablated_means, b.ablated_means)
        np.testing.assert_array_equal(a.added_means, b.added_means)
    with pytest.raises(AssertionError, match="ran again"):
        measure_candidates(runner, prompts, candidates, baseline, [5], [1], ResumeState(None))


def test_a_generation_resumes_with_the_same_responses_greedy_or_sampled(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from refusal_directions.model.batching import BatchRunner
    from refusal_directions.model.forward import ModelRunner

    from conftest import HARMFUL as HARMFUL_TEXTS
    from conftest import build_tiny_model, encode_prompts

    folder = build_tiny_model(tmp_path / "model")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    runner = ModelRunner(model, tokenizer, "cpu", BatchRunner(2), "auto")
    ids = encode_prompts(tokenizer, HARMFUL_TEXTS[:6])
    for do_sample in (False, True):
        place = ResumePlace(str(tmp_path / f"sampled={do_sample}"), "key", "generate_responses")
        whole = runner.generate(ids, 5, do_sample, 1.0, 7, resume=ResumeState(place))
        kept = sorted(
            (tmp_path / f"sampled={do_sample}").glob("batch-*.safetensors"), key=lambda p: p.stat().st_mtime_ns
        )
        assert len(kept) == 3
        kept[-1].unlink()  # the batch in flight when the job was interrupted: the last one
        state = ResumeState(place)
        resumed = runner.generate(ids, 5, do_sample, 1.0, 7, resume=state)
        assert state.n_reused == 2 and state.n_saved == 1
        assert resumed[0] == whole[0] and torch.equal(resumed[1], whole[1])
