"""Experiment 1: per layer, how well the projection on the direction predicts refusal; Experiment 1a:
mean projection by harm level."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors.numpy import load_file

from ..activations import read_layer
from ..behaviour import prediction_row, scarcity_reason
from ..jsonio import read_json
from ..plotting import auroc_figure
from ..prompts import read_jsonl

log = logging.getLogger(__name__)
SCOPES = {"all prompts": ("harmful", "harmless"), "harmful prompts": ("harmful",)}


def prediction_table(labels: pd.DataFrame, activations: Path, layer_files: list[str], units: np.ndarray,
                     n_bootstrap: int, level: float, seed: int) -> pd.DataFrame:  # fmt: skip
    rows = []
    for layer, name in enumerate(layer_files):
        groups, _ = read_layer(activations / name, ("harmful", "harmless"))
        # Each labelled response's prompt, projected on this layer's direction.
        scores = np.array([groups[s][r] @ units[layer] for s, r in zip(labels["set"], labels["row"], strict=True)])
        refused = labels["refused"].to_numpy(bool)
        for scope, members in SCOPES.items():
            keep = labels["set"].isin(members).to_numpy()
            row = prediction_row(scores[keep], refused[keep], n_bootstrap, level, seed)
            rows.append({"layer": layer, "scope": scope, **row, "reason": scarcity_reason(refused[keep])})
    return pd.DataFrame(rows)


def level_table(prompt_files: dict[str, str], activations: Path, layer_files: list[str], units: np.ndarray):
    """Mean projection of every sampled prompt by its harm level (datasets with a level column only)."""
    rows = []
    for set_name, path in prompt_files.items():
        levels = pd.Series([record.get("level") for record in read_jsonl(path)])
        if levels.isna().all():
            continue
        for layer, name in enumerate(layer_files):
            groups, _ = read_layer(activations / name, (set_name,))
            projections = pd.Series(groups[set_name] @ units[layer])
            for level_value, part in projections.groupby(levels):
                rows.append({"layer": layer, "set": set_name, "level": level_value, "n": len(part),
                             "mean_projection": part.mean(), "sd_projection": part.std()})  # fmt: skip
    return pd.DataFrame(rows, columns=["layer", "set", "level", "n", "mean_projection", "sd_projection"])


def main(refusals_csv: str, directions: str, manifest: str, prompt_files: dict[str, str], outputs: dict,
         statistics: dict, title: str, dpi: int) -> None:  # fmt: skip
    labels = pd.read_csv(refusals_csv)
    units = load_file(directions)["unit_directions"].astype(np.float64)
    activations = Path(manifest).parent
    layer_files = read_json(manifest)["layer_files"]
    table = prediction_table(
        labels, activations, layer_files, units, statistics["n_bootstrap"], statistics["ci_level"], statistics["seed"]
    )
    table.to_csv(outputs["auroc"], index=False)
    auroc_figure(table, title, statistics["ci_level"]).savefig(outputs["figure"], dpi=dpi)
    level_table(prompt_files, activations, layer_files, units).to_csv(outputs["levels"], index=False)
    log.info("refusals: %d of %d responses", int(labels["refused"].sum()), len(labels))
