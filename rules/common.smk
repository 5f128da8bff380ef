"""Shared by the rule files (no rules here). The config, loaded and checked; the model table, with the
sizes and resources of the model jobs; the helpers that several rule files use (one file's own live in
it)."""

import json
import os
import re
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

from refusal_directions.config.check import (
    ConfigError,
    looks_like_a_path,
    sampled_prompts,
    validate_config,
)
from refusal_directions.config.notes import split_note
from refusal_directions.config.resources import job_resources, rule_workloads
from refusal_directions.data.prompt_sets import MAIN_SETS
from refusal_directions.model.size import ModelSize, read_model_size
from refusal_directions.stats.direction_methods import LINEAR, MEAN_DIFF, METHODS, SAME_CANDIDATES
from refusal_directions.stats.holm_floor import holm_floor_warning
from refusal_directions.workflow.definition import canonical, code_version, package_dir
from refusal_directions.workflow.execution import ExecutionSettings
from refusal_directions.workflow.integrity import damaged_files, is_unfinished, read_manifest
from refusal_directions.workflow.resume_place import remove_resume_folders
from refusal_directions.workflow.stale_lock import stale_lock_note


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
# Every model sees the same sampled prompts of every configured dataset (sorted: YAML order is not data).
USED_DATASETS = sorted(DATASETS)
CONTROL = canonical(config["control"])
SPLITS = canonical(config["splits"])
REFUSAL = canonical(config["refusal"])
# The llm judge's settings when it runs (rules/judges.smk), and its key in the model size table.
LLM_JUDGE = REFUSAL["llm"] if "llm" in REFUSAL["judges"] else None
JUDGE_KEY = "llm judge"
JUDGE_RULES = ("judge_responses",)
# The settings the per-layer numbers depend on, named as StatsSettings names them (no thresholds), and
# those an interval of the behaviour, intervention and evaluation statistics depends on.
STATISTICS = {
    **{key: config[key] for key in ("n_folds", "n_permutations", "n_bootstrap", "ci_level")},
    "seed": config["stats_seed"],
}
INTERVALS = {key: STATISTICS[key] for key in ("ci_level", "n_bootstrap", "seed")}


def conversion_key(spec):
    """Folder of a GGUF model's converted copy, shared by every model entry that reads the same file
    (variants that differ only in dtype or prompt format convert it once)."""
    origin = spec["package"] or Path(spec["id"]).name
    return f"{origin}--{Path(spec['gguf_file']).stem}"


# Every model that runs in a job, by its key in the size table: the models studied and the judge model.
SIZED_MODELS = {**MODELS, **({JUDGE_KEY: LLM_JUDGE["model"]} if LLM_JUDGE else {})}
CONVERSIONS = {conversion_key(m): m for m in SIZED_MODELS.values() if m["gguf_file"]}


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
        return {slug: ModelSize(**sizes[slug]) for slug in SIZED_MODELS}
    sizes = {}
    for slug, spec in SIZED_MODELS.items():
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


def note(message):
    """A line on the terminal before any job, from the main snakemake process only (each cluster job parses
    this file again)."""
    if message and workflow.is_main_process:
        print(f"note: {message}", file=sys.stderr)


for n_prompts in sorted({sampled_prompts(config, name) for name in DATASETS}):
    note(split_note(n_prompts, config["splits"]))
for slug in MODELS:
    floor_warning = MODEL_SIZES[slug].n_layers and holm_floor_warning(
        MODEL_SIZES[slug].n_layers, config["n_permutations"], config["alpha"]
    )
    note(floor_warning and f"{slug}: {floor_warning}")
EXECUTION = ExecutionSettings.from_config(config).resources()


def derived_resources(model, rule):
    """gpu, mem_mb, runtime and threads of one model job, from the size of the model it loads (a judge job:
    the judge model's) and the job's work; that model's ``resources:`` entry wins."""
    loaded = JUDGE_KEY if rule in JUDGE_RULES else model
    spec = SIZED_MODELS[loaded]
    work = MODEL_WORK[model][rule]
    return job_resources(
        MODEL_SIZES[loaded].n_params, spec["dtype"], work, config["gpu_mem_mb"], spec["resources"]
    )


