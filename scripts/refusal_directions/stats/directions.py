"""The difference-in-means directions of a model, from the train split of its activations:
``directions.safetensors`` (every layer at the last token, the contract of Experiment 0) and
``selection/candidates.safetensors`` (every layer at every kept position: the candidates of the selection).

Each is written by its own step, whose only inputs are the activations and the splits (and, for the
directions, which prompt sets form the control contrast): no statistics setting or threshold can rewrite
them, so the model jobs that read them rerun only when the directions themselves change.
"""

from __future__ import annotations

import json
from functools import partial

import numpy as np
from safetensors.numpy import save_file

from ..data.splits import read_split
from ..model.activations import LAYER_CONVENTION, layer_files, read_layer, read_positions
from ..workflow.permissions import as_new_file
from .difference_in_means import difference_in_means
from .direction_methods import candidate_vector


def save_tensors(tensors: dict[str, np.ndarray], path: str, metadata: dict) -> None:
    """``tensors`` as float32 safetensors with ``metadata`` as JSON, readable as every other output."""
    # One metadata key: safetensors writes several keys in a random order, which would change the bytes.
    # C order: safetensors writes an array's buffer as it lies, so a transposed one would be saved transposed.
    save_file({name: np.ascontiguousarray(values, dtype=np.float32) for name, values in tensors.items()}, path,
              metadata={"refusal_directions": json.dumps(metadata, sort_keys=True)})  # fmt: skip
    as_new_file(path)


def write_directions(inputs: dict, outputs: dict, model_id: str, control: dict | None) -> None:
    """``unit_directions`` and ``mean_differences`` (harmful - harmless) [n_layers, d_model], row l = layer
    l, at the last token; with a control contrast also ``control_mean_differences`` (a - b). From the layer
    files that the extraction's ``manifest`` lists, on the train split of ``splits``."""
    splits = inputs["splits"]
    train = {name: read_split(splits, name, "train") for name in ("harmful", "harmless", *(control or {}).values())}
    tensors = {"unit_directions": [], "mean_differences": [], "control_mean_differences": []}
    for path in layer_files(inputs["manifest"]):
        groups, _ = read_layer(path, tuple(train))
        groups = {name: values[train[name]] for name, values in groups.items()}
        difference, unit, _ = difference_in_means(groups["harmful"], groups["harmless"])
        tensors["unit_directions"].append(unit)
        tensors["mean_differences"].append(difference)
        if control:
            tensors["control_mean_differences"].append(
                difference_in_means(groups[control["a"]], groups[control["b"]])[0]
            )
    metadata = {"model_id": model_id, "layer_convention": LAYER_CONVENTION, "rows": "layer 0 .. L-1", "split": "train"}
    save_tensors({name: np.stack(rows) for name, rows in tensors.items() if rows}, outputs["directions"], metadata)


def _candidates(inputs: dict, vector_of=None) -> tuple[np.ndarray, dict[str, np.ndarray], list[str]]:
    """Every layer's candidate at every kept position [n_positions, n_layers, d_model], both classes' train
    means in that shape (``harmful_means``, ``harmless_means``) and the positions' tokens. A candidate is the
    difference of the means, or ``vector_of(harmful_rows, harmless_rows)`` of the train rows at its position."""
    train = {name: read_split(inputs["splits"], name, "train") for name in ("harmful", "harmless")}
    means: dict[str, list[np.ndarray]] = {name: [] for name in train}
    vectors, tokens = [], []
    for path in layer_files(inputs["manifest"]):
        rows = {}
        for name in train:
            positions, tokens = read_positions(path, name)
            rows[name] = positions[train[name]]
            means[name].append(rows[name].mean(axis=0))
        if vector_of is not None:
            vectors.append([vector_of(rows["harmful"][:, position], rows["harmless"][:, position])
                            for position in range(len(tokens))])  # fmt: skip
    stacked = {f"{name}_means": np.stack(rows, axis=1) for name, rows in means.items()}  # [positions, layers, d]
    candidates = stacked["harmful_means"] - stacked["harmless_means"] if vector_of is None else np.stack(vectors, 1)
    return candidates, stacked, tokens


def _save_candidates(path: str, candidates: np.ndarray, means: dict, tokens: list[str], metadata: dict) -> None:
    save_tensors({"candidates": candidates, **means}, path, {
        "layer_convention": LAYER_CONVENTION, "split": "train", "positions": tokens,
        "offsets": list(range(-len(tokens), 0)), "shape": "[position, layer, d_model]", **metadata,
    })  # fmt: skip


def write_candidates(inputs: dict, outputs: dict, model_id: str) -> None:
    """``candidates`` (harmful - harmless means) with the ``harmful_means`` and ``harmless_means``
    [n_positions, n_layers, d_model]: every layer at every kept position (the last token only with
    ``positions: last``). Inputs as write_directions."""
    _save_candidates(outputs["candidates"], *_candidates(inputs), {"model_id": model_id})


def write_method_candidates(inputs: dict, outputs: dict, model_id: str, method: str, settings: dict) -> None:
    """A closed-form method's candidates (stats/direction_methods.py) in the format of write_candidates: its
    vector at every layer and kept position, with both classes' train means beside it (``settings``: the
    method's, directions.<method>; pca's seed)."""
    vector_of = partial(candidate_vector, method, seed=settings.get("seed", 0))
    _save_candidates(outputs["candidates"], *_candidates(inputs, vector_of), {"model_id": model_id, "method": method})
