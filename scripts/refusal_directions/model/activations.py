"""HDF5 activation files: one file per layer, one float32 dataset [n_prompts, d_model] per prompt set (the
last token), and with ``positions: post_instruction`` a group ``post_instruction`` holding [n_prompts,
n_positions, d_model] for the main sets: every token the chat template appends after the user's text."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from ..workflow.integrity import MANIFEST, file_sha256, read_manifest, verify_file

LAYER_CONVENTION = (
    "layer l = residual stream output of decoder block l (0-based) at the last prompt token, before the "
    "final norm, captured with a forward hook; output_hidden_states[l + 1] for l < L - 1 (entry 0 of "
    "output_hidden_states is the embedding output, its last entry is after the final norm)"
)
# A layer file is written under this suffix and renamed when complete: a file at its final path is whole.
PARTIAL = ".partial"
POSITIONS_GROUP = "post_instruction"
# Beside the layer files: each prompt's refusal score (refusal_score.py), written by the same extraction.
REFUSAL_SCORES = "refusal_scores.csv"


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

    Files are written under a temporary name; ``commit`` renames them once every row is in place.
    ``positions``: the post-instruction tokens (decoded) to keep for the sets in ``position_sets``.
    """

    def __init__(
        self,
        folder: str | Path,
        n_layers: int,
        d_model: int,
        set_sizes: dict[str, int],
        attrs: dict,
        set_attrs: dict[str, dict],
        positions: list[str] | None = None,
        position_sets: tuple[str, ...] = (),
    ):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.paths = [layer_path(self.folder, layer, n_layers) for layer in range(n_layers)]
        self.position_sets = tuple(name for name in position_sets if name in set_sizes) if positions else ()
        self.files = []
        for layer, path in enumerate(self.paths):
            handle = h5py.File(path.with_name(path.name + PARTIAL), "w")
            handle.attrs.update({**attrs, "layer": layer, "n_layers": n_layers, "layer_convention": LAYER_CONVENTION})
            for name, size in set_sizes.items():
                dataset = handle.create_dataset(name, shape=(size, d_model), dtype="float32", dcpl=_early_allocation())
                dataset.attrs.update(set_attrs.get(name, {}))
            if self.position_sets:
                group = handle.create_group(POSITIONS_GROUP)
                group.attrs.update({"tokens": positions, "offsets": list(range(-len(positions), 0))})
                for name in self.position_sets:
                    group.create_dataset(name, shape=(set_sizes[name], len(positions), d_model), dtype="float32",
                                         dcpl=_early_allocation())  # fmt: skip
            self.files.append(handle)

    def write(self, set_name: str, rows: np.ndarray, per_layer: list[np.ndarray]) -> None:
        """Write ``per_layer[l][i]`` ([n_positions, d_model], the last position last) to row ``rows[i]`` of
        set ``set_name`` in layer l."""
        order = np.argsort(rows)
        for handle, values in zip(self.files, per_layer, strict=True):
            handle[set_name][rows[order].tolist()] = values[order, -1]
            if set_name in self.position_sets:
                handle[POSITIONS_GROUP][set_name][rows[order].tolist()] = values[order]

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


def write_whole(path: Path, write) -> str:
    """Write a file under a temporary name with ``write(temporary_path)``, rename it, return its sha256."""
    partial = path.with_name(path.name + PARTIAL)
    write(partial)
    os.replace(partial, path)
    return file_sha256(path)


def write_manifest(folder: str | Path, manifest: dict) -> None:
    Path(folder, MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def read_refusal_scores(manifest_path: str | Path):
    """The extraction's refusal_scores.csv (checked against its manifest) as a DataFrame."""
    import pandas as pd

    path = Path(manifest_path).parent / REFUSAL_SCORES
    verify_file(path)
    return pd.read_csv(path)


def layer_files(manifest_path: str | Path) -> list[Path]:
    """The layer files of an extraction, in layer order."""
    manifest_path = Path(manifest_path)
    return [manifest_path.parent / name for name in read_manifest(manifest_path.parent)["layer_files"]]


def read_layer(path: str | Path, sets: tuple[str, ...] | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """All (or the named) prompt sets of one layer file as float64 arrays [n, d_model] (the last token),
    plus the file attributes.

    The file is checked against its manifest first: a damaged file stops the job with one line."""
    verify_file(path)
    with h5py.File(path, "r") as handle:
        names = sets or tuple(name for name, item in handle.items() if isinstance(item, h5py.Dataset))
        arrays = {name: handle[name][...].astype(np.float64) for name in names}
        attrs = {key: (value.item() if hasattr(value, "item") else value) for key, value in handle.attrs.items()}
    return arrays, attrs


def read_positions(path: str | Path, set_name: str) -> tuple[np.ndarray, list[str]]:
    """One set's post-instruction activations [n, n_positions, d_model] as float64, and the tokens; the
    last token alone [n, 1, d_model] when the extraction kept only it (``positions: last``)."""
    verify_file(path)
    with h5py.File(path, "r") as handle:
        if POSITIONS_GROUP in handle:
            group = handle[POSITIONS_GROUP]
            return group[set_name][...].astype(np.float64), [str(token) for token in group.attrs["tokens"]]
        return handle[set_name][...].astype(np.float64)[:, None, :], ["(last token)"]
