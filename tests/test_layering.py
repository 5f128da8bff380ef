"""The package's stages: every module lives in a subpackage, each subpackage's __init__ says which others it
may import ("May import: a, b."), no module imports outside that list (read with ast, imports inside
functions included), and the allowances form no cycle, so the stages have an order."""

import ast
import re
import textwrap
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE_ROOT = REPO / "scripts" / "refusal_directions"
NONE_ALLOWED = "no other subpackage"


def allowed_imports(package_root: Path) -> dict[str, set[str]]:
    """Each subpackage's "May import:" list, read from its __init__ docstring."""
    allowed = {}
    for init in sorted(package_root.glob("*/__init__.py")):
        docstring = ast.get_docstring(ast.parse(init.read_text())) or ""
        declared = re.search(r"^May import: (.*?)\.$", docstring, re.M | re.S)
        assert declared, f"{init.relative_to(package_root)}: its docstring has no 'May import: ...' line"
        names = " ".join(declared[1].split())
        allowed[init.parent.name] = set() if names == NONE_ALLOWED else {n.strip() for n in names.split(",")}
    return allowed


def imported_subpackages(path: Path, package_root: Path) -> set[str]:
    """The subpackages that the module at ``path`` imports from, relative or absolute."""
    package = path.parent.relative_to(package_root).parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(package[: len(package) - (node.level - 1)]) + (node.module.split(".") if node.module else [])
            found |= {base[0]} if base else {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(f"{package_root.name}."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.ImportFrom) and node.module == package_root.name:
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith(f"{package_root.name}.")}
    return found


def layering_violations(package_root: Path) -> list[str]:
    """Every module outside a subpackage, every import that its subpackage's list does not allow, and a cycle
    among the allowances; empty when the stages are layered."""
    allowed = allowed_imports(package_root)
    problems = [
        f"{path.name}: a module outside every subpackage"
        for path in package_root.glob("*.py")
        if path.name != "__init__.py"
    ]
    for stage, allowances in allowed.items():
        problems += [f"{stage}: may import {name}, which is no subpackage" for name in allowances - set(allowed)]
        for path in sorted((package_root / stage).rglob("*.py")):
            for imported in sorted(imported_subpackages(path, package_root) - {stage} - allowances):
                problems.append(
                    f"{path.relative_to(package_root)} imports {imported}; {stage} may import: "
                    f"{', '.join(sorted(allowances)) or NONE_ALLOWED}"
                )
    try:
        tuple(TopologicalSorter(allowed).static_order())
    except CycleError as error:
        problems.append(f"the allowances form a cycle: {' -> '.join(error.args[1])}")
    return problems


def test_the_package_is_layered_by_stage():
    assert layering_violations(PACKAGE_ROOT) == []


def test_every_stage_has_a_rule_file_or_says_who_uses_it():
    """Each subpackage's docstring names the rule file(s) it serves, or says it is the ground others stand on."""
    for init in PACKAGE_ROOT.glob("*/__init__.py"):
        docstring = ast.get_docstring(ast.parse(init.read_text()))
        rule_files = re.findall(r"rules/(\w+)\.smk", docstring)
        assert all((REPO / "rules" / f"{name}.smk").is_file() for name in rule_files), init
        assert rule_files or NONE_ALLOWED in docstring, init


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, source in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(source))
    return root


LAYERED = {
    "__init__.py": "",
    "low/__init__.py": '"""The ground.\n\nMay import: no other subpackage."""\n',
    "low/base.py": "import json\n",
    "high/__init__.py": '"""On top.\n\nMay import: low."""\n',
    "high/top.py": "from ..low.base import json\nfrom . import other\n",
    "high/other.py": "",
}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({}, None),
        ({"low/base.py": "def late():\n    from ..high.top import json\n"}, "low/base.py imports high; low may import"),
        ({"low/base.py": "from refusal_directions.high import top\n"}, "low/base.py imports high"),
        ({"low/base.py": "import refusal_directions.high.top\n"}, "low/base.py imports high"),
        ({"low/base.py": "from .. import high\n"}, "low/base.py imports high"),
        ({"low/__init__.py": '"""May import: high."""\n'}, "the allowances form a cycle"),
        ({"loose.py": ""}, "loose.py: a module outside every subpackage"),
    ],
    ids=["layered", "upward-inside-a-function", "upward-absolute", "upward-import-statement", "upward-package",
         "cycle", "loose-module"],
)  # fmt: skip
def test_the_check_finds_an_upward_import_a_cycle_and_a_loose_module(tmp_path, change, problem):
    root = write_package(tmp_path / "refusal_directions", {**LAYERED, **change})
    problems = layering_violations(root)
    assert problems == [] if problem is None else any(problem in p for p in problems), problems


def rule_functions(rule_file: Path) -> dict[str, str]:
    """Each rule of a rule file and the package function its entry script calls (dotted below the package)."""
    calls = {}
    rules = re.finditer(r"^(?:rule|checkpoint) (\w+):\n((?:[ \t]+.*\n|\n)*)", rule_file.read_text(), re.M)
    for rule in rules:
        script = re.search(r'"\.\./scripts/(\w+)\.py"', rule[2])
        entry = (REPO / "scripts" / f"{script[1]}.py").read_text()
        module, function = re.search(r"^    from refusal_directions\.([\w.]+) import (\w+)$", entry, re.M).groups()
        calls[rule[1]] = f"{module}.{function}"
    return calls


def test_the_readme_maps_every_rule_file_to_its_subpackages_and_functions():
    """README's layout table: one row per rule file with rules, the subpackages its entry scripts call into and
    each rule's function, as the entry scripts have them."""
    readme = (REPO / "README.md").read_text().split("## Layout")[1].split("\n## ")[0]
    rows = {m[1]: (m[2], m[3]) for m in re.finditer(r"^\| `rules/(\w+)\.smk` \| (.*?) \| (.*?) \|$", readme, re.M)}
    expected = {}
    for rule_file in sorted((REPO / "rules").glob("*.smk")):
        if calls := rule_functions(rule_file):
            subpackages = list(dict.fromkeys(function.split(".")[0] for function in calls.values()))
            expected[rule_file.stem] = (
                ", ".join(f"`{name}`" for name in subpackages),
                "; ".join(f"`{rule}`: `{function}`" for rule, function in calls.items()),
            )
    assert rows == expected
