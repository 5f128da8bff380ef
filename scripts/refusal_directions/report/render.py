"""The per-model Markdown report: the templates under templates/ rendered from the facts of the result
tables (facts.py, experiment_facts.py); every number in it is read from a result file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ..export.capability_texts import LABELS as TEXT_LABELS
from ..interventions.conditions import label
from ..workflow.jsonio import read_json
from .experiment_facts import capability_facts, experiment_facts
from .facts import direction_facts
from .formats import FILTERS, shown, unwrap
from .judging_facts import judge_facts
from .method_facts import method_facts

TEMPLATES = Path(__file__).resolve().parent / "templates"
# The files this module reads besides its imports: a change to one reruns the report.
CODE_FILES = ("templates/*.md.j2",)

EXPERIMENT_TABLES = (
    "refusals", "refusal_rates", "auroc", "levels", "sweep", "evaluation", "evaluation_labels", "capability",
)  # fmt: skip
JUDGE_TABLES = ("agreement", "judge_rates", "disagreements")


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=shown,
        autoescape=False,
    )
    env.filters.update(FILTERS, label=label, text_label=TEXT_LABELS.get)
    return env


def render(facts: dict) -> str:
    return unwrap(environment().get_template("report.md.j2").render(facts))


def write_report(inputs: dict[str, str], outputs: dict[str, str], datasets: dict, seed: int, title: str,
                 judges: dict, evaluation_dataset: str | None = None) -> None:  # fmt: skip
    """report.md from ``inputs``: summary, validation, top10 and, when those branches ran, the behaviour,
    intervention, selection and capability tables, the edited model's check, the direction methods'
    comparison and the judges' agreement (``judges``: which judges ran, the primary one and the llm judge's
    model; ``evaluation_dataset``: selection.evaluation.harmful_dataset)."""
    tables = {name: pd.read_csv(inputs[name]) for name in EXPERIMENT_TABLES if name in inputs}
    selected = read_json(inputs["selected"]) if "selected" in inputs else None
    edited_check = read_json(inputs["edited_check"]) if "edited_check" in inputs else None
    summary = read_json(inputs["summary"])
    facts = direction_facts(
        summary, pd.read_csv(inputs["validation"]), pd.read_csv(inputs["top10"]), datasets, seed, title
    )
    facts.update(experiment_facts(tables, selected, summary["statistics"]["ci_level"], evaluation_dataset))
    capability = capability_facts(tables["capability"]) if "capability" in tables else None
    judged = {name: pd.read_csv(inputs[name], keep_default_na=False, na_values=[""]) for name in JUDGE_TABLES
              if name in inputs}  # fmt: skip
    judge_section = judge_facts(*(judged[name] for name in JUDGE_TABLES), judges) if judged else None
    methods = method_facts(pd.read_csv(inputs["methods"])) if "methods" in inputs else None
    facts.update(edited=edited_check, capability=capability, judges=judge_section, methods=methods)
    Path(outputs["report"]).write_text(render(facts))
