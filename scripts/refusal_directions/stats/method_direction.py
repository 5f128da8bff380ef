"""One direction method's result in one format (``results/<model>/methods/<method>/direction.safetensors``):
what every later step of the method comparison reads, whichever method made it.

- ``basis`` [k, d]: orthonormal rows; ablation removes their span from every residual-stream writer;
- ``addition`` [d]: what activation addition adds at ``layer``;
- for an affine method, ``ablation_references`` [n_layers, d] (each layer's reference point's component in the
  span: ablation holds the residual stream's component there, instead of zero) and ``addition_target`` (addition
  moves the component in the span to it: the harmful mean's at the direction's layer, instead of adding on top).
The metadata say the method, its layer and position, and where the direction came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

from .direction_methods import AFFINE, METHODS
from .directions import save_tensors


@dataclass(frozen=True)
class MethodDirection:
    method: str
    basis: np.ndarray
    addition: np.ndarray
    layer: int
    position: int
    ablation_references: np.ndarray | None = None
    addition_target: np.ndarray | None = None
    about: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        return len(self.basis)

    @property
    def affine(self) -> bool:
        return METHODS[self.method].edit == AFFINE


def affine_points(unit: np.ndarray, harmless_means: np.ndarray, harmful_mean: np.ndarray) -> dict:
    """ACE's reference points along ``unit``: the harmless means' components at every layer
    (``harmless_means`` [n_layers, d]; ablation holds them) and the harmful mean's at the direction's layer
    (addition moves to it)."""
    return {
        "ablation_references": np.outer(harmless_means @ unit, unit),
        "addition_target": (harmful_mean @ unit) * unit,
    }


def save_method_direction(path: str, direction: MethodDirection) -> None:
    tensors = {"basis": direction.basis, "addition": direction.addition}
    for name in ("ablation_references", "addition_target"):
        if getattr(direction, name) is not None:
            tensors[name] = getattr(direction, name)
    metadata = {"method": direction.method, "layer": direction.layer, "position": direction.position,
                "k": direction.k, **direction.about}  # fmt: skip
    save_tensors(tensors, path, metadata)


def load_method_direction(path: str) -> MethodDirection:
    tensors = {name: value.astype(np.float64) for name, value in load_file(path).items()}
    with safe_open(path, "numpy") as handle:
        metadata = json.loads(handle.metadata()["refusal_directions"])
    about = {key: value for key, value in metadata.items() if key not in ("method", "layer", "position", "k")}
    return MethodDirection(
        metadata["method"], tensors["basis"], tensors["addition"], int(metadata["layer"]), int(metadata["position"]),
        tensors.get("ablation_references"), tensors.get("addition_target"), about,
    )  # fmt: skip


def write_selected_method_direction(inputs: dict, outputs: dict, method: str) -> None:
    """A closed-form method's direction.safetensors from its selection: the selected candidate
    (``inputs['selected']``) and, for an affine method, both classes' train means at its layer and position
    (``inputs['candidates']``)."""
    selected = load_file(inputs["selected"])
    with safe_open(inputs["selected"], "numpy") as handle:
        where = json.loads(handle.metadata()["refusal_directions"])
    direction = selected["direction"].astype(np.float64)
    unit = direction / np.linalg.norm(direction)
    layer, position = int(where["layer"]), int(where["position"])
    points = {}
    if METHODS[method].edit == AFFINE:
        candidates = load_file(inputs["candidates"])
        index = len(candidates["candidates"]) + position
        points = affine_points(unit, candidates["harmless_means"][index].astype(np.float64),
                               candidates["harmful_means"][index, layer].astype(np.float64))  # fmt: skip
    addition = points.get("addition_target", direction)
    save_method_direction(outputs["direction"], MethodDirection(
        method, unit[None], addition, layer, position, **points,
        about={"selection": where["method"], "source": "the selected candidate"},
    ))  # fmt: skip
