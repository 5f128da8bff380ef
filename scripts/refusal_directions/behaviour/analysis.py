"""Does the projection on a layer's direction predict refusal? AUROC and correlation, on test-split prompts."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors.numpy import load_file
from scipy.stats import rankdata

from ..data.splits import read_split
from ..model.activations import layer_files, read_layer, read_refusal_scores
from ..stats.intervals import rate_columns
from ..stats.resampling import percentile_interval
from ..workflow.jsonio import read_jsonl
from .figures import auroc_figure

log = logging.getLogger(__name__)

BOOTSTRAP_STREAM = 4
# Fewer refusals (or compliances) than this in a scope: AUROC and its bootstrap interval are reported but
# flagged, and the report draws no conclusion from them.
MIN_CASES = 10


def scarcity_reason(refused: np.ndarray) -> str:
    """Why the prediction statistics of these labels cannot (or can hardly) be trusted; empty if they can."""
    n_refused, n_complied = int(refused.sum()), int((~refused).sum())
    if n_refused == 0:
        return "no refusal to predict"
    if n_complied == 0:
        return "every response is a refusal"
    if min(n_refused, n_complied) < MIN_CASES:
        return f"only {min(n_refused, n_complied)} {'refusals' if n_refused < n_complied else 'compliances'}: too few"
    return ""


def auroc(scores: np.ndarray, refused: np.ndarray) -> float:
    """P(score of a refusal > score of a compliance), ties counting one half (Mann-Whitney U / n1 n0);
    NaN when one of the two outcomes never occurs."""
    n_refused = int(refused.sum())
    n_complied = len(refused) - n_refused
    if n_refused == 0 or n_complied == 0:
        return math.nan
    ranks = rankdata(scores)
    return float((ranks[refused].sum() - n_refused * (n_refused + 1) / 2) / (n_refused * n_complied))


def correlation(projections: np.ndarray, values: np.ndarray) -> float:
    """Pearson correlation of the projection with a refusal measure (the 0/1 label: point-biserial r; the
    refusal score); NaN when either is constant."""
    values = np.asarray(values, dtype=float)
    if np.ptp(projections) == 0 or np.ptp(values) == 0:
        return math.nan
    return float(np.corrcoef(projections, values)[0, 1])


def bootstrap_interval(statistic, refused: np.ndarray, n_bootstrap: int, level: float,
                       seed: int) -> tuple[float, float]:  # fmt: skip
    """Percentile interval of ``statistic(rows)`` over resamples of the rows drawn within each outcome
    (refused or not), so both outcomes stay present."""
    rng = np.random.default_rng([seed, BOOTSTRAP_STREAM])
    groups = [np.flatnonzero(refused), np.flatnonzero(~refused)]
    if any(len(group) == 0 for group in groups):
        return math.nan, math.nan
    values = np.empty(n_bootstrap)
    for draw in range(n_bootstrap):
        values[draw] = statistic(np.concatenate([rng.choice(group, size=len(group)) for group in groups]))
    return percentile_interval(values, level)


def prediction_row(projections: np.ndarray, refused: np.ndarray, values: np.ndarray, n_bootstrap: int, level: float,
                   seed: int) -> dict:  # fmt: skip
    """AUROC of the projections for ``refused`` and their correlation r with ``values`` (the label itself,
    or the refusal score), each with its bootstrap interval."""
    auc_low, auc_high = bootstrap_interval(lambda rows: auroc(projections[rows], refused[rows]), refused, n_bootstrap,
                                           level, seed)  # fmt: skip
    r_low, r_high = bootstrap_interval(lambda rows: correlation(projections[rows], values[rows]), refused,
                                       n_bootstrap, level, seed)  # fmt: skip
    return {
        "n": len(refused),
        "n_refused": int(refused.sum()),
        "auroc": auroc(projections, refused),
        "auroc_ci_low": auc_low,
        "auroc_ci_high": auc_high,
        "r": correlation(projections, values),
        "r_ci_low": r_low,
        "r_ci_high": r_high,
    }


# Targets: what counts as a refusal, and what the projection is correlated with.
RESPONSES = "response refused"  # the generated subset; r: point-biserial with the label
SCORES = "refusal score > 0"  # every test prompt; r: Pearson with the refusal score itself
SCOPES = {"harmful prompts": ("harmful",), "all prompts": ("harmful", "harmless")}


def layer_projections(paths: list[Path], units: np.ndarray, sets: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Every prompt of each set projected on each layer's unit direction, [n_layers, n_prompts], by row of the
    activation files; each layer file is read once."""
    per_layer = []
    for layer, path in enumerate(paths):
        groups, _ = read_layer(path, sets)
        per_layer.append({name: groups[name] @ units[layer] for name in sets})
    return {name: np.stack([projected[name] for projected in per_layer]) for name in sets}