def model_job_resources(rule):
    """The resources of a job that runs the model: derived per model (profiles/slurm adds the site's
    partitions), and the execution settings, which are resources, never params, so changing them reruns
    nothing (config/README.md; workflow.runlog.job_arguments hands them to the job). A model that needs several GPUs
    is spread over them (device_map: auto)."""

    def derived(key):
        def value(wildcards):
            return derived_resources(wildcards.model, rule)[key]

        return value

    def device_map(wildcards):
        spread = derived_resources(wildcards.model, rule)["gpu"] > 1
        return "auto" if spread else EXECUTION["device_map"]

    resources = {key: derived(key) for key in ("gpu", "mem_mb", "runtime")}
    return {**resources, **EXECUTION, "device_map": device_map}


def model_job_threads(rule):
    def threads(wildcards):
        return derived_resources(wildcards.model, rule)["threads"]

    return threads


# Each model's entry as the jobs that use it see it: what they compute from, nothing that only titles or
# sizes them (a display name, what sizes its jobs); and its name in titles: its display name, else its id.
NOT_RESULTS = ("name", "n_params", "n_layers", "resources")
MODEL_SPECS = {
    slug: {key: value for key, value in spec.items() if key not in NOT_RESULTS}
    for slug, spec in MODELS.items()
}
MODEL_TITLES = {slug: spec["name"] or spec["id"] for slug, spec in MODELS.items()}
model_spec = lookup(dpath="{model}", within=MODEL_SPECS)
model_id = lookup(dpath="{model}/id", within=MODELS)
model_title = lookup(dpath="{model}", within=MODEL_TITLES)


# The extraction checkpoint's folder (also read before any job) and a layer file in it.
ACTIVATIONS = "results/{model}/activations"
LAYER_FILE = "layer_{layer}.h5"


def check_finished_extractions():
    """Snakemake notices a changed file by its mtime only: a layer file truncated or edited with its mtime
    kept would feed broken numbers into every later step. Stop before any job if a finished extraction's
    files no longer match the sha256 sums in its manifest. Not on a dry run, which runs no job (-n is in
    output_settings from the start; workflow.dryrun is set only after the Snakefile is read)."""
    dry_run = workflow.output_settings is not None and workflow.output_settings.dryrun
    if dry_run or not workflow.is_main_process:  # a job on a cluster node: the main process checked
        return
    for model in MODELS:
        folder = ACTIVATIONS.format(model=model)
        if is_unfinished(folder):
            note(
                f"{folder}: the extraction of model '{model}' did not finish; it reruns from its finished batches"
            )
        damaged = damaged_files(folder)
        if damaged:
            more = f" (and {len(damaged) - 1} more)" if len(damaged) > 1 else ""
            stop(
                f"{folder}/{damaged[0]}{more} is missing or differs from the sha256 in {folder}/manifest.json "
                f"(truncated or changed after extraction); delete {folder} and run again to re-extract "
                f"model '{model}'"
            )


check_finished_extractions()
if workflow.is_main_process:
    note(stale_lock_note(Path.cwd()))


def checkpoint_output(checkpoint, key):
    """An input function: output ``key`` of ``checkpoint`` for the job's model, asked for through the
    checkpoint: the job is planned again once it has run (the extraction's layer count is known then; a
    selection that writes the same direction again, same checksum, reruns nothing after it)."""

    def path(wildcards):
        return getattr(getattr(checkpoints, checkpoint).get(model=wildcards.model).output, key)

    return path


def extraction_file(name):
    """An input function: a file of the model's finished extraction (``name`` may hold the job's wildcards)."""
    folder = checkpoint_output("extract_activations", "activations")

    def path(wildcards):
        return str(Path(folder(wildcards), name))

    return path


activation_manifest = extraction_file("manifest.json")


