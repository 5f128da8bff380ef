"""Config validation, helpers and input functions shared by all rules (no rules here)."""

import json
import os
import re
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

from refusal_directions.config_check import (  # noqa: E402
    ConfigError,
    looks_like_a_path,
    sampled_prompts,
    validate_config,
)
from refusal_directions.execution import ExecutionSettings  # noqa: E402
from refusal_directions.hub import hub_id  # noqa: E402
from refusal_directions.integrity import damaged_files, read_manifest  # noqa: E402
from refusal_directions.model_size import ModelSize, read_model_size  # noqa: E402
from refusal_directions.resources import (  # noqa: E402
    conversion_mem_mb,
    job_resources,
    rule_workloads,
)
from refusal_directions.workflow_helpers import (  # noqa: E402
    canonical,
    code_version,
    package_dir,
    stable_hash,
)


def stop(message):
    """End the run before any job, with one line (a WorkflowError would add a traceback-like location)."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


try:
    validate_config(config, Path(workflow.basedir) / "config" / "schema.yaml")
except ConfigError as error:
    stop(f"invalid config: {error}")

# Every config value that reaches a rule's params goes through canonical(): the same values are the same
# params whatever the key order in the YAML.
MODELS = {model["slug"]: canonical(model) for model in config["models"]}
DATASETS = canonical(config["datasets"])
MAIN_DATASETS = ["harmful", "harmless"]
# Every model sees the same sampled prompts of every configured dataset (sorted: YAML order is not data).
USED_DATASETS = sorted(DATASETS)
CONTROL = canonical(config["control"])
SPLITS = canonical(config["splits"])


def conversion_key(spec):
    """Folder of a GGUF model's converted copy, shared by every model entry that reads the same file
    (variants that differ only in dtype or prompt format convert it once)."""
    origin = spec["package"] or Path(spec["id"]).name
    return f"{origin}--{Path(spec['gguf_file']).stem}"


CONVERSIONS = {conversion_key(m): m for m in MODELS.values() if m["gguf_file"]}


wildcard_constraints:
    model="|".join(map(re.escape, MODELS)),
    dataset="|".join(map(re.escape, DATASETS)),
    layer=r"\d+",
    conversion="|".join(map(re.escape, CONVERSIONS)) or "no-gguf-model",


def model_location(spec):
    """The folder holding a model's files, or None for a Hub id."""
    if spec["package"]:
        return str(package_dir(spec["package"]))
    return spec["id"] if looks_like_a_path(spec["id"]) else None


# The sizes the main process read, handed to the jobs' own processes through the environment (sbatch
# exports it): a job on a cluster node, perhaps without internet or the same Hub cache, must derive the same
# resources (its device_map follows its GPU count).
SIZES_VARIABLE = "REFUSAL_DIRECTIONS_MODEL_SIZES"


def read_model_sizes():
    """Every model's parameter count (and depth), read before any job: the resources of its jobs follow."""
    if not workflow.is_main_process and SIZES_VARIABLE in os.environ:
        sizes = json.loads(os.environ[SIZES_VARIABLE])
        return {slug: ModelSize(**sizes[slug]) for slug in MODELS}
    sizes = {}
    for slug, spec in MODELS.items():
        size = read_model_size(spec, model_location(spec))
        if size is None:
            stop(
                f"model '{slug}' ({spec['id']}): its size cannot be read (no local files, not in the Hugging "
                f"Face cache, the Hub not reachable); give its parameter count as n_params (and its layers as "
                f"n_layers) in its config entry"
            )
        sizes[slug] = size
    os.environ[SIZES_VARIABLE] = json.dumps({slug: asdict(size) for slug, size in sizes.items()})
    return sizes


MODEL_SIZES = read_model_sizes()
MODEL_WORK = {slug: rule_workloads(config, MODEL_SIZES[slug].n_layers) for slug in MODELS}
EXECUTION = ExecutionSettings.from_config(config).resources()


def derived_resources(model, rule):
    """gpu, mem_mb, runtime and threads of one model job, from the model's size and the job's work; the
    model's ``resources:`` entry wins."""
    spec = MODELS[model]
    work = MODEL_WORK[model][rule]
    return job_resources(
        MODEL_SIZES[model].n_params, spec["dtype"], work, config["gpu_mem_mb"], spec["resources"]
    )


def model_job_resources(rule):
    """The resources of a job that runs the model: derived per model (profiles/slurm adds the site's
    partitions), and the execution settings, which are resources, never params, so changing them reruns
    nothing (config/README.md). A model that needs several GPUs is spread over them (device_map: auto).
    """

    def derived(key):
        def value(wildcards):
            return derived_resources(wildcards.model, rule)[key]

        return value

    def device_map(wildcards):
        spread = derived_resources(wildcards.model, rule)["gpu"] > 1
        return "auto" if spread else EXECUTION["device_map"]

    resources = {key: derived(key) for key in ("gpu", "mem_mb", "runtime")}
    return {**resources, **EXECUTION, "device_map": device_map}


