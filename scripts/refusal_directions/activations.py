"""HDF5 activation files: one file per layer, one float32 dataset [n_prompts, d_model] per prompt set."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from .integrity import MANIFEST, file_sha256, read_manifest, verify_layer_file

LAYER_CONVENTION = (
    "layer l = residual stream output of decoder block l (0-based) at the last prompt token, before the "
    "final norm, captured with a forward hook; output_hidden_states[l + 1] for l < L - 1 (entry 0 of "
    "output_hidden_states is the embedding output, its last entry is after the final norm)"
)
# A layer file is written under this suffix and renamed when complete: a file at its final path is whole.
PARTIAL = ".partial"


def layer_name(layer: int, n_layers: int) -> str:
    """Zero-padded layer label: two digits, more only for models with 100+ layers."""
    return f"{layer:0{max(2, len(str(n_layers - 1)))}d}"


def layer_path(folder: str | Path, layer: int, n_layers: int) -> Path:
    return Path(folder) / f"layer_{layer_name(layer, n_layers)}.h5"


def _early_allocation():
    """Contiguous storage allocated when the dataset is created: the file layout then does not depend on
    the order in which batches arrive, so equal activations give byte-identical files (Snakemake compares
    checksums and reruns nothing downstream of an unchanged file)."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    return dcpl


class ActivationWriter:
    """Streams per-layer rows into preallocated HDF5 datasets, so memory never holds all activations.

    Files are written under a temporary name; ``commit`` renames them once every row is in place."""

    def __init__(
        self,
        folder: str | Path,
        n_layers: int,
        d_model: int,
        set_sizes: dict[str, int],
        attrs: dict,
        set_attrs: dict[str, dict],
    ):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.paths = [layer_path(self.folder, layer, n_layers) for layer in range(n_layers)]
        self.files = []
        for layer, path in enumerate(self.paths):
            handle = h5py.File(path.with_name(path.name + PARTIAL), "w")
            handle.attrs.update({**attrs, "layer": layer, "n_layers": n_layers, "layer_convention": LAYER_CONVENTION})
            for name, size in set_sizes.items():
                dataset = handle.create_dataset(name, shape=(size, d_model), dtype="float32", dcpl=_early_allocation())
                dataset.attrs.update(set_attrs.get(name, {}))
            self.files.append(handle)

    def write(self, set_name: str, rows: np.ndarray, per_layer: list[np.ndarray]) -> None:
        """Write activations ``per_layer[l][i]`` to row ``rows[i]`` of set ``set_name`` in layer l."""
        order = np.argsort(rows)
        for handle, values in zip(self.files, per_layer, strict=True):
            handle[set_name][rows[order].tolist()] = values[order]

    def close(self) -> None:
        for handle in self.files:
            handle.close()

    def commit(self) -> dict[str, str]:
        """Close and move every file to its final name; returns the sha256 of each, by file name."""
        self.close()
        hashes = {}
        for path in self.paths:
            os.replace(path.with_name(path.name + PARTIAL), path)
            hashes[path.name] = file_sha256(path)
        return hashes


def write_manifest(folder: str | Path, manifest: dict) -> None:
    Path(folder, MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def layer_files(manifest_path: str | Path) -> list[Path]:
    """The layer files of an extraction, in layer order."""
    manifest_path = Path(manifest_path)
    return [manifest_path.parent / name for name in read_manifest(manifest_path.parent)["layer_files"]]


def read_layer(path: str | Path, sets: tuple[str, ...] | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """All (or the named) prompt sets of one layer file as float64 arrays, plus the file attributes.

    The file is checked against its manifest first: a damaged file stops the job with one line."""
    verify_layer_file(path)
    with h5py.File(path, "r") as handle:
        names = sets or tuple(handle.keys())
        arrays = {name: handle[name][...].astype(np.float64) for name in names}
        attrs = {key: (value.item() if hasattr(value, "item") else value) for key, value in handle.attrs.items()}
    return arrays, attrs
