"""Validate the workflow config against config/schema.yaml with one-line errors that name the key."""

from __future__ import annotations

import copy
import difflib
from pathlib import Path

import jsonschema
import yaml


class ConfigError(ValueError):
    """The config is invalid; the message names the offending key."""


def _key_path(parts) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "<top level>"


def _fill_defaults(validator_class):
    """A validator that writes each property's schema default into the instance before checking it."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _describe(error: jsonschema.ValidationError) -> str:
    where = _key_path(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        hints = []
        for key in extra:
            close = difflib.get_close_matches(key, allowed, n=1)
            hints.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        inside = "" if where == "<top level>" else f" in '{where}'"
        return f"unknown config key {', '.join(hints)}{inside}; allowed: {', '.join(allowed)}"
    if error.validator == "required":
        return f"config key '{where}' is missing {error.message.split(' is a required')[0]}"
    if error.validator == "pattern" and error.validator_value and "slug" in where:
        return (
            f"config key '{where}': {error.instance!r} is not a valid slug "
            "(letters, digits, '.', '_', '-'; no path separators)"
        )
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


def validate_config(config: dict, schema_path: str | Path) -> dict:
    """Fill defaults into ``config`` in place and raise ConfigError naming the first bad key."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = _fill_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), list(map(str, e.path))))
    if errors:
        raise ConfigError(_describe(errors[0]))
    _check_cross_references(config)
    return config