def layer_labels(model):
    """Layer labels ('00', '01', ...) of a model, from its finished extraction's manifest."""
    folder = checkpoints.extract_activations.get(model=model).output.activations
    if is_unfinished(
        folder
    ):  # Snakemake kept no record that the job was interrupted (.snakemake/ deleted)
        stop(
            f"{folder} holds an extraction that did not finish (no manifest.json); run again with "
            "--rerun-incomplete, or delete the folder"
        )
    return [Path(name).stem.removeprefix("layer_") for name in read_manifest(folder)["layer_files"]]


def each_layer(pattern):
    """An input function: ``pattern`` for every layer of the model's finished extraction."""

    def paths(wildcards):
        return expand(pattern, layer=layer_labels(wildcards.model), allow_missing=True)

    return paths


activation_files = each_layer(str(Path(ACTIVATIONS, LAYER_FILE)))


def converted_folder(spec):
    """The converted folder of a GGUF model (every job that loads it reads it), else nothing."""
    if not spec["gguf_file"]:
        return {}
    return {
        "converted": rules.convert_model.output.converted.format(conversion=conversion_key(spec))
    }


def converted_model(wildcards):
    return converted_folder(MODELS[wildcards.model])


# The llm judge's verdicts on one response file (rules/judges.smk), read by the step that labels it.
JUDGEMENTS = "results/{model}/judgements/{source}/llm.csv"


def judgement_files(*sources):
    """The llm judge's verdicts on the response files of ``sources`` (judging.judges.RESPONSE_SOURCES), when it runs."""
    return [JUDGEMENTS.replace("{source}", source) for source in sources] if LLM_JUDGE else []


def formatted_prompts(wildcards):
    """The main contrast's prompts as the model saw them (written by the extraction checkpoint)."""
    written = dict(zip(USED_DATASETS, rules.extract_activations.output.prompts, strict=True))
    return [written[name] for name in MAIN_SETS]


def generation_inputs(wildcards):
    """What a model job after the extraction reads: the prompts, their splits and the model; nothing
    computed from activations."""
    return {
        "prompts": formatted_prompts(wildcards),
        "splits": rules.split_prompts.output.splits,
        **converted_model(wildcards),
    }


def evaluation_inputs(wildcards):
    """What the selected direction's evaluation (and the edited model's check) reads: a model job's inputs,
    and the prompts of selection.evaluation.harmful_dataset when the harmful ones come from there.
    """
    name = config["selection"]["evaluation"]["harmful_dataset"]
    written = dict(zip(USED_DATASETS, rules.extract_activations.output.prompts, strict=True))
    return {
        **generation_inputs(wildcards),
        **({"evaluation_harmful": written[name]} if name else {}),
    }


# Direction methods (rules/methods.smk, README: "Direction methods").
DIRECTIONS = canonical(config["directions"])
# The methods of this run in the registry's order, and those besides mean_diff, by how they find a direction.
COMPARED = [name for name in METHODS if name in DIRECTIONS["methods"]]
OTHER_METHODS = [name for name in COMPARED if name != MEAN_DIFF]
CLOSED_FORM = [name for name in OTHER_METHODS if not METHODS[name].optimized]
OPTIMIZED = [name for name in OTHER_METHODS if METHODS[name].optimized]
# Closed-form methods with candidates of their own (ace's are the difference in means: only its edit differs).
OWN_CANDIDATES = [name for name in CLOSED_FORM if name not in SAME_CANDIDATES]
EXPORTS, COSTS = config["export"]["enabled"], config["capability"]["enabled"]
# The methods whose edit is exported: the linear ones (an affine edit is hooks only: README "Direction methods").
EXPORTED = [name for name in OTHER_METHODS if METHODS[name].edit == LINEAR] if EXPORTS else []
# The response files of a method that the llm judge reads, and the methods each rule runs for
# (rules/targets.smk names their outputs as targets).
METHOD_SOURCES = ["evaluation", *(["edited"] if EXPORTED else [])]
RULE_METHODS = {
    "compute_method_candidates": OWN_CANDIDATES,
    "score_method_candidates": CLOSED_FORM,
    "select_method_direction": CLOSED_FORM,
    "method_direction": [MEAN_DIFF, *CLOSED_FORM] if OTHER_METHODS else [],
    "optimize_direction": OPTIMIZED,
    "evaluate_method": OTHER_METHODS,
    "judge_method_responses": OTHER_METHODS if LLM_JUDGE else [],
    "summarize_method_evaluation": OTHER_METHODS,
    "orthogonalize_method": EXPORTED,
    "check_method_edit": EXPORTED,
    "measure_method_capability": OTHER_METHODS if COSTS else [],
    "measure_method_edited_capability": EXPORTED if COSTS else [],
    "summarize_method_capability": OTHER_METHODS if COSTS else [],
}
# What a closed-form method's candidates depend on besides the activations: pca's random pairing.
CANDIDATE_SETTINGS = {name: DIRECTIONS.get(name, {}) for name in OWN_CANDIDATES}
METHOD_DIRECTION = "results/{model}/methods/{method}/direction.safetensors"


