"""The facts of the report's section on judging refusal, read from results/<model>/judges/: which judge the
headline rates use, the llm judge's model, every pair of judges' agreement, the rates by judge and the first
responses on which the judges disagree."""

from __future__ import annotations

import pandas as pd

from ..judging.judges import EVIDENCE_MIN_PARAMS, LLM, label
from .facts import records

# Sources whose rates the report shows per condition (the interventions' are per layer: rates.csv has them).
SHOWN_RATES = ("behaviour", "evaluation")
# Disagreeing responses quoted per source.
QUOTED = 5


def judge_facts(agreement: pd.DataFrame, rates: pd.DataFrame, disagreements: pd.DataFrame, judges: dict) -> dict:
    """``judges``: the rule's description of the judges (names, primary, the llm judge's model and size)."""
    names = judges["judges"]
    shown = rates[rates["source"].isin(SHOWN_RATES)]
    rows = []
    for (source, condition, set_name), part in shown.groupby(["source", "condition", "set"], sort=False, dropna=False):
        by_judge = {row["judge"]: row for row in records(part)}
        rows.append({"source": source, "condition": None if pd.isna(condition) else condition, "set": set_name,
                     "n": int(part["n"].iloc[0]), "by_judge": by_judge})  # fmt: skip
    llm_params = judges["llm_n_params"]
    return {
        "names": names,
        "labels": {name: label(name) for name in [*names, judges["primary"]]},
        "primary": judges["primary"],
        "llm_model": judges["llm_model"],
        "llm_n_params": llm_params,
        "llm_is_demonstration": LLM in names and llm_params < EVIDENCE_MIN_PARAMS,
        "evidence_min_params": EVIDENCE_MIN_PARAMS,
        "pairs": records(agreement[agreement["scope"] == "all"]),
        "per_source": records(agreement[agreement["scope"] != "all"]),
        "rate_columns": list(dict.fromkeys([*names, judges["primary"]])),
        "rates": rows,
        "n_disagreeing": {
            source: int(part["n_disagreeing"].iloc[0]) for source, part in disagreements.groupby("source", sort=False)
        },  # fmt: skip
        "quoted": records(disagreements.groupby("source", sort=False).head(QUOTED)),
    }
