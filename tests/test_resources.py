"""Resources that follow the model: derived from its size before any job runs, overridable per model."""

import json
import shutil
from pathlib import Path

import pytest

from refusal_directions.config.resources import (
    GPU_MEMORY_PER_WEIGHT,
    Workload,
    conversion_mem_mb,
    gpus_needed,
    job_resources,
    rule_workloads,
    weights_mb,
)

from conftest import REPO, planned_jobs, run_workflow, tiny_config

FIXTURES = Path(__file__).parent / "fixtures" / "model_configs"
SIZES = {"0.5b": 494_032_768, "7b": 7_615_616_512, "72b": 72_706_203_648}
GPU_80GB = 81920


def test_72b_in_bf16_gets_enough_80gb_gpus_for_1_2_times_its_weights():
    gpus = gpus_needed(SIZES["72b"], "bfloat16", GPU_80GB)
    assert gpus * GPU_80GB >= GPU_MEMORY_PER_WEIGHT * weights_mb(SIZES["72b"], "bfloat16")
    assert (gpus - 1) * GPU_80GB < GPU_MEMORY_PER_WEIGHT * weights_mb(SIZES["72b"], "bfloat16")  # and no more
    assert gpus == 3 and gpus_needed(SIZES["72b"], "float32", GPU_80GB) == 5
    assert gpus_needed(SIZES["7b"], "bfloat16", GPU_80GB) == 1 and gpus_needed(SIZES["7b"], "bfloat16", 16384) == 2


def test_a_gguf_conversion_gets_memory_for_its_float32_weights_twice():
    for n_params in (135_000_000, SIZES["7b"]):
        assert conversion_mem_mb(n_params) >= 2 * weights_mb(n_params, "float32")
    assert conversion_mem_mb(SIZES["7b"]) > 56_000 > conversion_mem_mb(135_000_000)


def test_resources_grow_with_the_model_and_the_work_and_overrides_win():
    small = job_resources(SIZES["0.5b"], "auto", Workload(10_000), GPU_80GB)
    large = job_resources(SIZES["72b"], "auto", Workload(10_000), GPU_80GB)
    assert small["gpu"] == 1 and small["mem_mb"] < 8000 and small["threads"] == 4
    assert large["gpu"] == 3 and large["mem_mb"] > weights_mb(SIZES["72b"], "bfloat16") and large["threads"] == 12
    assert large["runtime"] > small["runtime"]
    longer = job_resources(SIZES["72b"], "auto", Workload(10_000, decode_steps=50_000), GPU_80GB)
    assert longer["runtime"] > large["runtime"]
    assert job_resources(SIZES["72b"], "auto", Workload(1), GPU_80GB, {"gpu": 8, "runtime": None})["gpu"] == 8


@pytest.fixture
def sized_models(tmp_path, tiny_model):
    """A config with three local model folders that hold only the real config.json of Qwen2.5 0.5B, 7B and
    72B (no weights: the dry run reads sizes, never weights); 7B has an override."""
    models = []
    for size in SIZES:
        folder = tmp_path / f"qwen2.5-{size}"
        shutil.copytree(FIXTURES / f"qwen2.5-{size}-instruct", folder)
        models.append({"slug": f"qwen-{size}", "id": str(folder)})
    models[1]["resources"] = {"gpu": 2, "mem_mb": 123000}
    config = tiny_config(tmp_path, tiny_model, n_samples=20)
    config["models"] = models
    config["selection"] = {"enabled": True}
    config["gpu_mem_mb"] = GPU_80GB
    return config


def derived(jobs, rule):
    return {
        job["wildcards"]["model"]: job["resources"]
        for job in jobs
        if job["rule"] == rule and "model" in job["wildcards"]
    }


def test_a_dry_run_with_the_slurm_profile_shows_resources_that_follow_the_model(tmp_path, sized_models):
    jobs = planned_jobs(run_workflow(tmp_path, sized_models, "-n", "--profile", str(REPO / "profiles" / "slurm")))
    for rule in ("extract_activations", "score_candidates", "evaluate_direction"):
        resources = derived(jobs, rule)
        assert set(resources) == {"qwen-0.5b", "qwen-7b", "qwen-72b"}, rule
        small, override, large = resources["qwen-0.5b"], resources["qwen-7b"], resources["qwen-72b"]
        assert small["gpu"] == "1" and int(small["mem_mb"]) < 8000 and small["device_map"] == "none"
        assert override["gpu"] == "2" and override["mem_mb"] == "123000" and override["device_map"] == "auto"
        assert large["gpu"] == "3" and int(large["mem_mb"]) > 138_000 and large["device_map"] == "auto"
        assert int(large["runtime"]) > int(small["runtime"])
        assert all(r["slurm_partition"] == "gpu" for r in resources.values())


def test_a_model_whose_size_cannot_be_read_stops_the_run_with_one_line(tmp_path, tiny_model):
    config = tiny_config(tmp_path, tiny_model)
    config["models"] = [{"slug": "remote", "id": "no-such-org/no-such-model"}]
    result = run_workflow(tmp_path, config, "-n", check=False)
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert result.returncode != 0 and len(errors) == 1 and "Traceback" not in output
    assert "model 'remote' (no-such-org/no-such-model): its size cannot be read" in errors[0]
    assert "give its parameter count as n_params" in errors[0]
    config["models"][0]["n_params"] = 1_000_000_000
    jobs = planned_jobs(run_workflow(tmp_path, config, "-n"))
    assert {job["resources"]["gpu"] for job in jobs if job["rule"] == "extract_activations"} == {"1"}


def test_a_job_process_sizes_its_job_as_the_main_process_did(tmp_path, tiny_model, monkeypatch):
    """A job's own Snakemake process (on a cluster node, perhaps offline) reads the sizes the main process
    read, so its GPU count and device_map match what was requested for it."""
    config = tiny_config(tmp_path, tiny_model)
    config["models"] = [{"slug": "remote", "id": "no-such-org/no-such-model"}]
    sizes = {"remote": {"n_params": SIZES["72b"], "n_layers": 80, "source": "the main process"}}
    monkeypatch.setenv("REFUSAL_DIRECTIONS_MODEL_SIZES", json.dumps(sizes))
    result = run_workflow(tmp_path, config, "-n", "--mode", "remote", "results/remote/activations", check=False)
    jobs = planned_jobs(result)
    extraction = [job["resources"] for job in jobs if job["rule"] == "extract_activations"]
    assert [(job["gpu"], job["device_map"]) for job in extraction] == [("3", "auto")]


def test_the_scoring_job_is_sized_by_the_candidates_it_scores():
    """The layer filter's last fifth of the layers is not scored (selection.score_all_layers scores it)."""
    import yaml

    from refusal_directions.config.check import validate_config

    config = validate_config(
        yaml.safe_load((REPO / "config" / "config.yaml").read_text()), REPO / "config" / "schema.yaml"
    )
    config["selection"].update(layer_stride=1, max_layer_fraction=0.8)
    filtered = rule_workloads(config, 80)["score_candidates"].forward_tokens
    config["selection"]["score_all_layers"] = True
    every_layer = rule_workloads(config, 80)["score_candidates"].forward_tokens
    # 2 baseline passes + 3 per candidate: 64 of 80 layers against all 80
    assert filtered / every_layer == pytest.approx((2 + 3 * 64) / (2 + 3 * 80))
