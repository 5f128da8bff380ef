"""Choose the refusal direction among the scored candidates: the verdicts of the selection, applied to the
numbers of candidate_scores.py, so changing a threshold reruns no model job.

``refusal_score`` (the reference method): drop candidates with an undefined score, in the last
(1 - max_layer_fraction) of the layers, whose ablation moves harmless prompts' next-token distribution by
more than kl_max, or whose addition does not make harmless prompts refused (induce <= induce_min); the lowest
bypass score wins. ``cosmic``: the same layer and KL filters; the highest COSMIC score wins. If no candidate
passes, the best one that passes the layer filter is taken and marked as a fallback, with why the others
failed: it is then a candidate, not a finding.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
from safetensors.numpy import load_file, save_file
from scipy.stats import spearmanr

from ..workflow.jsonio import write_json
from ..workflow.permissions import as_new_file
from .layer_filter import selectable_layers

log = logging.getLogger(__name__)
CRITERIA = {"refusal_score": ("bypass", "lowest"), "cosmic": ("cosmic_score", "highest")}
NOT_SCORED = "not scored (the layer filter drops it, max_candidates thinned its layer, or the prefilter ranked it out)"


def filters(scores: pd.DataFrame, settings: dict) -> dict[str, tuple[str, pd.Series]]:
    """Each filter: its description and which candidates it drops."""
    limit = selectable_layers(int(scores["n_layers"].iloc[0]), settings["max_layer_fraction"])
    numbers = ["bypass", "induce", "kl"] if settings["method"] == "refusal_score" else ["cosmic_score", "kl"]
    last = f"layer >= {limit} (the last {1 - settings['max_layer_fraction']:.0%} of the layers)"
    dropped = {
        "undefined": ("undefined score", ~np.isfinite(scores[numbers]).all(axis=1)),
        "layer": (last, scores["layer"] >= limit),
        "kl": (f"KL > {settings['kl_max']:g}", scores["kl"] > settings["kl_max"]),
    }
    if settings["method"] == "refusal_score":
        dropped["induce"] = (f"induce <= {settings['induce_min']:g}", ~(scores["induce"] > settings["induce_min"]))
    return dropped


def was_scored(scores: pd.DataFrame) -> pd.Series:
    """Which candidates were scored: candidate_scores.csv lists the strided layers it left out without scores."""
    return scores["scored"].astype(bool)


def choose(scores: pd.DataFrame, settings: dict) -> tuple[pd.DataFrame, int, str, str]:
    """The scores with ``filtered`` and ``why``, the index of the chosen candidate, why it is a fallback
    ("" when it passed every filter), and the candidates it was chosen among. A candidate that was not scored
    is never chosen; its ``why`` says so."""
    column, best = CRITERIA[settings["method"]]
    scored = was_scored(scores)
    dropped = filters(scores, settings)
    table = scores.assign(why=[
        "; ".join(name for name, mask in dropped.values() if mask.loc[index]) if scored.loc[index] else NOT_SCORED
        for index in scores.index
    ])  # fmt: skip
    table["filtered"] = table["why"] != ""
    pool, fallback, among = table[~table["filtered"]], "", "those that passed every filter"
    if pool.empty:
        fallback = ", ".join(
            f"{int((mask & scored).sum())} of {int(scored.sum())} fail {name}"
            for name, mask in dropped.values()
            if (mask & scored).any()
        )
        pool = table[scored & ~dropped["layer"][1] & ~dropped["undefined"][1]]
        among = "those with a defined score in the allowed layers"
        if pool.empty:  # every candidate is in the last layers or undefined: take the best defined one
            pool = table[scored & np.isfinite(table[column])]
            among = "every candidate with a defined score, the last layers included"
    chosen = pool[column].idxmin() if best == "lowest" else pool[column].idxmax()
    table["selected"] = table.index == chosen
    return table, int(chosen), fallback, among


def prefilter_summary(table: pd.DataFrame) -> dict | None:
    """How well the attribution prefilter's estimates rank the candidates it scored both ways: Spearman's rank
    correlation of the estimated and the exact bypass and induce (None without the prefilter, or with fewer
    than three candidates scored both ways)."""
    if "bypass_estimate" not in table:
        return None
    both = table[was_scored(table) & table["bypass_estimate"].notna()]

    def spearman(column: str) -> float | None:
        if len(both) < 3:
            return None
        value = spearmanr(both[f"{column}_estimate"], both[column]).statistic
        return float(value) if np.isfinite(value) else None

    return {
        "n_estimated": int(table["bypass_estimate"].notna().sum()),
        "n_scored": len(both),
        "spearman_bypass": spearman("bypass"),
        "spearman_induce": spearman("induce"),
    }


def select_direction(inputs: dict, outputs: dict, selection: dict) -> None:
    """scores.csv (every candidate, filtered and why), selected_direction.json and .safetensors, from the
    candidates' ``scores`` and the ``candidates`` themselves, under the ``selection`` settings."""
    settings = selection
    table, chosen, fallback, among = choose(pd.read_csv(inputs["scores"]), settings)
    table.to_csv(outputs["scores"], index=False)
    row = table.loc[chosen]
    candidates = load_file(inputs["candidates"])["candidates"]
    n_positions = candidates.shape[0]
    direction = candidates[int(row["position"]) + n_positions, int(row["layer"])].astype(np.float64)
    save_file(
        {"direction": direction.astype(np.float32), "unit": (direction / np.linalg.norm(direction)).astype(np.float32)},
        outputs["direction"],
        # Where it comes from travels with it (the export's model card); the thresholds stay out, so a threshold
        # that keeps the choice writes the same bytes and skips the model jobs that read it.
        metadata={
            "refusal_directions": json.dumps(
                {"layer": int(row["layer"]), "position": int(row["position"]), "method": settings["method"]}
            )
        },  # fmt: skip
    )
    as_new_file(outputs["direction"])
    column, best = CRITERIA[settings["method"]]
    scored = was_scored(table)
    summary = {
        "layer": int(row["layer"]),
        "position": int(row["position"]),
        "token": row["token"],
        "relative_depth": int(row["layer"]) / int(row["n_layers"]),
        "method": settings["method"],
        "criterion": f"{best} {column}",
        "passed_filters": not fallback,
        "fallback_reason": fallback,
        "fallback_pool": among,
        "filters": [name for name, _ in filters(table, settings).values()],
        **{
            name: float(row[name])
            for name in ("bypass", "induce", "kl", "cosmic_ablation", "cosmic_addition", "cosmic_score", "norm")
        },  # fmt: skip
        "baseline_harmful_score": float(row["baseline_harmful_score"]),
        "baseline_harmless_score": float(row["baseline_harmless_score"]),
        "n_candidates": int(scored.sum()),
        "n_not_scored": int((~scored).sum()),
        "n_passed": int((~table["filtered"]).sum()),
        "n_validation": {"harmful": int(row["n_validation_harmful"]), "harmless": int(row["n_validation_harmless"])},
        "cosmic_layers": [int(layer) for layer in str(row["cosmic_layers"]).split()],
        "thresholds": {key: settings[key] for key in ("kl_max", "induce_min", "max_layer_fraction")},
        "prefilter": prefilter_summary(table),
        "split": "validation",
    }
    write_json(outputs["summary"], summary)
    log.info("selected layer %d position %d (%s)%s", summary["layer"], summary["position"], summary["criterion"],
             " as a fallback" if fallback else "")  # fmt: skip
