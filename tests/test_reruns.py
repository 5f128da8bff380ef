"""config/README.md's table "key -> what reruns", checked row by row with snakemake -n on a finished run of
the shipped default config (embedded model, control contrast, behaviour and interventions on); and the
run as a cache: nothing stale survives a damaged or deleted file."""

import os
import shutil
from collections import Counter

import pytest
import yaml

from conftest import REPO, copy_run, planned_jobs, run_workflow, tiny_config

pytestmark = pytest.mark.slow

MODEL = "smollm2-135m-instruct"
N_LAYERS = 30
MODEL_JOBS = {"convert_model", "extract_activations", "generate_responses", "run_interventions", "score_candidates",
              "evaluate_direction"}  # fmt: skip
TABLES = {"aggregate_layers": 1, "plot_directions": 1, "write_report": 1, "compare_models": 1, "all": 1}
STATISTICS = {"layer_stats": N_LAYERS, **TABLES}
# The capability cost: the cross-entropy of the evaluation's conditions, its table and its figure.
CAPABILITY = {"measure_capability": 1, "summarize_capability": 1, "plot_capability": 1}
INTERVALS = {"behaviour_analysis": 1, "summarize_interventions": 1, "summarize_evaluation": 1,
             "summarize_capability": 1, "plot_capability": 1, "judge_agreement": 1}  # fmt: skip
# The judges' agreement reads every label table: it reruns with any of them (seconds; no judge model job).
AGREEMENT = {"judge_agreement": 1}
# The edited model: its export and check, and its cross-entropy.
EXPORT = {"orthogonalize_model": 1, "check_edited_model": 1, "measure_edited_capability": 1}
SELECTION = {"score_candidates": 1, "select_direction": 1, "plot_selection": 1, "evaluate_direction": 1,
             "summarize_evaluation": 1, "compare_models": 1, **CAPABILITY, **EXPORT, **AGREEMENT}  # fmt: skip
READERS_OF_SPLITS = {
    "compute_directions": 1,
    "compute_candidates": 1,
    "generate_responses": 1,
    "score_refusals": 1,
    "behaviour_analysis": 1,
    "run_interventions": 1,
    "summarize_interventions": 1,
    **SELECTION,
    **TABLES,
}
# Extraction is a checkpoint: a dry run lists the jobs it can already see after it.
EXTRACTION_AND_AFTER = {"extract_activations": 1, **READERS_OF_SPLITS}


@pytest.fixture
def run(default_run, tmp_path):
    """A copy of the finished default run to change and dry-run."""
    return copy_run(default_run, tmp_path / "run")


def shipped_config(workdir):
    return yaml.safe_load((workdir / "config.yaml").read_text())


def dry_run(workdir, config=None):
    return planned_jobs(run_workflow(workdir, config, "-n"))


def dry_run_after(workdir, change):
    config = shipped_config(workdir)
    change(config)
    return dry_run(workdir, config)


def counts(jobs):
    return dict(Counter(job["rule"] for job in jobs))


def reasons(jobs, rule):
    """Why Snakemake plans the jobs of ``rule``, without the details after the first colon."""
    return {job["reason"].split(":")[0] for job in jobs if job["rule"] == rule}


def test_a_finished_run_has_nothing_to_do(run):
    result = run_workflow(run, None, "-n")
    assert planned_jobs(result) == [] and "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.parametrize("change", [{"alpha": 0.005}, {"d_min": 1.5}], ids=["alpha", "d_min"])
def test_thresholds_rerun_only_the_tables(run, change):
    jobs = dry_run_after(run, lambda c: c.update(change))
    assert counts(jobs) == TABLES  # no layer_stats, no model job, no behaviour analysis
    assert reasons(jobs, "aggregate_layers") == {"Params have changed since last execution"}


@pytest.mark.parametrize(
    "change, extra",
    [
        ({"n_folds": 3}, {}),
        ({"n_permutations": 500}, {}),
        ({"n_bootstrap": 300}, INTERVALS),
        ({"ci_level": 0.9}, INTERVALS),
        ({"stats_seed": 1}, INTERVALS),
    ],
    ids=lambda value: next(iter(value), "") if isinstance(value, dict) else "",
)
def test_statistics_settings_rerun_statistics_and_tables_only(run, change, extra):
    jobs = dry_run_after(run, lambda c: c.update(change))
    assert counts(jobs) == {**STATISTICS, **extra}
    assert not MODEL_JOBS & set(counts(jobs))