def prediction_table(cases: dict[str, pd.DataFrame], projections: dict[str, np.ndarray], n_bootstrap: int,
                     level: float, seed: int) -> pd.DataFrame:  # fmt: skip
    """Per layer, target and scope: how well the projection of a test prompt on the layer's direction
    predicts refusal. ``cases[target]``: rows ``set``, ``row`` (in the activation files), ``refused`` and
    ``value`` (what r correlates with); ``projections``: from ``layer_projections``."""
    rows = []
    for layer in range(len(next(iter(projections.values())))):
        for target, table in cases.items():
            sets, prompt_rows = table["set"].to_numpy(), table["row"].to_numpy()
            projected = np.array([projections[s][layer, r] for s, r in zip(sets, prompt_rows, strict=True)])
            refused, values = table["refused"].to_numpy(bool), table["value"].to_numpy(float)
            for scope, members in SCOPES.items():
                keep = np.isin(sets, members)
                row = prediction_row(projected[keep], refused[keep], values[keep], n_bootstrap, level, seed)
                rows.append({"layer": layer, "target": target, "scope": scope, **row,
                             "reason": scarcity_reason(refused[keep])})  # fmt: skip
    return pd.DataFrame(rows)


def level_table(prompt_files: dict[str, str], test_rows: dict[str, np.ndarray],
                projections: dict[str, np.ndarray]) -> pd.DataFrame:  # fmt: skip
    """Mean projection of every test prompt by its harm level (datasets with a level column only)."""
    rows = []
    for set_name, prompt_file in prompt_files.items():
        records = read_jsonl(prompt_file)
        levels = pd.Series([records[row].get("level") for row in test_rows[set_name]])
        if levels.isna().all():
            continue
        for layer, projected in enumerate(projections[set_name][:, test_rows[set_name]]):
            for level_value, part in pd.Series(projected).groupby(levels):
                rows.append({"layer": layer, "set": set_name, "level": level_value, "n": len(part),
                             "mean_projection": part.mean(), "sd_projection": part.std()})  # fmt: skip
    return pd.DataFrame(rows, columns=["layer", "set", "level", "n", "mean_projection", "sd_projection"])


def refusal_rates(labels: pd.DataFrame, level: float) -> pd.DataFrame:
    """Per prompt set: the responses, how many were refused (by either judge) with the rate and its Wilson
    interval, and how many by the response text and by the refusal score."""
    rows = [
        {
            "set": name,
            "n": len(part),
            "refused": int(part["refused"].sum()),
            **rate_columns("refusal_rate", part["refused"], level),
            "refused_text": int(part["refused_text"].sum()),
            "refused_score": int(part["refused_score"].sum()),
        }
        for name, part in labels.groupby("set", sort=False)
    ]
    return pd.DataFrame(rows)


def write_behaviour_analysis(inputs: dict, outputs: dict, statistics: dict, title: str, dpi: int) -> None:
    """Experiment 1, on test-split prompts only (outside the directions' training split): per layer, how
    well the projection on the direction predicts refusal, judged from the responses and by the refusal
    score (auroc_by_layer.csv and .png); Experiment 1a: mean projection by harm level
    (projection_by_level.csv); the refusal rates of the responses (refusal_rates.csv). ``inputs``: the rule's
    named inputs (refusals, directions, manifest, splits and the harmful and harmless prompts)."""
    labels = pd.read_csv(inputs["refusals"])
    prompt_files = dict(zip(("harmful", "harmless"), inputs["prompts"], strict=True))
    test_rows = {name: read_split(inputs["splits"], name, "test") for name in prompt_files}
    manifest = inputs["manifest"]
    scores = read_refusal_scores(manifest)
    scores = pd.concat([scores[(scores["set"] == name) & scores["row"].isin(rows)] for name, rows in test_rows.items()])
    cases = {
        RESPONSES: labels.assign(value=labels["refused"].astype(float)),
        SCORES: scores.assign(refused=scores["refusal_score"] > 0, value=scores["refusal_score"]),
    }
    units = load_file(inputs["directions"])["unit_directions"].astype(np.float64)
    projections = layer_projections(layer_files(manifest), units, tuple(prompt_files))
    n_bootstrap, level, seed = statistics["n_bootstrap"], statistics["ci_level"], statistics["seed"]
    table = prediction_table(cases, projections, n_bootstrap, level, seed)
    table.to_csv(outputs["auroc"], index=False)
    auroc_figure(table, title, statistics["ci_level"]).savefig(outputs["figure"], dpi=dpi)
    level_table(prompt_files, test_rows, projections).to_csv(outputs["levels"], index=False)
    refusal_rates(labels, level).to_csv(outputs["rates"], index=False)
    log.info("refusals: %d of %d responses", int(labels["refused"].sum()), len(labels))
