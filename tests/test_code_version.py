"""code_version: the package modules a rule's entry script imports, found with ast, and the data files they
declare in CODE_FILES."""

import hashlib
import re
import textwrap

import pytest

from refusal_directions.workflow import definition
from refusal_directions.workflow.definition import code_version, local_modules


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A throwaway scripts/ folder with a package of the real package's name: write(path, source) adds a file."""
    root = tmp_path / "scripts" / definition.PACKAGE
    root.mkdir(parents=True)
    monkeypatch.setattr(definition, "PACKAGE_ROOT", root)
    monkeypatch.setattr(definition, "ENTRY_SCRIPTS", root.parent)

    def write(path: str, source: str = "") -> None:
        (root.parent / path).parent.mkdir(parents=True, exist_ok=True)
        (root.parent / path).write_text(textwrap.dedent(source))

    write("refusal_directions/__init__.py", '"""The package."""\n')
    return write


def test_every_form_of_import_is_followed(package):
    package(
        "entry.py",
        """
        '''Mentions are not imports:
        from refusal_directions.unused import nothing
        '''
        import json

        import refusal_directions.alpha
        from refusal_directions import beta, not_a_module


        def main():
            from refusal_directions.gamma import (
                first,
                second,
            )
        """,
    )
    package("refusal_directions/alpha.py", "from . import delta\n")
    package("refusal_directions/beta.py", "import json\n")
    package("refusal_directions/gamma.py", "from .epsilon import name\nfirst = second = name\n")
    package("refusal_directions/delta.py", "from .. import outside\nfrom .epsilon import *\n")
    package("refusal_directions/epsilon.py", "name = 1\n")
    package("refusal_directions/unused.py", "nothing = 0\n")
    package("refusal_directions/json.py", "")  # shares a name with the standard library's json, never imported
    assert local_modules("entry") == {"alpha", "beta", "gamma", "delta", "epsilon"}


def test_the_code_version_hashes_the_modules_by_name(package):
    """The hash rules have always had: a change to it would rerun every job of every finished run."""
    package("entry.py", "from refusal_directions.alpha import x\n")
    package("refusal_directions/alpha.py", "x = 1\n")
    root = definition.PACKAGE_ROOT
    expected = hashlib.sha256()
    for name in ("__init__", "alpha"):
        expected.update(name.encode() + (root / f"{name}.py").read_bytes())
    assert code_version("entry") == expected.hexdigest()[:16]


def test_templates_declared_in_code_files_are_part_of_the_code_version(package):
    package("with_report.py", "from refusal_directions import pipeline\n")
    package("without_report.py", "from refusal_directions import other\n")
    package("refusal_directions/pipeline.py", "from .report import render\n")
    package("refusal_directions/other.py", "")
    package(
        "refusal_directions/report.py",
        """
        CODE_FILES = (
            "templates/*.md.j2",
            "styles/report.css",
        )


        def render():
            pass
        """,
    )
    package("refusal_directions/templates/report.md.j2", "# {{ title }}\n")
    package("refusal_directions/styles/report.css", "body {}\n")
    before, unrelated = code_version("with_report"), code_version("without_report")

    package("refusal_directions/templates/report.md.j2", "# {{ title }}!\n")
    edited = code_version("with_report")
    assert edited != before and code_version("without_report") == unrelated

    package("refusal_directions/templates/notes.txt", "not a template")  # matches no pattern
    assert code_version("with_report") == edited
    package("refusal_directions/templates/section.md.j2", "## {{ name }}\n")
    assert code_version("with_report") != edited


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        ("CODE_FILES = TEMPLATES", "CODE_FILES must be a tuple or list of string literals"),
        ("CODE_FILES = ('templates/*.md.j2', 3)", "CODE_FILES must be a tuple or list of string literals"),
        ("CODE_FILES = ('templates/*.md.j2',)", "CODE_FILES pattern 'templates/*.md.j2' matches no file"),
    ],
)
def test_a_bad_code_files_declaration_is_an_error(package, declaration, message):
    package("entry.py", "from refusal_directions.report import render\n")
    package("refusal_directions/report.py", f"TEMPLATES = ()\n{declaration}\n")
    with pytest.raises(ValueError, match=re.escape(message)):
        code_version("entry")


def test_subpackages_are_followed_with_their_init(package):
    """A module in a subpackage: relative imports from it resolve against its own subpackage, an import of the
    subpackage itself reads its __init__, and every subpackage a module sits in is part of the code version."""
    package("entry.py", "from refusal_directions.stage.job import run\n")
    package("refusal_directions/stage/__init__.py", '"""A stage."""\n')
    package("refusal_directions/stage/job.py", "from .helper import x\nfrom ..ground import base\nrun = print\n")
    package("refusal_directions/stage/helper.py", "x = 1\n")
    package("refusal_directions/ground/__init__.py", "from . import base\n")
    package("refusal_directions/ground/base.py", "y = 2\n")
    package("refusal_directions/ground/unused.py", "")
    assert local_modules("entry") == {"stage", "stage.job", "stage.helper", "ground", "ground.base"}
    before = code_version("entry")
    package("refusal_directions/stage/__init__.py", '"""A stage, edited."""\n')
    assert code_version("entry") != before


def test_code_files_are_relative_to_the_declaring_module(package):
    package("entry.py", "from refusal_directions.report.render import render\n")
    package("refusal_directions/report/__init__.py", "")
    package("refusal_directions/report/render.py", "CODE_FILES = ('templates/*.md.j2',)\n\n\ndef render():\n    pass\n")
    package("refusal_directions/report/templates/page.md.j2", "# {{ title }}\n")
    package("refusal_directions/templates/other.md.j2", "not the report's\n")
    before = code_version("entry")
    package("refusal_directions/templates/other.md.j2", "still not the report's\n")
    assert code_version("entry") == before
    package("refusal_directions/report/templates/page.md.j2", "# {{ title }}!\n")
    assert code_version("entry") != before
