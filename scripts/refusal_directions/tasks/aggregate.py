"""Collect the per-layer results of one model into the tables, summary and direction files."""

from __future__ import annotations

import json
import logging
import pickle
from importlib.metadata import version

import numpy as np
from safetensors.numpy import load_file, save_file

from ..activations import LAYER_CONVENTION
from ..jsonio import read_json, write_json
from ..tables import permutation_floor, strongest_layer, top_layers, validation_table

log = logging.getLogger(__name__)
SUMMARY_PACKAGES = ("numpy", "scipy", "pandas", "h5py", "mpmath", "safetensors", "snakemake")


def _installed(package: str) -> str | None:
    try:
        return version(package)
    except Exception:
        return None


def main(
    layer_stats: list[str],
    layer_directions: list[str],
    manifest_path: str,
    outputs: dict[str, str],
    model: dict,
    statistics: dict,
    control: dict | None,
    config_hash: str,
) -> None:
    alpha, d_min = statistics["alpha"], statistics["d_min"]
    manifest = read_json(manifest_path)
    table = validation_table([read_json(path) for path in layer_stats], alpha, d_min)
    table.to_csv(outputs["validation"], index=False)
    top_layers(table).to_csv(outputs["top10"], index=False)

    directions = [load_file(path) for path in layer_directions]
    units = np.stack([d["unit"] for d in directions])
    save_file(
        {"unit_directions": units, "mean_differences": np.stack([d["diff"] for d in directions])},
        outputs["directions"],
        # One metadata key: safetensors writes several keys in a random order, which would change the bytes.
        metadata={
            "refusal_directions": json.dumps(
                {"model_id": model["id"], "layer_convention": LAYER_CONVENTION, "rows": "layer 0 .. L-1"},
                sort_keys=True,
            )
        },
    )
    valid_layers = [int(layer) for layer in table.loc[table["valid"], "layer"]]
    with open(outputs["pickle"], "wb") as handle:
        pickle.dump({layer: units[layer].copy() for layer in valid_layers}, handle, protocol=4)

    n_permutations = statistics["n_permutations"]
    floor = permutation_floor(len(table), n_permutations)
    if floor >= alpha:
        log.warning(
            "with %d permutations and %d layers the smallest Holm-adjusted p is %.3g >= alpha = %g: "
            "no layer can be valid; raise n_permutations above %d",
            n_permutations, len(table), floor, alpha, int(len(table) / alpha),
        )  # fmt: skip
    summary = {
        "model": {"slug": model["slug"], "id": model["id"], "weights_revision": manifest["weights_revision"]},
        "dtype": manifest["dtype"],
        "n_harmful": manifest["sets"]["harmful"],
        "n_harmless": manifest["sets"]["harmless"],
        "n_layers": manifest["n_layers"],
        "d_model": manifest["d_model"],
        "layer_convention": LAYER_CONVENTION,
        "valid_rule": "held-out Cohen's d > d_min and Holm-adjusted permutation p < alpha",
        "valid_layers": valid_layers,
        "n_valid_layers": len(valid_layers),
        "valid_seed_rule_layers": [int(layer) for layer in table.loc[table["valid_seed_rule"], "layer"]],
        "strongest_layer": strongest_layer(table, "cohens_d"),
        "strongest_heldout_layer": strongest_layer(table, "cohens_d_heldout"),
        "thresholds": {"alpha": alpha, "d_min": d_min},
        "statistics": statistics,
        "smallest_attainable_p_holm": floor,
        "control": control,
        "n_control": {role: manifest["sets"][name] for role, name in (control or {}).items()},
        "package_versions": {**manifest["package_versions"], **{p: _installed(p) for p in SUMMARY_PACKAGES}},
        "config_hash": config_hash,
    }
    write_json(outputs["summary"], summary)
    log.info("%d of %d layers valid; strongest %s", len(valid_layers), len(table), summary["strongest_layer"])
