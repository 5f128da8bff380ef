"""Statistics of one layer: direction, effect size, tests, held-out effect, null, intervals, control."""

from __future__ import annotations

import logging

import numpy as np
from safetensors.numpy import save_file

from ..activations import read_layer
from ..jsonio import write_json
from ..layer_analysis import StatsSettings, analyse_layer

log = logging.getLogger(__name__)


def main(
    activations_path: str,
    stats_path: str,
    direction_path: str,
    settings: StatsSettings,
    control: tuple[str, str] | None,
) -> None:
    names = ("harmful", "harmless", *(control or ()))
    groups, attrs = read_layer(activations_path, names)
    row, unit, diff, null = analyse_layer(groups, settings, control)
    row = {"layer": int(attrs["layer"]), **row}
    write_json(stats_path, row)
    tensors = {"unit": unit, "diff": diff, "null_d": null}
    save_file({name: values.astype(np.float32) for name, values in tensors.items()}, direction_path)
    log.info(
        "layer %d: d = %.3f, held-out d = %.3f, permutation p = %.2g",
        row["layer"],
        row["cohens_d"],
        row.get("cohens_d_heldout", float("nan")),
        row.get("p_perm", float("nan")),
    )
