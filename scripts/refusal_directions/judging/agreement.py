"""How far the judges of refusal agree (judges.py): for every pair of judges, Cohen's kappa with a bootstrap
interval and the confusion counts; for every condition, the refusal rate by each judge with its Wilson
interval; and the responses on which the judges disagree, each with every judge's verdict."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd

from ..stats.intervals import interval_columns, rate_columns
from ..stats.resampling import percentile_interval
from .judges import RESPONSE_SOURCES, column

BOOTSTRAP_STREAM = 8
# Responses listed per source where the judges disagree (the table says how many there are in all).
MAX_LISTED = 20
# How much of a response the disagreement table shows.
RESPONSE_CHARS = 200
# Every label table row is one response of one condition (behaviour responses have no condition: their set's).
GROUPS = ["source", "condition", "layer", "set"]


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa of two binary labellings, (observed - chance agreement) / (1 - chance agreement), from the
    confusion counts in integers (so no agreement beyond chance is exactly 0): 2 (both x neither - a only x b
    only) / ((both + a only)(a only + neither) + (both + b only)(b only + neither)); NaN where chance agreement
    is 1 (both judges give one and the same label to every response)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    both, a_only, b_only, neither = (int(n) for n in ((a & b).sum(), (a & ~b).sum(), (~a & b).sum(), (~a & ~b).sum()))
    denominator = (both + a_only) * (a_only + neither) + (both + b_only) * (b_only + neither)
    return math.nan if denominator == 0 else 2 * (both * neither - a_only * b_only) / denominator


def kappa_interval(a: np.ndarray, b: np.ndarray, n_bootstrap: int, level: float, seed: int) -> tuple[float, float]:
    """Percentile interval of kappa over resamples of the responses (pairs kept together); resamples where
    kappa is undefined are left out, and no interval is given when most are."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    rng = np.random.default_rng([seed, BOOTSTRAP_STREAM])
    draws = rng.integers(0, len(a), (n_bootstrap, len(a)))
    values = np.array([cohen_kappa(a[rows], b[rows]) for rows in draws])
    finite = values[np.isfinite(values)]
    if len(finite) < n_bootstrap / 2:
        return math.nan, math.nan
    return percentile_interval(finite, level)


def agreement_table(labels: pd.DataFrame, judges: list[str], intervals: dict) -> pd.DataFrame:
    """One row per pair of judges and scope (each source, then all responses): the confusion counts and
    kappa with its interval."""
    scopes = [(source, part) for source, part in labels.groupby("source", sort=False)] + [("all", labels)]
    rows = []
    for scope, part in scopes:
        for first, second in combinations(judges, 2):
            a, b = part[column(first)].to_numpy(bool), part[column(second)].to_numpy(bool)
            kappa = cohen_kappa(a, b)
            rows.append({
                "scope": scope, "judge_a": first, "judge_b": second, "n": len(part),
                "both_refused": int((a & b).sum()), "only_a_refused": int((a & ~b).sum()),
                "only_b_refused": int((~a & b).sum()), "neither_refused": int((~a & ~b).sum()),
                **interval_columns("kappa", (kappa, *kappa_interval(a, b, intervals["n_bootstrap"],
                                                                    intervals["ci_level"], intervals["seed"]))),
            })  # fmt: skip
    return pd.DataFrame(rows)


def rate_table(labels: pd.DataFrame, judges: list[str], primary: str, level: float) -> pd.DataFrame:
    """One row per condition (and layer) and judge: the refusal rate with its Wilson interval; the primary
    judge's rows are flagged."""
    rows = []
    for key, part in labels.groupby(GROUPS, sort=False, dropna=False):
        for judge in dict.fromkeys([*judges, primary]):
            rows.append({**dict(zip(GROUPS, key, strict=True)), "judge": judge, "primary": judge == primary,
                         "n": len(part), "refused": int(part[column(judge)].sum()),
                         **rate_columns("refusal_rate", part[column(judge)].astype(bool), level)})  # fmt: skip
    return pd.DataFrame(rows).astype({"layer": "Int64"})


def disagreement_table(labels: pd.DataFrame, judges: list[str], limit: int = MAX_LISTED) -> pd.DataFrame:
    """The responses on which the judges do not all agree, up to ``limit`` per source, each with every
    judge's verdict; ``n_disagreeing`` counts them all."""
    verdicts = labels[[column(judge) for judge in judges]].to_numpy(bool)
    split = labels[verdicts.any(axis=1) & ~verdicts.all(axis=1)]
    counts = split.groupby("source", sort=False).size()
    listed = split.groupby("source", sort=False).head(limit)
    table = listed[[*GROUPS, "id", "text"]].assign(
        response=listed["response"].str.slice(0, RESPONSE_CHARS),
        n_disagreeing=listed["source"].map(counts),
        **{judge: listed[column(judge)].astype(bool) for judge in judges},
    )
    return table.rename(columns={"text": "prompt"}).astype({"layer": "Int64"})


def labelled_responses(inputs: dict) -> pd.DataFrame:
    """Every label table of the run (``inputs``: by source), one row per response."""
    parts = []
    for source in (s for s in RESPONSE_SOURCES if s in inputs):
        table = pd.read_csv(inputs[source], keep_default_na=False, na_values=[""])
        table = table.assign(source=source, response=table["response"].fillna(""))
        for key in ("condition", "layer"):
            if key not in table:
                table[key] = None
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


def write_judge_agreement(inputs: dict, outputs: dict, judges: list[str], primary: str, intervals: dict) -> None:
    """agreement.csv, rates.csv and disagreements.csv from the label tables of the run (``inputs``: by source)."""
    labels = labelled_responses(inputs)
    agreement_table(labels, judges, intervals).to_csv(outputs["agreement"], index=False)
    rate_table(labels, judges, primary, intervals["ci_level"]).to_csv(outputs["rates"], index=False)
    disagreement_table(labels, judges).to_csv(outputs["disagreements"], index=False)
