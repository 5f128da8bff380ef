"""Devices, dtypes, batch-size back-off, GPU resource declarations and GPU job serialisation."""

import logging
import re
from contextlib import contextmanager
from datetime import datetime

import numpy as np
import pytest
import torch

from refusal_directions.model.batching import BatchRunner
from refusal_directions.model.extraction import Extractor
from refusal_directions.model.forward import ModelRunner
from refusal_directions.model.loading import load_model, load_tokenizer, resolve_device, resolve_dtype
from refusal_directions.workflow.execution import ExecutionSettings

from conftest import HARMFUL, HARMLESS, REPO, build_tiny_model, encode_prompts, planned_jobs, run_workflow, tiny_config

SPEC = {"id": "tiny", "trust_remote_code": False}


def test_device_auto_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto").type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    assert resolve_device("cuda:1") == torch.device("cuda:1")


def test_dtype_auto_is_bf16_on_cuda_only():
    assert resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("auto", torch.device("mps")) == torch.float32
    assert resolve_dtype("float16", torch.device("cpu")) == torch.float16


class Resources:
    """What Snakemake hands a job as ``resources``: attributes."""

    def __init__(self, values):
        self.__dict__.update(values)


@pytest.mark.parametrize(
    "settings",
    [
        ExecutionSettings(threads=8),
        ExecutionSettings(
            batch_size=4, max_batch_tokens=512, device="cuda:1", device_map="auto", max_prompt_tokens=99, threads=2
        ),
    ],
    ids=["defaults", "explicit"],
)
def test_execution_settings_travel_as_resources_and_back(settings):
    resources = settings.resources()
    assert all(isinstance(value, int | str) for value in resources.values())  # what resources may hold
    assert ExecutionSettings.from_resources(Resources(resources), settings.threads) == settings


def test_auto_batch_size_is_decided_in_one_place():
    assert ExecutionSettings(batch_size="auto").max_batch_size == 32
    assert ExecutionSettings(batch_size=5).max_batch_size == 5


@pytest.fixture(scope="module")
def loaded(tiny_model):
    return load_model(str(tiny_model), None, SPEC, torch.device("cpu"), torch.float32), load_tokenizer(
        str(tiny_model), None, SPEC
    )


def formatted(tokenizer, texts):
    return encode_prompts(tokenizer, texts)


def collector():
    """A sink that keeps each prompt's per-layer rows, and a function that stacks them in prompt order."""
    rows = {}

    def sink(indices, per_layer, scores):
        for position, index in enumerate(indices):
            rows[int(index)] = np.stack([values[position] for values in per_layer])

    return sink, lambda: np.stack([rows[i] for i in range(len(rows))])


def extractor_for(loaded, batch_size):
    model, tokenizer = loaded
    return Extractor(ModelRunner(model, tokenizer, torch.device("cpu"), BatchRunner(batch_size)))