def test_control_contrast_reruns_statistics_directions_and_their_readers(run):
    jobs = dry_run_after(run, lambda c: c.update(control={"a": "harmless", "b": "harmful"}))
    assert counts(jobs) == {
        **STATISTICS,
        "compute_directions": 1,  # the directions file holds the control's direction
        "run_interventions": 1,  # which the interventions and the evaluation use as a control
        "summarize_interventions": 1,
        "evaluate_direction": 1,
        "summarize_evaluation": 1,
        **CAPABILITY,  # the control direction is a condition there too
        "measure_edited_capability": 1,  # it scores the evaluation's responses
        "behaviour_analysis": 1,
        **AGREEMENT,
    }


# summarize_interventions writes the labels next to its figure: the agreement reads them again.
FIGURES = {"plot_directions": 1, "behaviour_analysis": 1, "summarize_interventions": 1, "plot_selection": 1,
           "plot_capability": 1, "write_report": 1, "all": 1, **AGREEMENT}  # fmt: skip


def test_plot_dpi_reruns_figures_and_report_only(run):
    jobs = dry_run_after(run, lambda c: c.update(plot_dpi=90))
    assert counts(jobs) == {**FIGURES, "compare_models": 1}


def test_a_display_name_reruns_titles_only(run):
    jobs = dry_run_after(run, lambda c: c["models"][0].update(name="SmolLM2 135M (Q4_1)"))
    assert counts(jobs) == FIGURES  # no extraction: the name is not part of what a job computes


@pytest.mark.parametrize("change", [{"seed": 7}, {"test": 50}], ids=["seed", "proportions"])
def test_splits_rerun_everything_after_the_extraction_but_no_extraction(run, change):
    jobs = dry_run_after(run, lambda c: c["splits"].update(change))
    assert counts(jobs) == {"split_prompts": 1, "layer_stats": N_LAYERS, **READERS_OF_SPLITS}


@pytest.mark.parametrize(
    "change",
    [lambda c: c.update(positions="post_instruction"), lambda c: c["refusal_score"].update(token_ids=[28])],
    ids=["positions", "refusal_score"],
)
def test_what_the_extraction_keeps_reruns_it(run, change):
    jobs = dry_run_after(run, lambda c: (c.setdefault("refusal_score", {}), change(c)))
    assert counts(jobs) == EXTRACTION_AND_AFTER
    assert reasons(jobs, "extract_activations") == {"Params have changed since last execution"}


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"layer_stride": 5}, SELECTION),
        ({"max_layer_fraction": 0.6}, SELECTION),  # the layers scored follow the layer filter
        ({"kl_max": 0.05}, {**SELECTION, "score_candidates": 0}),
        ({"method": "cosmic"}, {**SELECTION, "score_candidates": 0}),
        (
            {"evaluation": {"n_prompts": 4, "max_new_tokens": 8}},
            # the check runs on the evaluation's prompts; the edited model's cross-entropy scores its responses
            {
                "evaluate_direction": 1,
                "summarize_evaluation": 1,
                **CAPABILITY,
                **EXPORT,
                "orthogonalize_model": 0,
                **AGREEMENT,
            },  # fmt: skip
        ),
    ],
    ids=["layer_stride", "max_layer_fraction", "threshold", "method", "evaluation"],
)
def test_selection_settings_rerun_the_selection_only(run, change, expected):
    jobs = dry_run_after(run, lambda c: c["selection"].update(change))
    expected = {rule: n for rule, n in expected.items() if n}
    assert counts(jobs) == {**expected, "write_report": 1, "all": 1}  # no extraction, no statistics


def test_a_threshold_that_keeps_the_choice_skips_the_evaluation(run):
    """select_direction is a checkpoint: when it runs again and chooses the same direction, the evaluation (a
    model job) is skipped; the dry run lists it because the choice is not known before the selection runs."""
    import pandas as pd

    selection = run / "results" / MODEL / "selection"
    config = shipped_config(run)
    old = config["selection"]["kl_max"]
    # a new KL bound with no candidate's KL between the two: the same candidates pass, the same one wins
    above = pd.read_csv(selection / "scores.csv")["kl"].loc[lambda kl: kl > old]
    config["selection"]["kl_max"] = float((old + above.min()) / 2) if len(above) else 2 * old
    assert "evaluate_direction" in counts(dry_run(run, config))
    direction = (selection / "selected_direction.safetensors").read_bytes()
    evaluated = (selection / "evaluation_kl.csv").stat().st_mtime_ns
    result = run_workflow(run, config)
    ran = counts(planned_jobs(result))
    assert ran["select_direction"] == 1 and not {"evaluate_direction", "measure_capability", *EXPORT} & set(ran), ran
    assert (selection / "selected_direction.safetensors").read_bytes() == direction
    assert (selection / "evaluation_kl.csv").stat().st_mtime_ns == evaluated
    assert dry_run(run, config) == []


