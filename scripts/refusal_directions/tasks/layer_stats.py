"""Statistics of one layer: direction, projections, effect size and tests."""

from __future__ import annotations

import logging

import numpy as np
from safetensors.numpy import save_file

from ..activations import read_layer
from ..jsonio import write_json
from ..stats import layer_statistics

log = logging.getLogger(__name__)


def main(activations_path: str, stats_path: str, direction_path: str, alpha: float, d_min: float) -> None:
    arrays, attrs = read_layer(activations_path, ("harmful", "harmless"))
    row, unit, diff = layer_statistics(arrays["harmful"], arrays["harmless"], alpha, d_min)
    row = {"layer": int(attrs["layer"]), **row}
    write_json(stats_path, row)
    save_file({"unit": unit.astype(np.float32), "diff": diff.astype(np.float32)}, direction_path)
    log.info("layer %d: d = %s, log10 p = %s", row["layer"], row["cohens_d"], row["log10_p"])