@contextmanager
def out_of_memory_above(model, limit):
    """CUDA's out-of-memory error for every batch of more than ``limit`` prompts."""

    def check(_module, _args, kwargs):
        if kwargs["input_ids"].shape[0] > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    handle = model.register_forward_pre_hook(check, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def test_batch_size_backs_off_on_out_of_memory(loaded, caplog):
    model, tokenizer = loaded
    texts = formatted(tokenizer, HARMFUL[:10] + HARMLESS[:9])
    sink, stacked = collector()
    extractor_for(loaded, 1).run(texts, sink)
    reference = stacked()
    extractor = extractor_for(loaded, 32)
    sink, stacked = collector()
    with caplog.at_level(logging.WARNING), out_of_memory_above(model, 5):
        extractor.run(texts, sink)
    assert extractor.runner.batches.max_prompts <= 5
    assert "out of memory at batch size 19; going on with 9" in caplog.text
    np.testing.assert_allclose(stacked(), reference, atol=1e-5)


def test_out_of_memory_on_a_single_prompt_fails_the_job(loaded):
    model, tokenizer = loaded
    with pytest.raises(torch.OutOfMemoryError), out_of_memory_above(model, 0):
        extractor_for(loaded, 8).run(formatted(tokenizer, HARMFUL[:8]), lambda *args: None)


def test_device_map_auto_matches_a_plain_load(tiny_model, loaded):
    model, tokenizer = loaded
    mapped = load_model(str(tiny_model), None, SPEC, torch.device("cpu"), torch.float32, device_map="auto")
    texts = formatted(tokenizer, HARMFUL[:6])
    results = []
    for candidate in (model, mapped):
        sink, stacked = collector()
        extractor_for((candidate, tokenizer), 4).run(texts, sink)
        results.append(stacked())
    np.testing.assert_allclose(results[1], results[0], atol=1e-6)


MODEL_RULES = {
    "extract_activations",
    "generate_responses",
    "run_interventions",
    "score_candidates",
    "evaluate_direction",
    "orthogonalize_model",
    "check_edited_model",
    "measure_capability",
    "measure_edited_capability",
}


@pytest.mark.parametrize("experiment", [None, "smollm2-llm-judge.yaml"], ids=["default", "llm-judge"])
def test_only_the_jobs_that_run_the_model_ask_for_a_gpu(tmp_path, experiment):
    """The default config (every branch on), and with the embedded model as the llm judge (merged into the
    default config, which the Snakefile reads from the working folder)."""
    (tmp_path / "data").symlink_to(REPO / "data")
    (tmp_path / "config").symlink_to(REPO / "config")
    configfile = REPO / "config" / ("experiments/" + experiment if experiment else "config.yaml")
    model_rules = MODEL_RULES | ({"judge_responses"} if experiment else set())
    for profile in (None, REPO / "profiles" / "slurm"):
        extra = ["--profile", str(profile)] if profile else []
        jobs = planned_jobs(run_workflow(tmp_path, None, "-n", *extra, configfile=configfile, replace=False))
        gpu_rules = {job["rule"] for job in jobs if job["resources"].get("gpu")}
        assert gpu_rules == model_rules
        for job in jobs:
            if job["rule"] in model_rules:
                resources = job["resources"]
                # Derived from the embedded model's 135M parameters (tests/test_resources.py: larger models).
                assert resources["gpu"] == "1" and 4000 < int(resources["mem_mb"]) < 8000
                assert int(resources["runtime"]) >= 15
                if profile:  # the profile adds the site's partition and nothing the rules own
                    assert resources["slurm_partition"] == "gpu" and "cpus_per_gpu" not in resources
            elif profile:
                assert job["resources"]["slurm_partition"] == "cpu", job["rule"]


def extraction_intervals(workdir):
    """(start, end) of each extraction job, from the 'job started'/'job finished' lines of its log."""
    intervals = []
    for log in sorted((workdir / "results" / "logs" / "extract_activations").glob("*.log")):
        stamps = [
            datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
            for line in log.read_text().splitlines()
            if re.search(r" INFO job (started|finished)$", line)
        ]
        intervals.append((stamps[0], stamps[-1]))
    return sorted(intervals)


@pytest.mark.slow
@pytest.mark.parametrize("gpu_limit", [True, False], ids=["resources-gpu-1", "no-gpu-limit"])
def test_gpu_resource_serialises_extractions(tmp_path, tiny_model, gpu_limit):
    config = tiny_config(tmp_path, tiny_model)
    second = build_tiny_model(tmp_path / "second-model", seed=3)
    config["models"].append({"slug": "second", "id": str(second)})
    args = ["--cores", "4", "--set-threads", "extract_activations=1", "--until", "extract_activations"]
    run_workflow(tmp_path, config, *args, *(["--resources", "gpu=1"] if gpu_limit else []))
    (first_start, first_end), (second_start, _) = extraction_intervals(tmp_path)
    if gpu_limit:
        assert second_start >= first_end  # one after the other
    else:
        assert second_start < first_end  # the control: without the limit they overlap