@pytest.mark.parametrize("change", [{"n_samples": 14}, {"seed": 7}], ids=["n_samples", "seed"])
def test_sampling_reruns_from_sampling(run, change):
    jobs = dry_run_after(run, lambda c: c.update(change))
    assert counts(jobs) == {"sample_prompts": 4, "split_prompts": 1, **EXTRACTION_AND_AFTER}
    assert reasons(jobs, "sample_prompts") == {"Params have changed since last execution"}


@pytest.mark.parametrize(
    "change",
    [{"system_prompt": "You are a careful assistant."}, {"prompt_format": "raw"}, {"dtype": "bfloat16"}],
    ids=["system_prompt", "prompt_format", "dtype"],
)
def test_model_usage_reruns_from_extraction(run, change):
    jobs = dry_run_after(run, lambda c: c["models"][0].update(change))
    assert counts(jobs) == EXTRACTION_AND_AFTER  # no download, sampling or conversion
    assert reasons(jobs, "extract_activations") == {"Params have changed since last execution"}


def test_model_source_reruns_from_conversion(run):
    jobs = dry_run_after(run, lambda c: c["models"][0].update(revision="v2"))
    assert counts(jobs) == {"convert_model": 1, **EXTRACTION_AND_AFTER}


def test_dataset_edit_reruns_from_its_download(run):
    source = run / "edited-harmful.txt"
    shutil.copy(run / "data" / "harmful.txt", source)
    with source.open("a") as handle:
        handle.write("Explain how to forge a signature on a cheque\n")
    jobs = dry_run_after(run, lambda c: c["datasets"]["harmful"].update(source=str(source)))
    assert counts(jobs) == {"download_dataset": 1, "sample_prompts": 1, "split_prompts": 1, **EXTRACTION_AND_AFTER}
    assert {job["wildcards"]["dataset"] for job in jobs if job["rule"] == "download_dataset"} == {"harmful"}


# A refusal setting relabels every response file and what reads the labels; it judges nothing again.
RELABELLED = {
    "score_refusals": 1,
    "behaviour_analysis": 1,
    "summarize_interventions": 1,
    "summarize_evaluation": 1,
    "plot_capability": 1,
    "write_report": 1,
    "all": 1,
    **AGREEMENT,
}


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            lambda c: c["refusal"].update(substrings=["No"]),
            RELABELLED,
        ),
        (
            lambda c: c["refusal"].update(primary="refusal_score"),
            RELABELLED,
        ),
        (
            lambda c: c["behaviour"].update(max_new_tokens=c["behaviour"]["max_new_tokens"] + 1),
            {
                "generate_responses": 1,
                "score_refusals": 1,
                "behaviour_analysis": 1,
                "write_report": 1,
                "all": 1,
                **AGREEMENT,
            },
        ),
        (
            lambda c: c["interventions"].update(max_new_tokens=c["interventions"]["max_new_tokens"] + 1),
            {"run_interventions": 1, "summarize_interventions": 1, "write_report": 1, "all": 1, **AGREEMENT},
        ),
    ],
    ids=["refusal", "primary", "behaviour", "interventions"],
)
def test_branch_settings_rerun_their_branch_only(run, change, expected):
    def apply(config):
        config.setdefault("refusal", {})
        change(config)

    assert counts(dry_run_after(run, apply)) == expected


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda c: c["capability"].update(n_tokens=100), {}),  # no generic text: nothing to bound
        (
            lambda c: c["capability"].update(texts={"source": "data/harmless_questions.txt"}),
            {"download_capability_texts": 1, **CAPABILITY, "measure_edited_capability": 1, "write_report": 1, "all": 1},
        ),
        (lambda c: c["capability"].update(enabled=False), {"write_report": 1, "all": 1}),
    ],
    ids=["n_tokens", "texts", "enabled"],
)
def test_capability_settings_rerun_the_capability_jobs_only(run, change, expected):
    assert counts(dry_run_after(run, change)) == expected


@pytest.mark.parametrize(
    "change",
    [lambda c: c["export"].update(dtype="bfloat16"), lambda c: c["export"].update(layer=12)],
    ids=["dtype", "layer"],
)
def test_export_settings_rerun_the_export_and_the_readers_of_the_edited_model(run, change):
    assert counts(dry_run_after(run, change)) == {
        **EXPORT,
        "summarize_evaluation": 1,  # the edited model's rows
        "summarize_capability": 1,
        "plot_capability": 1,
        "write_report": 1,
        "all": 1,
        **AGREEMENT,
    }


def resize_model(config):
    config["models"][0].update(n_params=7_600_000_000, n_layers=28, resources={"runtime": 600})


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c.update(batch_size=1),
        lambda c: c.update(batch_size="auto", max_batch_tokens=64),
        lambda c: c.update(device="cpu", device_map="auto", prefix_cache="off"),
        lambda c: c.update(gpu_mem_mb=40960),
        resize_model,
    ],
    ids=["batch_size", "batch_size_auto", "device", "gpu_mem_mb", "model_size"],
)
def test_execution_settings_rerun_nothing(run, change):
    assert dry_run_after(run, change) == []


