"""Config validation, helpers and input functions shared by all rules (no rules here)."""

import json
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

from refusal_directions.config_check import ConfigError, validate_config  # noqa: E402
from refusal_directions.workflow_helpers import (  # noqa: E402
    code_version,
    hub_id,
    package_dir,
    retry_batch_size,
    stable_hash,
)

try:
    validate_config(config, Path(workflow.basedir) / "config" / "schema.yaml")
except ConfigError as error:
    raise WorkflowError(f"invalid config: {error}") from None

MODELS = {model["slug"]: model for model in config["models"]}


def conversion_key(spec):
    """Folder of a GGUF model's converted copy, shared by every model entry that reads the same file
    (variants that differ only in dtype or prompt format convert it once)."""
    origin = spec["package"] or Path(spec["id"]).name
    return f"{origin}--{Path(spec['gguf_file']).stem}"


CONVERSIONS = {conversion_key(m): m for m in MODELS.values() if m["gguf_file"]}
MAIN_DATASETS = ["harmful", "harmless"]
DATASETS = config["datasets"]
# Every model sees the same sampled prompts of every configured dataset.
USED_DATASETS = list(DATASETS)


wildcard_constraints:
    model="|".join(map(re.escape, MODELS)),
    dataset="|".join(map(re.escape, DATASETS)),
    layer=r"\d+",
    conversion="|".join(map(re.escape, CONVERSIONS)) or "no-gguf-model",


def dataset_spec(wildcards):
    return DATASETS[wildcards.dataset]


def dataset_source(wildcards):
    """The local file behind a dataset (so editing it reruns), nothing for a Hub dataset."""
    source = DATASETS[wildcards.dataset]["source"]
    return [] if hub_id(source) else [source]


def model_spec(wildcards):
    return MODELS[wildcards.model]


def conversion_spec(wildcards):
    """What the conversion depends on: where the GGUF comes from, not how the model is used."""
    spec = CONVERSIONS[wildcards.conversion]
    return {
        key: spec[key] for key in ("id", "package", "gguf_file", "revision", "trust_remote_code")
    }


def gguf_source(wildcards):
    """The GGUF file of a model, inside its package folder or its local folder."""
    spec = CONVERSIONS[wildcards.conversion]
    try:
        folder = package_dir(spec["package"]) if spec["package"] else Path(spec["id"])
    except FileNotFoundError as error:
        raise WorkflowError(f"model '{spec['slug']}': {error}") from None
    return str(folder / spec["gguf_file"])


def extraction_inputs(wildcards):
    inputs = {"prompts": expand("results/prompts/{dataset}.jsonl", dataset=USED_DATASETS)}
    spec = MODELS[wildcards.model]
    if spec["gguf_file"]:
        inputs["converted"] = f"results/converted/{conversion_key(spec)}"
    return inputs


def formatted_prompts(wildcards):
    """The main contrast's prompts as the model saw them (written by the extraction checkpoint)."""
    return {name: f"results/{wildcards.model}/prompts/{name}.jsonl" for name in MAIN_DATASETS}


def model_job_inputs(wildcards):
    """Inputs of a job that runs the model after extraction: its prompts, the directions and, for a
    GGUF model, the converted weights."""
    inputs = {
        "prompts": list(formatted_prompts(wildcards).values()),
        "directions": f"results/{wildcards.model}/directions.safetensors",
    }
    spec = MODELS[wildcards.model]
    if spec["gguf_file"]:
        inputs["converted"] = f"results/converted/{conversion_key(spec)}"
    return inputs


def extraction_batch_size(wildcards, attempt):
    return retry_batch_size(config["batch_size"], attempt)


def extraction_mem_mb(wildcards, attempt):
    return 16000 * attempt


def layer_labels(wildcards):
    """Layer labels ('00', '01', ...) known once the model's activations exist (checkpoint)."""
    folder = checkpoints.extract_activations.get(model=wildcards.model).output.activations
    manifest = json.loads(Path(folder, "manifest.json").read_text())
    return [name.removeprefix("layer_").removesuffix(".h5") for name in manifest["layer_files"]]


def layer_results(kind):
    def inputs(wildcards):
        return expand(
            "results/{model}/layers/layer_{layer}.{kind}",
            model=wildcards.model,
            layer=layer_labels(wildcards),
            kind=kind,
        )

    return inputs


def activation_manifest(wildcards):
    folder = checkpoints.extract_activations.get(model=wildcards.model).output.activations
    return str(Path(folder, "manifest.json"))


STATISTICS_KEYS = ("alpha", "d_min", "n_folds", "n_permutations", "n_bootstrap", "ci_level")


def statistics_config():
    """The statistics settings of config/schema.yaml, named as StatsSettings names them."""
    return {**{key: config[key] for key in STATISTICS_KEYS}, "seed": config["stats_seed"]}


def results_config_hash(wildcards):
    """Hash of every config value that shapes a model's result tables (not plotting, not execution)."""
    used = {name: DATASETS[name] for name in USED_DATASETS}
    return stable_hash(
        {
            "model": MODELS[wildcards.model],
            "datasets": used,
            "n_samples": config["n_samples"],
            "seed": config["seed"],
            "control": config["control"],
            "statistics": statistics_config(),
        }
    )


def report_inputs(wildcards):
    """The per-model report reads the behaviour and intervention tables when those branches run."""
    folder = f"results/{wildcards.model}"
    inputs = {
        "summary": f"{folder}/summary.json",
        "validation": f"{folder}/validation_results.csv",
        "top10": f"{folder}/top10_layers.csv",
        "figure": f"{folder}/direction_analysis.png",
    }
    if config["behaviour"]["enabled"]:
        inputs["auroc"] = f"{folder}/behaviour/auroc_by_layer.csv"
        inputs["refusals"] = f"{folder}/behaviour/refusals.csv"
        inputs["levels"] = f"{folder}/behaviour/projection_by_level.csv"
    if config["interventions"]["enabled"]:
        inputs["sweep"] = f"{folder}/interventions/sweep.csv"
    return inputs


def model_title(wildcards):
    return MODELS[wildcards.model]["id"]


def model_outputs(model):
    names = [
        "report.md",
        "direction_analysis.png",
        "validation_results.csv",
        "top10_layers.csv",
        "summary.json",
        "directions.safetensors",
        "validated_directions.pkl",
    ]
    if config["behaviour"]["enabled"]:
        names += [
            "behaviour/responses.jsonl",
            "behaviour/refusals.csv",
            "behaviour/auroc_by_layer.csv",
            "behaviour/auroc_by_layer.png",
            "behaviour/projection_by_level.csv",
        ]
    if config["interventions"]["enabled"]:
        names += [
            "interventions/generations.jsonl",
            "interventions/labels.csv",
            "interventions/sweep.csv",
            "interventions/sweep.png",
        ]
    return [f"results/{model}/{name}" for name in names]


def final_outputs():
    comparison = ["results/comparison/models.csv", "results/comparison/cohens_d_by_depth.png"]
    return [path for model in MODELS for path in model_outputs(model)] + comparison
