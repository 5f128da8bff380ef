"""Shared by the tests of the edited model and of its cost: the tiny source model's settings, a selected
direction to export, and the export itself (the fixture ``biased_tied_model`` lives in conftest.py)."""

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from refusal_directions.export.orthogonalization import export_edited_model
from refusal_directions.workflow.execution import ExecutionSettings

N_LAYERS, HIDDEN = 3, 32
PROMPTS = [[1, 5, 9, 40, 77, 3], [1, 8, 8, 120, 200, 31, 60], [1, 300, 12]]
NEW_TOKENS = 8


def spec_of(folder: Path) -> dict:
    return {"id": str(folder), "revision": None, "package": None, "gguf_file": None, "trust_remote_code": False,
            "dtype": "float32", "prompt_format": "chat", "system_prompt": None}  # fmt: skip


def direction_inputs(folder: Path, seed: int = 0) -> tuple[dict, np.ndarray]:
    """A selected direction (safetensors with its layer and position), its summary and a manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    direction = np.random.default_rng(seed).normal(size=HIDDEN).astype(np.float32) * 5
    unit = direction / np.linalg.norm(direction)
    metadata = {"refusal_directions": json.dumps({"layer": 1, "position": -1, "method": "refusal_score"})}
    save_file({"direction": direction, "unit": unit}, str(folder / "selected.safetensors"), metadata=metadata)
    save_file({"unit_directions": np.stack([unit] * N_LAYERS)}, str(folder / "directions.safetensors"))
    (folder / "manifest.json").write_text(json.dumps({"n_layers": N_LAYERS, "weights_revision": "sha256:abc"}))
    inputs = {"direction": str(folder / "selected.safetensors"), "manifest": str(folder / "manifest.json")}
    return inputs, unit.astype(np.float64)


def export(source: Path, tmp_path: Path, **settings) -> tuple[Path, np.ndarray]:
    inputs, unit = direction_inputs(tmp_path / "inputs")
    edited = tmp_path / "results" / "edited"
    export_edited_model(inputs, {"edited": str(edited)}, spec_of(source), {"dtype": None, "layer": None, **settings},
                        ExecutionSettings(device="cpu"))  # fmt: skip
    return edited, unit