def conversion_memory(wildcards):
    """convert_model's memory, from the size of the model it dequantises."""
    return conversion_mem_mb(MODEL_SIZES[CONVERSIONS[wildcards.conversion]["slug"]].n_params)


def model_job_threads(rule):
    def threads(wildcards):
        return derived_resources(wildcards.model, rule)["threads"]

    return threads


def activation_folder(model):
    return f"results/{model}/activations"


def check_finished_extractions():
    """Snakemake notices a changed file by its mtime only: a layer file truncated or edited with its mtime
    kept would feed broken numbers into every later step. Stop before any job if a finished extraction's
    files no longer match the sha256 sums in its manifest."""
    if not workflow.is_main_process:  # a job on a cluster node: the main process checked
        return
    for model in MODELS:
        folder = activation_folder(model)
        damaged = damaged_files(folder)
        if damaged:
            more = f" (and {len(damaged) - 1} more)" if len(damaged) > 1 else ""
            stop(
                f"{folder}/{damaged[0]}{more} is missing or differs from the sha256 in {folder}/manifest.json "
                f"(truncated or changed after extraction); delete {folder} and run again to re-extract "
                f"model '{model}'"
            )


check_finished_extractions()


def dataset_spec(wildcards):
    return DATASETS[wildcards.dataset]


def dataset_samples(wildcards):
    return sampled_prompts(config, wildcards.dataset)


def dataset_source(wildcards):
    """The local file behind a dataset (so editing it reruns), nothing for a Hub dataset."""
    source = DATASETS[wildcards.dataset]["source"]
    return [] if hub_id(source) else [source]


# Keys of a model entry that do not change what a job computes: a display name, and what sizes its jobs.
NOT_RESULTS = ("name", "n_params", "n_layers", "resources")


def model_spec(wildcards):
    """A model's entry as the jobs that use it see it: what they compute from, nothing that only titles or
    sizes them."""
    return {key: value for key, value in MODELS[wildcards.model].items() if key not in NOT_RESULTS}


def model_id(wildcards):
    return MODELS[wildcards.model]["id"]


def conversion_spec(wildcards):
    """What the conversion depends on: where the GGUF comes from, not how the model is used."""
    spec = CONVERSIONS[wildcards.conversion]
    return {
        key: spec[key] for key in ("gguf_file", "id", "package", "revision", "trust_remote_code")
    }


def gguf_source(wildcards):
    """The GGUF file of a model, inside its package folder or its local folder (both checked with the
    config)."""
    spec = CONVERSIONS[wildcards.conversion]
    folder = package_dir(spec["package"]) if spec["package"] else Path(spec["id"])
    return str(folder / spec["gguf_file"])


def converted_model(wildcards):
    """The converted folder of a GGUF model (every job that loads the model reads it), else nothing."""
    spec = MODELS[wildcards.model]
    return {"converted": f"results/converted/{conversion_key(spec)}"} if spec["gguf_file"] else {}


def extraction_inputs(wildcards):
    return {
        "prompts": expand("results/prompts/{dataset}.jsonl", dataset=USED_DATASETS),
        **converted_model(wildcards),
    }


def formatted_prompts(wildcards):
    """The main contrast's prompts as the model saw them (written by the extraction checkpoint)."""
    return [f"results/{wildcards.model}/prompts/{name}.jsonl" for name in MAIN_DATASETS]


def generation_inputs(wildcards):
    """What generate_responses reads: the prompts, their splits and the model; nothing computed from
    activations."""
    return {
        "prompts": formatted_prompts(wildcards),
        "splits": "results/splits.json",
        **converted_model(wildcards),
    }


def intervention_inputs(wildcards):
    """What run_interventions reads: the prompts and their splits, the model, the directions (written by a
    step whose params say only what a direction is) and the manifest (the refusal tokens)."""
    return {
        **generation_inputs(wildcards),
        "directions": f"results/{wildcards.model}/directions.safetensors",
        "manifest": activation_manifest(wildcards),
    }


def finished_activations(wildcards):
    """The extraction's folder, once the checkpoint has run (the layer count is read from the model then)."""
    return checkpoints.extract_activations.get(model=wildcards.model).output.activations


def selection_inputs(wildcards):
    """What the selection's model jobs read: the prompts and their splits, the model, and the manifest
    (the refusal tokens)."""
    return {**generation_inputs(wildcards), "manifest": activation_manifest(wildcards)}


def chosen_direction(wildcards):
    """The selected direction, read through its checkpoint: when select_direction runs again and writes the
    same direction (a changed threshold that keeps the choice), Snakemake compares its checksum and skips
    the evaluation, a model job."""
    return checkpoints.select_direction.get(model=wildcards.model).output.direction


def selection_config(*keys):
    """The named selection settings, alone: each step's params hold only what it depends on."""
    return {key: canonical(config["selection"][key]) for key in keys}


def activation_manifest(wildcards):
    return str(Path(finished_activations(wildcards), "manifest.json"))


def activation_files(wildcards):
    folder = finished_activations(wildcards)
    return [str(Path(folder, name)) for name in read_manifest(folder)["layer_files"]]