def names(methods):
    """A wildcard constraint that matches exactly ``methods`` (nothing when there are none)."""
    return "|".join(methods) or "no-method"


def method_candidates(wildcards):
    """A closed-form method's candidates: its own, or (mean_diff, ace) the selection's."""
    if wildcards.method in OWN_CANDIDATES:
        return rules.compute_method_candidates.output.candidates.format(**wildcards)
    return rules.compute_candidates.output.candidates.format(model=wildcards.model)


def method_selected(wildcards):
    """The candidate a closed-form method's selection chose (mean_diff: through the selection's checkpoint)."""
    if wildcards.method == MEAN_DIFF:
        return checkpoint_output("select_direction", "direction")(wildcards)
    return rules.select_method_direction.output.direction.format(**wildcards)


def method_sources(method):
    """The response files of a method: its evaluation's, and its edited model's when it is exported."""
    return ["evaluation", *(["edited"] if method in EXPORTED else [])]


def method_files(*rule_keys):
    """An input function: the outputs ``(rule, key)`` of the job's method, of the rules that run for it
    (RULE_METHODS: the export's run for the exported methods only)."""

    def paths(wildcards):
        return [
            getattr(getattr(rules, rule).output, key).format(**wildcards)
            for rule, key in rule_keys
            if wildcards.method in RULE_METHODS[rule]
        ]

    return paths


def method_judgements(wildcards):
    """The llm judge's verdicts on a method's response files, when it runs."""
    if not LLM_JUDGE:
        return []
    pattern = rules.judge_method_responses.output.judgements
    return [
        pattern.format(source=source, **wildcards) for source in method_sources(wildcards.method)
    ]


def direction_benchmark(method):
    """The benchmark of the job that found a method's direction: candidate scoring, or the optimization."""
    if method == MEAN_DIFF:
        return "results/benchmarks/score_candidates/{model}.tsv"
    finder = "optimize_direction" if METHODS[method].optimized else "score_method_candidates"
    return f"results/benchmarks/{finder}/{{model}}.{{method}}.tsv"


def method_results(wildcards):
    """What the comparison reads of every method: its direction, its evaluation (table and labels), its
    capability (table and losses) and its edited model's check where those run, and the benchmark of the
    job that found its direction."""
    files = {}
    for method in COMPARED:
        at = {"model": wildcards.model, "method": method}
        files[f"direction_{method}"] = METHOD_DIRECTION.format(**at)
        files[f"seconds_{method}"] = direction_benchmark(method).format(**at)
        for result, (main, other, key) in RESULT_RULES.items():
            if method != MEAN_DIFF and method not in RULE_METHODS[other]:
                continue
            writer = getattr(rules, main if method == MEAN_DIFF else other)
            files[f"{result}_{method}"] = getattr(writer.output, key).format(**at)
    return files
