"""The difference-in-means direction of every layer, in one safetensors file.

Written by its own step, whose only inputs are the activations (and whose only settings say which prompt
sets to contrast): no statistics setting or threshold can rewrite it, so the model jobs that read it
(interventions) rerun only when the directions themselves change.
"""

from __future__ import annotations

import json

import numpy as np
from safetensors.numpy import save_file

from .activations import LAYER_CONVENTION, layer_files, read_layer
from .stats import difference_in_means


def write_directions(manifest_path: str, output: str, model_id: str, control: dict | None) -> None:
    """``unit_directions`` and ``mean_differences`` (harmful - harmless), [n_layers, d_model] float32, row l
    = layer l; with a control contrast also ``control_mean_differences`` (a - b)."""
    units, differences, control_differences = [], [], []
    for path in layer_files(manifest_path):
        names = ("harmful", "harmless", *((control["a"], control["b"]) if control else ()))
        groups, _ = read_layer(path, names)
        difference, unit, _ = difference_in_means(groups["harmful"], groups["harmless"])
        units.append(unit)
        differences.append(difference)
        if control:
            control_differences.append(difference_in_means(groups[control["a"]], groups[control["b"]])[0])
    tensors = {"unit_directions": np.stack(units), "mean_differences": np.stack(differences)}
    if control:
        tensors["control_mean_differences"] = np.stack(control_differences)
    save_file(
        {name: values.astype(np.float32) for name, values in tensors.items()},
        output,
        # One metadata key: safetensors writes several keys in a random order, which would change the bytes.
        metadata={
            "refusal_directions": json.dumps(
                {"model_id": model_id, "layer_convention": LAYER_CONVENTION, "rows": "layer 0 .. L-1"}, sort_keys=True
            )
        },
    )
