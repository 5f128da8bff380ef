"""Format the sampled prompts with the model's chat template and record every layer's last-token state."""

from __future__ import annotations

import logging
from importlib.metadata import version
from pathlib import Path

import numpy as np

from ..activations import ActivationWriter, write_manifest
from ..extraction import Extractor
from ..modeling import decoder_layers, format_prompt, load_for_job
from ..prompts import read_jsonl, text_hash, write_jsonl

log = logging.getLogger(__name__)


def formatted_prompt_sets(tokenizer, spec: dict, prompt_files: dict[str, str]) -> dict[str, list[dict]]:
    sets = {}
    for name, path in prompt_files.items():
        records = read_jsonl(path)
        for record in records:
            record["formatted"] = format_prompt(
                tokenizer, record["text"], spec["prompt_format"], spec["system_prompt"], spec["id"]
            )
        sets[name] = records
    return sets


def main(
    spec: dict,
    prompt_files: dict[str, str],
    formatted_outputs: dict[str, str],
    activations_dir: str,
    converted_dir: str | None,
    batch_size: int | str,
    device: str,
    device_map: str | None,
    threads: int,
) -> None:
    from tqdm import tqdm

    model, tokenizer, input_device, revision = load_for_job(spec, converted_dir, device, device_map, threads)
    n_layers = len(decoder_layers(model))
    d_model = model.config.get_text_config().hidden_size

    sets = formatted_prompt_sets(tokenizer, spec, prompt_files)
    for name, records in sets.items():
        write_jsonl(formatted_outputs[name], records)
    hashes = {name: text_hash([r["formatted"] for r in records]) for name, records in sets.items()}
    attrs = {
        "model_id": spec["id"],
        "weights_revision": revision,
        "dtype": str(model.dtype).removeprefix("torch."),
        "prompt_set_hash": text_hash([hashes[name] for name in sorted(hashes)]),
    }
    set_attrs = {name: {"prompt_hash": digest} for name, digest in hashes.items()}
    writer = ActivationWriter(
        activations_dir, n_layers, d_model, {name: len(records) for name, records in sets.items()}, attrs, set_attrs
    )
    # A prompt in several sets (e.g. the harmless set and the control's imperatives) runs once.
    destinations: dict[str, list[tuple[str, int]]] = {}
    for name, records in sets.items():
        for row, record in enumerate(records):
            destinations.setdefault(record["formatted"], []).append((name, row))
    texts = list(destinations)

    def write_batch(indices, per_layer):
        by_set: dict[str, tuple[list[int], list[int]]] = {}
        for position, index in enumerate(indices):
            for name, row in destinations[texts[index]]:
                by_set.setdefault(name, ([], []))
                by_set[name][0].append(row)
                by_set[name][1].append(position)
        for name, (rows, positions) in by_set.items():
            writer.write(name, np.array(rows), [values[positions] for values in per_layer])

    progress = tqdm(total=len(texts), desc="extracting", unit="prompt", mininterval=2.0)
    try:
        extractor = Extractor(model, tokenizer, input_device, batch_size, progress)
        extractor.run(texts, write_batch)
    finally:
        progress.close()
        writer.close()
    write_manifest(
        activations_dir,
        {
            **attrs,
            "n_layers": n_layers,
            "d_model": d_model,
            "sets": {name: len(records) for name, records in sets.items()},
            "set_hashes": hashes,
            "layer_files": sorted(p.name for p in Path(activations_dir).glob("layer_*.h5")),
            "package_versions": {p: version(p) for p in ("torch", "transformers", "tokenizers", "h5py")},
        },
    )
    log.info(
        "wrote %d layers x %d distinct prompts to %s (final batch size %d)",
        n_layers,
        len(texts),
        activations_dir,
        extractor.batch_size,
    )
