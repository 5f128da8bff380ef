"""Several models in one run: shared prompts, one branch per model, and the cross-model comparison."""

import json

import pandas as pd
import pytest

from conftest import build_tiny_model, run_workflow, tiny_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_model_run(tmp_path_factory, tiny_model):
    workdir = tmp_path_factory.mktemp("two-models")
    second = build_tiny_model(workdir / "second-model", n_layers=4, seed=1)
    config = tiny_config(workdir, tiny_model)
    config["models"].append({"slug": "second", "id": str(second)})
    run_workflow(workdir, config)
    return workdir


def test_datasets_are_downloaded_and_sampled_once(two_model_run):
    logs = two_model_run / "results" / "logs"
    assert sorted(p.name for p in (logs / "download_dataset").iterdir()) == ["harmful.log", "harmless.log"]
    assert sorted(p.name for p in (logs / "sample_prompts").iterdir()) == ["harmful.log", "harmless.log"]


def test_every_model_sees_the_same_prompts(two_model_run):
    results = two_model_run / "results"
    for name in ("harmful", "harmless"):
        shared = [json.loads(line) for line in (results / "prompts" / f"{name}.jsonl").read_text().splitlines()]
        for model in ("tiny", "second"):
            seen = [
                json.loads(line) for line in (results / model / "prompts" / f"{name}.jsonl").read_text().splitlines()
            ]
            assert [(r["id"], r["text"]) for r in seen] == [(r["id"], r["text"]) for r in shared]


def test_each_model_has_its_branch(two_model_run):
    results = two_model_run / "results"
    assert len(pd.read_csv(results / "tiny" / "validation_results.csv")) == 3
    assert len(pd.read_csv(results / "second" / "validation_results.csv")) == 4


def test_comparison_table_and_figure(two_model_run):
    results = two_model_run / "results"
    table = pd.read_csv(results / "comparison" / "models.csv")
    assert table["model"].tolist() == ["tiny", "second"]
    for row in table.itertuples():
        summary = json.loads((results / row.model / "summary.json").read_text())
        layers = pd.read_csv(results / row.model / "validation_results.csv")
        best = layers.loc[layers["cohens_d"].abs().idxmax()]
        assert row.strongest_layer == best["layer"] == summary["strongest_layer"]["layer"]
        assert row.relative_depth == pytest.approx(best["layer"] / len(layers))
        assert row.peak_cohens_d == pytest.approx(best["cohens_d"])
        assert row.n_valid_layers == int(layers["valid"].sum())
        assert row.n_layers == len(layers)
    assert (results / "comparison" / "cohens_d_by_depth.png").read_bytes()[:4] == b"\x89PNG"


def test_duplicate_slug_is_a_clear_config_error(tmp_path, tiny_model):
    config = tiny_config(tmp_path, tiny_model)
    config["models"].append(dict(config["models"][0]))
    result = run_workflow(tmp_path, config, "-n", check=False)
    assert result.returncode != 0
    message = "invalid config: config key 'models': slug 'tiny' is used by more than one model"
    assert message in result.stdout + result.stderr