def test_the_same_config_written_otherwise_reruns_nothing(run):
    """Sorted keys, datasets in another order, comments and quoting: the same values are the same params."""
    config = shipped_config(run)
    assert dry_run(run, yaml.safe_load(yaml.safe_dump(config, sort_keys=True))) == []
    config["datasets"] = dict(reversed(config["datasets"].items()))
    config["models"] = [dict(reversed(model.items())) for model in config["models"]]
    text = "# the shipped default, re-serialised\n" + yaml.safe_dump(config, sort_keys=False, default_style="'")
    (run / "config.yaml").write_text(text.replace("\nalpha:", "\n# significance level\nalpha:"))
    assert planned_jobs(run_workflow(run, None, "-n")) == []


def test_identical_reextraction_reruns_nothing_downstream(run):
    """A forced re-extraction that writes the same activations leaves every later step alone."""
    run_workflow(run, None, "--forcerun", "extract_activations", "--until", "extract_activations")
    assert dry_run(run) == []


def test_adding_a_model_runs_only_its_branch_and_the_comparison(run):
    def add(config):
        config["models"].append({**config["models"][0], "slug": "second", "system_prompt": "Decline harm."})

    jobs = dry_run_after(run, add)
    assert counts(jobs) == {**EXTRACTION_AND_AFTER}  # the GGUF is converted once for both
    assert {job["wildcards"].get("model") for job in jobs if job["rule"] not in ("compare_models", "all")} == {"second"}


def truncate_keeping_mtime(path):
    stat = path.stat()
    path.unlink()  # the copy shares nothing with the fixture, but be sure: write a new file
    path.write_bytes(b"\0" * (stat.st_size // 2))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_damaged_layer_file_stops_the_run_and_deleting_the_extraction_redoes_it(run):
    layer_file = run / "results" / MODEL / "activations" / "layer_05.h5"
    truncate_keeping_mtime(layer_file)
    # A dry run runs no job and does not hash the layer files: it sees nothing to do (the mtime is kept).
    assert dry_run(run) == []
    result = run_workflow(run, None, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in output, output[-2000:]
    assert f"results/{MODEL}/activations/layer_05.h5" in errors[0]
    assert f"delete results/{MODEL}/activations and run again" in errors[0]
    shutil.rmtree(run / "results" / MODEL / "activations")
    jobs = dry_run(run)
    assert counts(jobs)["extract_activations"] == 1
    assert reasons(jobs, "extract_activations") == {"Missing output files"}


def test_a_deleted_per_layer_output_is_rebuilt(run):
    (run / "results" / MODEL / "layers" / "layer_12.json").unlink()
    jobs = dry_run(run)
    assert [job["wildcards"]["layer"] for job in jobs if job["rule"] == "layer_stats"] == ["12"]
    assert counts(jobs) == {"layer_stats": 1, **TABLES}
    run_workflow(run, None)
    assert (run / "results" / MODEL / "layers" / "layer_12.json").is_file()
    assert dry_run(run) == []


def test_package_edit_reruns_the_rules_that_import_it(tmp_path, tiny_model):
    """Editing a module of the logic package reruns the rules whose code uses it, and only those."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for part in ("Snakefile", "rules", "scripts", "config", "envs", "profiles", "report"):
        copy = shutil.copytree if (REPO / part).is_dir() else shutil.copy
        copy(REPO / part, repo / part)
    workdir = tmp_path / "work"
    workdir.mkdir()
    config = tiny_config(workdir, tiny_model)
    run_workflow(workdir, config, snakefile=repo / "Snakefile")
    with (repo / "scripts" / "refusal_directions" / "stats" / "resampling.py").open("a") as handle:
        handle.write("\n# an edit\n")
    jobs = planned_jobs(run_workflow(workdir, config, "-n", snakefile=repo / "Snakefile"))
    assert counts(jobs) == {"layer_stats": 3, **TABLES}
    with (repo / "scripts" / "plot_directions.py").open("a") as handle:
        handle.write("\n# an edit\n")
    jobs = planned_jobs(run_workflow(workdir, config, "-n", snakefile=repo / "Snakefile"))
    assert "plot_directions" in counts(jobs)


def test_the_rerun_table_names_every_config_key():
    """Every key of config/schema.yaml has a row in config/README.md's rerun table."""
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    table = (REPO / "config" / "README.md").read_text().split("## Which change reruns what")[1].split("\n## ")[0]
    for key in schema["properties"]:
        assert f"`{key}" in table, key
