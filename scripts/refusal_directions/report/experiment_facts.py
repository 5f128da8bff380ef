"""The facts of the report's sections on behaviour (Experiment 1), interventions (Experiment 2), the selected
direction and what it costs, read from their tables: rows selected and counted, every number as the table
holds it. A scope with too few refusals is flagged here, and its section states no interval for it."""

from __future__ import annotations

import math

import pandas as pd

from ..behaviour.analysis import RESPONSES, SCOPES, SCORES
from ..data.prompt_sets import HARMFUL, HARMLESS
from ..interventions.conditions import (
    BYPASS,
    CONDITIONS,
    EDITED,
    INDUCE,
    INTERVENTIONS,
    RANDOM,
    baseline_of,
    control_kind,
)
from ..judging.judges import label as judge_label
from .facts import records

# Below this many refusals on harmful prompts without intervention, a reduction cannot be measured.
MIN_BASELINE_REFUSALS = 5
# The AUROC scope that asks whether the projection predicts refusal among harmful prompts alone.
HARMFUL_SCOPE = next(scope for scope, sets in SCOPES.items() if sets == (HARMFUL,))
CHANCE = 0.5


def _text(value) -> str | None:
    """A text cell, None where it is empty (pandas reads an empty cell as NaN)."""
    return None if pd.isna(value) or value == "" else str(value)


def _count(rate: float, n: int) -> int:
    """The number of refusals behind a rate and its prompt count, both from the table."""
    return round(rate * n)


def disagreement_facts(labels: pd.DataFrame, limit: int = 5) -> dict | None:
    """Where the response text and the refusal score disagree: counted, and the first few of each kind."""
    if "agreement" not in labels:
        return None
    kinds = ("text only", "score only")
    listed = [
        {
            "agreement": kind,
            "id": str(row["id"]),
            "condition": row.get("condition"),
            "refusal_score": row["refusal_score"],
            "evidence": _text(row["evidence"]),
        }
        for kind in kinds
        for row in records(labels[labels["agreement"] == kind].head(limit))
    ]
    counts = labels["agreement"].value_counts()
    return {
        "n": len(labels),
        "n_disagree": int(labels["agreement"].isin(kinds).sum()),
        "text_only": int(counts.get("text only", 0)),
        "score_only": int(counts.get("score only", 0)),
        "listed": listed,
    }


def auroc_facts(part: pd.DataFrame) -> dict:
    """One target and scope over the layers: the layer with the highest AUROC, and in how many layers the
    interval lies above or below chance; no AUROC statement where the scope is flagged."""
    scope = part["scope"].iloc[0]
    reason = _text(part["reason"].iloc[0])
    defined = reason is None and part["auroc"].notna().any()
    return {
        "target": part["target"].iloc[0],
        "scope": scope,
        "reason": reason,
        "defined": bool(defined),
        "best": records(part.loc[[part["auroc"].idxmax()]])[0] if defined else None,
        "n_layers": len(part),
        "n_above": int((part["auroc_ci_low"] > CHANCE).sum()),
        "n_below": int((part["auroc_ci_high"] < CHANCE).sum()),
        "pooled": scope != HARMFUL_SCOPE,
    }


def level_facts(levels: pd.DataFrame) -> dict | None:
    """Experiment 1a at the layer whose harm levels lie furthest apart."""
    if levels.empty:
        return None
    layer = levels.groupby("layer")["mean_projection"].agg(lambda v: v.max() - v.min()).idxmax()
    return {"layer": int(layer), "rows": records(levels[levels["layer"] == layer])}


def behaviour_facts(refusals: pd.DataFrame, rates: pd.DataFrame, auroc: pd.DataFrame, levels: pd.DataFrame) -> dict:
    harmful = rates[rates["set"] == HARMFUL]
    refused, n = (int(harmful["refused"].iloc[0]), int(harmful["n"].iloc[0])) if len(harmful) else (0, 0)
    scores_in_harmful = auroc[(auroc["scope"] == HARMFUL_SCOPE) & (auroc["target"] == SCORES)]
    return {
        "n_responses": len(refusals),
        "primary": refusals["primary"].iloc[0],
        "primary_label": judge_label(refusals["primary"].iloc[0]),
        "rates": records(rates),
        "disagreements": disagreement_facts(refusals),
        "responses_target": RESPONSES,
        "scores_target": SCORES,
        "auroc": [auroc_facts(part) for _, part in auroc.groupby(["target", "scope"], sort=False)],
        "harmful_refused": refused,
        "harmful_n": n,
        "few_refusals": refused < MIN_BASELINE_REFUSALS,
        "levels": level_facts(levels),
        "harmful_scores": auroc_facts(scores_in_harmful),
    }


def _largest_change(sweep: pd.DataFrame, name: str) -> dict:
    """The swept layer where a condition moves refusal furthest the way it is meant to: down on harmful
    prompts (ablation removes refusal), up on harmless ones (addition induces it)."""
    column = sweep[f"change_{name}"]
    return records(sweep.loc[[column.idxmin() if CONDITIONS[name].prompt_set == HARMFUL else column.idxmax()]])[0]