def layer_activations(wildcards):
    """One layer's activation file and the manifest that holds its sha256."""
    folder = finished_activations(wildcards)
    return {
        "activations": str(Path(folder, f"layer_{wildcards.layer}.h5")),
        "manifest": str(Path(folder, "manifest.json")),
    }


def layer_labels(model):
    """Layer labels ('00', '01', ...) of a model, from its finished extraction's manifest."""
    folder = checkpoints.extract_activations.get(model=model).output.activations
    return [
        name.removeprefix("layer_").removesuffix(".h5")
        for name in read_manifest(folder)["layer_files"]
    ]


def layer_statistics_files(wildcards):
    labels = layer_labels(wildcards.model)
    return expand(f"results/{wildcards.model}/layers/layer_{{layer}}.json", layer=labels)


PER_LAYER_OUTPUTS = ("layer_{layer}.json", "layer_{layer}_null.safetensors")


def per_layer_targets(wildcards):
    """The per-layer outputs of every model whose extraction has finished, as targets of `all`, so one
    that goes missing is rebuilt (Snakemake rebuilds a missing intermediate file only when a job that
    needs it runs anyway). Before any extraction has finished there are none to list, and asking the
    checkpoint would hide every later job from a dry run."""
    return [
        f"results/{model}/layers/{pattern.format(layer=label)}"
        for model in MODELS
        if Path(activation_folder(model), "manifest.json").exists()
        for label in layer_labels(model)
        for pattern in PER_LAYER_OUTPUTS
    ]


STATISTICS_KEYS = ("n_folds", "n_permutations", "n_bootstrap", "ci_level")


def statistics_config():
    """The settings the per-layer numbers depend on, named as StatsSettings names them (no thresholds)."""
    return {**{key: config[key] for key in STATISTICS_KEYS}, "seed": config["stats_seed"]}


def thresholds_config():
    """The thresholds that turn per-layer numbers into verdicts: used by the table-level step only."""
    return {"alpha": config["alpha"], "d_min": config["d_min"]}


def interval_config():
    """What an interval of the behaviour statistics depends on."""
    return {key: statistics_config()[key] for key in ("ci_level", "n_bootstrap", "seed")}


def results_config_hash(wildcards):
    """Hash of every config value that shapes a model's result tables (not plotting, not execution)."""
    return stable_hash(
        {
            "model": model_spec(wildcards),
            "datasets": {name: DATASETS[name] for name in USED_DATASETS},
            "n_samples": config["n_samples"],
            "seed": config["seed"],
            "control": CONTROL,
            "statistics": statistics_config(),
            "thresholds": thresholds_config(),
            "splits": SPLITS,
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
    if config["selection"]["enabled"]:
        inputs["selected"] = f"{folder}/selection/selected_direction.json"
        inputs["selection_figure"] = f"{folder}/selection/selection.png"
        inputs["evaluation"] = f"{folder}/selection/evaluation.csv"
        inputs["evaluation_labels"] = f"{folder}/selection/evaluation_labels.csv"
    return inputs


def selected_directions():
    """Every model's selected direction, for the comparison, when the selection runs."""
    enabled = config["selection"]["enabled"]
    return (
        expand("results/{model}/selection/selected_direction.json", model=MODELS) if enabled else []
    )


def model_title(wildcards):
    """A model's name in titles: its display name, else its id."""
    return MODELS[wildcards.model]["name"] or MODELS[wildcards.model]["id"]


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
            "interventions/kl.csv",
            "interventions/labels.csv",
            "interventions/sweep.csv",
            "interventions/sweep.png",
        ]
    names.append("selection/candidates.safetensors")
    if config["selection"]["enabled"]:
        names += [
            "selection/candidate_scores.csv",
            "selection/scores.csv",
            "selection/selected_direction.json",
            "selection/selected_direction.safetensors",
            "selection/selection.png",
            "selection/evaluation_generations.jsonl",
            "selection/evaluation_kl.csv",
            "selection/evaluation_labels.csv",
            "selection/evaluation.csv",
        ]
    return [f"results/{model}/{name}" for name in names]


def final_outputs():
    """Every file the workflow writes whose name is known before the extraction runs: a target that goes
    missing is rebuilt, an intermediate file that is not a target would not be once the files after it
    exist. (Per-layer files are named once the extraction has run: per_layer_targets.)"""
    shared = expand(
        "results/{kind}/{dataset}.jsonl", kind=("datasets", "prompts"), dataset=USED_DATASETS
    ) + ["results/splits.json"]
    converted = expand("results/converted/{conversion}", conversion=CONVERSIONS)
    formatted = expand(
        "results/{model}/prompts/{dataset}.jsonl", model=MODELS, dataset=USED_DATASETS
    )
    activations = [activation_folder(model) for model in MODELS]
    comparison = ["results/comparison/models.csv", "results/comparison/cohens_d_by_depth.png"]
    per_model = [path for model in MODELS for path in model_outputs(model)]
    return shared + converted + formatted + activations + per_model + comparison
