"""Validate the workflow config against config/schema.yaml with one-line errors that name the key."""

from __future__ import annotations

import codecs
import difflib
from pathlib import Path

import jsonschema
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from ..data.splits import check_splits
from ..stats.direction_methods import MEAN_DIFF, check_methods
from ..workflow.definition import package_dir
from ..workflow.errors import UserError
from ..workflow.hub import HUB_SCHEME


class ConfigError(ValueError):
    """The config is invalid; the message names the offending key."""


def _key_path(parts) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "<top level>"


def _whole_numbers_as_int(value):
    """``value`` with every float that has no fractional part (YAML reads ``24.0`` and ``2.4e1`` as floats)
    turned into an int: JSON Schema already accepts 24.0 as an integer, and later steps must not meet a
    float where they count or seed. It also makes 1 and 1.0 the same params."""
    if isinstance(value, dict):
        return {key: _whole_numbers_as_int(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_numbers_as_int(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Keys that were renamed: what a config that still uses the old name should say now.
RENAMED_KEYS = {"refusal.judge": "refusal.classifier, with classifier in refusal.judges"}


def _describe(error: jsonschema.ValidationError) -> str:
    where = _key_path(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        hints = []
        for key in extra:
            close = difflib.get_close_matches(key, allowed, n=1)
            renamed = RENAMED_KEYS.get(f"{where}.{key}")
            hint = f" (now {renamed})" if renamed else (f" (did you mean '{close[0]}'?)" if close else "")
            hints.append(f"'{key}'{hint}")
        inside = "" if where == "<top level>" else f" in '{where}'"
        return f"unknown config key {', '.join(hints)}{inside}; allowed: {', '.join(allowed)}"
    if error.validator == "required":
        return f"config key '{where}' is missing {error.message.split(' is a required')[0]}"
    if error.validator == "pattern" and where.endswith("slug"):
        return (
            f"config key '{where}': {error.instance!r} is not a valid slug "
            "(letters, digits, '.', '_', '-'; no path separators)"
        )
    if error.validator == "pattern" and where.endswith("package"):
        return f"config key '{where}': {error.instance!r} is not a package name (a dotted Python name, not a path)"
    if error.validator == "pattern" and where.endswith("gguf_file"):
        return f"config key '{where}': {error.instance!r} is not a .gguf file name inside the model folder"
    return f"config key '{where}': {error.message}"


# Folders under results/ that are not per-model branches.
RESERVED_SLUGS = ("comparison", "converted", "datasets", "prompts", "logs", "benchmarks")


def _check_cross_references(config: dict) -> None:
    slugs = [model["slug"] for model in config["models"]]
    reserved = [slug for slug in slugs if slug in RESERVED_SLUGS]
    if reserved:
        raise ConfigError(f"config key 'models': slug {reserved[0]!r} is reserved for results/{reserved[0]}/")
    control = config.get("control")
    if control:
        for role in ("a", "b"):
            if control[role] not in config["datasets"]:
                raise ConfigError(
                    f"config key 'control.{role}': {control[role]!r} is not a dataset "
                    f"(datasets: {', '.join(config['datasets'])})"
                )
        if control["a"] == control["b"]:
            raise ConfigError("config key 'control': a and b must be different datasets")
    duplicates = sorted({slug for slug in slugs if slugs.count(slug) > 1})
    if duplicates:
        raise ConfigError(f"config key 'models': slug {duplicates[0]!r} is used by more than one model")
    for index, model in enumerate(config["models"]):
        _check_model_files(model, f"models[{index}]")
    export = config["export"]
    if export["enabled"] and export["layer"] is None and not config["selection"]["enabled"]:
        raise ConfigError(
            "config key 'export.layer': null exports the selected direction, which needs selection.enabled: "
            "true; enable the selection or give a layer"
        )
    capability = config["capability"]
    if capability["enabled"] and not config["selection"]["enabled"]:
        raise ConfigError(
            "config key 'capability.enabled': the capability cost is measured for the selected direction, which "
            "needs selection.enabled: true; enable the selection or set capability.enabled: false"
        )
    _check_judges(config)
    evaluation_set = config["selection"]["evaluation"]["harmful_dataset"]
    if evaluation_set is not None and evaluation_set not in config["datasets"]:
        raise ConfigError(
            f"config key 'selection.evaluation.harmful_dataset': {evaluation_set!r} is not a dataset "
            f"(datasets: {', '.join(config['datasets'])})"
        )
    if evaluation_set == "harmful":
        raise ConfigError(
            "config key 'selection.evaluation.harmful_dataset': 'harmful' built the direction; name a separate "
            "dataset, or null for the harmful test split"
        )
    _check_splits(config)
    sources = {f"datasets.{name}": dataset for name, dataset in config["datasets"].items()}
    if capability["enabled"] and capability["texts"] is not None:
        sources["capability.texts"] = capability["texts"]
    for key, dataset in sources.items():
        source = dataset["source"]
        if not source.startswith(HUB_SCHEME) and not Path(source).is_file():
            raise ConfigError(f"config key '{key}.source': dataset file {source} does not exist")
        try:
            codecs.lookup(dataset["encoding"])
        except LookupError:
            raise ConfigError(f"config key '{key}.encoding': unknown encoding {dataset['encoding']!r}") from None


def _check_judges(config: dict) -> None:
    refusal = config["refusal"]
    judges, primary = refusal["judges"], refusal["primary"]
    for judge in ("classifier", "llm"):
        if judge in judges and refusal[judge] is None:
            raise ConfigError(f"config key 'refusal.judges': {judge} needs refusal.{judge} (its model)")
    if primary == "text_or_score" and "refusal_score" not in judges:
        raise ConfigError("config key 'refusal.primary': text_or_score needs refusal_score in refusal.judges")
    if primary != "text_or_score" and primary not in judges:
        raise ConfigError(f"config key 'refusal.primary': {primary} is not in refusal.judges ({', '.join(judges)})")
    if "llm" in judges:
        _check_model_files(refusal["llm"]["model"], "refusal.llm.model")


def sampled_prompts(config: dict, dataset: str) -> int:
    """How many prompts a dataset is sampled to: its own n_samples, else the top-level one."""
    return config["datasets"][dataset]["n_samples"] or config["n_samples"]


def _check_splits(config: dict) -> None:
    needs = {}
    if config["selection"]["enabled"]:
        needs.update(validation="selection", test="the evaluation of the selected direction")
    if config["behaviour"]["enabled"] or config["interventions"]["enabled"]:
        needs["test"] = "the behaviour and intervention experiments"
    if config["export"]["enabled"]:
        needs.setdefault("test", "the check of the edited model")
    for name in ("harmful", "harmless"):
        try:
            check_splits(sampled_prompts(config, name), config["splits"], needs)
        except UserError as error:
            raise ConfigError(f"config key 'splits': {name}: {error}".replace("splits: ", "", 1)) from None


def _check_model_files(model: dict, where: str) -> None:
    """A model's package or local folder and its GGUF file exist (a Hub model is checked when it loads)."""
    if model.get("package"):
        try:
            folder = package_dir(model["package"])
        except FileNotFoundError as error:
            raise ConfigError(f"config key '{where}.package': {error}") from None
    elif looks_like_a_path(model["id"]):
        folder = Path(model["id"])
        if not folder.is_dir():
            problem = "is not a folder" if folder.exists() else "does not exist"
            raise ConfigError(f"config key '{where}.id': local model folder {folder} {problem}")
    else:
        return
    if model.get("gguf_file") and not (folder / model["gguf_file"]).is_file():
        raise ConfigError(f"config key '{where}.gguf_file': {model['gguf_file']} is not in {folder}")


def looks_like_a_path(model_id: str) -> bool:
    """A model id that can only be a local folder: absolute or explicitly relative, or with more parts than
    a Hub id ('namespace/name'). A relative 'a/b' that does not exist is taken for a Hub id."""
    return model_id.startswith(("/", "./", "../", "~")) or model_id.count("/") > 1 or Path(model_id).exists()


def _fill_and_validate(config: dict, schema_path: str | Path) -> None:
    """snakemake's validate: fills the schema's defaults into ``config`` and raises a WorkflowError on the
    first error it meets."""
    try:
        validate(config, str(schema_path), set_default=True)
    except AttributeError:
        # snakemake fills defaults before it checks the type, and fails on a value that is not a mapping
        # tried against a oneOf branch with defaults: checked without defaults, that value gets its error
        validate(config, str(schema_path), set_default=False)
        raise  # valid, yet its defaults could not be filled in


def validate_config(config: dict, schema_path: str | Path) -> dict:
    """Fill defaults into ``config`` in place and raise ConfigError naming the first bad key."""
    config.update(_whole_numbers_as_int(config))
    try:
        _fill_and_validate(config, schema_path)
    except WorkflowError as error:
        invalid = error.__context__  # snakemake wraps jsonschema's error
        if not isinstance(invalid, jsonschema.ValidationError):
            raise
        raise ConfigError(_describe(invalid)) from None
    _check_cross_references(config)
    _check_directions(config)
    return config


def _check_directions(config: dict) -> None:
    """The direction methods: known names and sound settings (stats/direction_methods.check_methods), and the
    selection they all go through."""
    directions = config["directions"]
    try:
        check_methods(directions)
    except UserError as error:
        raise ConfigError(str(error)) from None
    others = [name for name in directions["methods"] if name != MEAN_DIFF]
    if others and not config["selection"]["enabled"]:
        raise ConfigError(f"config key 'directions.methods': {others[0]} needs selection.enabled (every method's "
                          "direction goes through the selection and its evaluation)")  # fmt: skip