def sweep_facts(sweep: pd.DataFrame) -> dict:
    first = records(sweep.head(1))[0]
    refused = _count(first[f"refusal_{baseline_of(HARMFUL)}"], first[f"n_{HARMFUL}"])
    random_control = next(c for c in CONDITIONS[BYPASS].controls if control_kind(c) == RANDOM)
    vs_random = f"{BYPASS}_vs_{random_control}"
    return {
        "first": first,
        "n_layers": len(sweep),
        "harmful_baseline": baseline_of(HARMFUL),
        "harmless_baseline": baseline_of(HARMLESS),
        "columns": [name for name in CONDITIONS if CONDITIONS[name].intervenes and f"refusal_{name}" in sweep],
        "rows": records(sweep),
        "baseline_refusals": refused,
        "few_refusals": refused < MIN_BASELINE_REFUSALS,
        "largest": {name: _largest_change(sweep, name) for name in INTERVENTIONS},
        "controls": {name: [c for c in CONDITIONS[name].controls if f"change_{c}" in sweep] for name in INTERVENTIONS},
        "random_control": random_control,
        "vs_random": vs_random,
        "largest_vs_random": records(sweep.loc[[sweep[vs_random].idxmin()]])[0],
        "largest_score_change": records(sweep.loc[[sweep[f"score_change_{BYPASS}"].idxmin()]])[0],
    }


def prompts_phrase(prompt_set: str, harmful_dataset: str | None) -> str:
    """Which prompts a finding of the evaluation is about: a set's test split, or the configured dataset's."""
    if prompt_set == HARMFUL and harmful_dataset:
        return f"the harmful prompts of `{harmful_dataset}`"
    return f"{prompt_set} test prompts"


def selection_facts(selected: dict, evaluation: pd.DataFrame, labels: pd.DataFrame,
                    harmful_dataset: str | None = None) -> dict:  # fmt: skip
    """The selected direction: how it was chosen (validation split) and what it does (on the test split, its
    harmful prompts from ``harmful_dataset`` where one is configured)."""
    rows = {row["condition"]: row for row in records(evaluation)}
    findings = []
    for name in (n for n in INTERVENTIONS if n in rows):
        row, base = rows[name], rows[CONDITIONS[name].compared_with]
        refused = _count(base["refusal_rate"], base["n"])
        controls = [{"name": control, "kind": control_kind(control)} for control in CONDITIONS[name].controls]
        findings.append(
            {
                "name": name,
                "prompt_set": CONDITIONS[name].prompt_set,
                "prompts": prompts_phrase(CONDITIONS[name].prompt_set, harmful_dataset),
                "row": row,
                "controls": [c for c in controls if math.isfinite(row.get(f"vs_{c['kind']}_score", math.nan))],
                "baseline_refused": refused,
                "baseline_n": int(base["n"]),
                "few_refusals": name == BYPASS and refused < MIN_BASELINE_REFUSALS,
            }
        )
    return {
        "selected": selected,
        "harmful_dataset": harmful_dataset,
        "n_harmful": int(rows[baseline_of(HARMFUL)]["n"]),
        "n_harmless": int(rows[baseline_of(HARMLESS)]["n"]),
        "rows": [{**row, "changed": math.isfinite(row.get("change_rate", math.nan))} for row in rows.values()],
        "findings": findings,
        "disagreements": disagreement_facts(labels),
    }


def experiment_facts(tables: dict[str, pd.DataFrame], selected: dict | None, level: float,
                     harmful_dataset: str | None = None) -> dict:  # fmt: skip
    """The experiments' facts from the tables of the branches that ran (None for one that did not); ``level``:
    the intervals' confidence level; ``harmful_dataset``: where the evaluation's harmful prompts come from
    (selection.evaluation.harmful_dataset), None for the test split."""
    behaviour = (
        behaviour_facts(tables["refusals"], tables["refusal_rates"], tables["auroc"], tables["levels"])
        if "auroc" in tables
        else None
    )
    return {
        "ran_experiments": bool(tables) or selected is not None,
        "level": level,
        "bypass": BYPASS,
        "induce": INDUCE,
        "interventions": INTERVENTIONS,
        "behaviour": behaviour,
        "sweep": sweep_facts(tables["sweep"]) if "sweep" in tables else None,
        "selection": selection_facts(selected, tables["evaluation"], tables["evaluation_labels"], harmful_dataset)
        if selected is not None
        else None,
    }


def capability_facts(capability: pd.DataFrame) -> dict:
    """The cross-entropy rows by kind of text (capability.csv) and, where the edited model was measured, its
    row and the hook ablation's on each text (the same model: their cross-entropies must agree)."""
    texts = {text: records(part) for text, part in capability.groupby("text", sort=False)}
    same_model = [
        {"text": text, **{key: next(r for r in rows if r["condition"] == name) for key, name in
                          (("edited", EDITED), ("ablation", BYPASS))}}
        for text, rows in texts.items()
        if {EDITED, BYPASS} <= {row["condition"] for row in rows}
    ]  # fmt: skip
    return {"texts": texts, "same_model": same_model}
