"""Last-token residual stream of every decoder block, batched by length and streamed to HDF5 files."""

from __future__ import annotations

import hashlib
import logging
from importlib.metadata import version

import numpy as np
import torch

from .activations import ActivationWriter, write_manifest
from .batching import BatchRunner, left_padded
from .chat_format import PromptFormat, formatted_prompt_sets
from .errors import UserError
from .execution import ExecutionSettings
from .jsonio import write_jsonl
from .modeling import context_length, decoder_layers, load_job_model, load_tokenizer, model_location, weights_revision
from .progress import Progress

log = logging.getLogger(__name__)


class LastTokenRecorder:
    """Forward hooks that keep only the last position of each block's output (no full hidden states)."""

    def __init__(self, model):
        self.captured: list[torch.Tensor | None] = []
        self.handles = []
        for index, block in enumerate(decoder_layers(model)):
            self.captured.append(None)
            self.handles.append(block.register_forward_hook(self._hook(index)))

    def _hook(self, index: int):
        def keep_last_token(_module, _inputs, output):
            hidden = output[0] if isinstance(output, tuple) else output
            # A copy, not a view: a view would keep the block's whole [batch, seq, d] output alive.
            self.captured[index] = hidden[:, -1, :].to(torch.float32, copy=True)

        return keep_last_token

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


class Extractor:
    """Runs a model over tokenized prompts and hands each batch's per-layer last-token rows to ``sink``.

    ``sink(indices, per_layer)`` receives the batch's positions in the prompt list and one float32 array
    [batch, d_model] per layer. Batches are bounded by ``runner`` (batching.BatchRunner).
    """

    def __init__(self, model, pad_id: int, device, runner: BatchRunner):
        self.model = model
        self.pad_id = pad_id
        self.device = device
        self.runner = runner
        # The LM head is never needed: run the base model only.
        self.body = getattr(model, model.base_model_prefix, model)

    def _forward(self, token_ids: list[list[int]], recorder: LastTokenRecorder) -> list[np.ndarray]:
        batch = left_padded(token_ids, self.pad_id, self.device)
        with torch.inference_mode():
            self.body(**batch, use_cache=False)
        rows = [captured.cpu().numpy() for captured in recorder.captured]
        if not all(np.isfinite(values).all() for values in rows):
            raise UserError("the model produced NaN or inf activations; try dtype: float32 in the model's config entry")
        return rows

    def run(self, token_ids: list[list[int]], sink, progress: Progress | None = None) -> None:
        recorder = LastTokenRecorder(self.model)

        def process(indices):
            sink(indices, self._forward([token_ids[i] for i in indices], recorder))

        try:
            self.runner.run([len(ids) for ids in token_ids], process, progress)
        finally:
            recorder.remove()


def text_hash(texts: list[str]) -> str:
    """sha256 over the exact strings, in order: identifies a prompt set as the model saw it."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def check_prompt_lengths(token_ids: dict[str, list[int]], limit: int | None, where: str) -> None:
    """Stop before the model runs if any prompt (id -> token ids) is longer than ``limit`` tokens."""
    if limit is None:
        return
    too_long = sorted((prompt_id for prompt_id, ids in token_ids.items() if len(ids) > limit), key=str)
    if too_long:
        longest = max(len(token_ids[prompt_id]) for prompt_id in too_long)
        shown = ", ".join(too_long[:5]) + (f" and {len(too_long) - 5} more" if len(too_long) > 5 else "")
        raise UserError(
            f"{len(too_long)} prompt(s) longer than {limit} tokens ({where}; the longest has {longest}): {shown}; "
            "shorten or drop them, or raise max_prompt_tokens"
        )


def extract_activations(
    spec: dict,
    prompt_files: dict[str, str],
    formatted_outputs: dict[str, str],
    activations_dir: str,
    converted_dir: str | None,
    execution: ExecutionSettings,
) -> None:
    """Format the sampled prompts with the model's chat template and record every layer's last-token state:
    one HDF5 file per layer, the formatted prompts, and a manifest with each layer file's sha256. Prompt
    lengths are checked before the model is loaded."""
    location, gguf_file = model_location(spec, converted_dir)
    tokenizer = load_tokenizer(location, gguf_file, spec)
    prompt_format = PromptFormat(tokenizer, spec["prompt_format"], spec["system_prompt"], spec["id"])
    sets = formatted_prompt_sets(prompt_format, prompt_files)
    # A prompt in several sets (e.g. the harmless set and the control's imperatives) runs once.
    destinations: dict[str, list[tuple[str, int]]] = {}
    encoded: dict[str, list[int]] = {}
    for name, records in sets.items():
        for row, record in enumerate(records):
            destinations.setdefault(record["formatted"], []).append((name, row))
            encoded.setdefault(record["formatted"], prompt_format.encode(record["text"]))
    texts = list(destinations)
    limit, where = execution.max_prompt_tokens, "max_prompt_tokens"
    if limit is None:
        limit, where = context_length(location, gguf_file, spec), "the model's context length"
    by_id = {record["id"]: encoded[record["formatted"]] for records in sets.values() for record in records}
    check_prompt_lengths(by_id, limit, where)
    for name, records in sets.items():
        write_jsonl(formatted_outputs[name], records)

    model, input_device = load_job_model(spec, location, gguf_file, execution)
    n_layers = len(decoder_layers(model))
    d_model = model.config.get_text_config().hidden_size
    hashes = {name: text_hash([r["formatted"] for r in records]) for name, records in sets.items()}
    attrs = {
        "model_id": spec["id"],
        "weights_revision": weights_revision(model, location, gguf_file),
        "dtype": str(model.dtype).removeprefix("torch."),
        "prompt_set_hash": text_hash([hashes[name] for name in sorted(hashes)]),
    }
    set_attrs = {name: {"prompt_hash": digest} for name, digest in hashes.items()}
    writer = ActivationWriter(
        activations_dir, n_layers, d_model, {name: len(records) for name, records in sets.items()}, attrs, set_attrs
    )

    def write_batch(indices, per_layer):
        by_set: dict[str, tuple[list[int], list[int]]] = {}
        for position, index in enumerate(indices):
            for name, row in destinations[texts[index]]:
                by_set.setdefault(name, ([], []))
                by_set[name][0].append(row)
                by_set[name][1].append(position)
        for name, (rows, positions) in by_set.items():
            writer.write(name, np.array(rows), [values[positions] for values in per_layer])

    runner = BatchRunner.for_job(execution, model, input_device)
    extractor = Extractor(model, tokenizer.pad_token_id, input_device, runner)
    try:
        extractor.run([encoded[text] for text in texts], write_batch, Progress("extraction", len(texts)))
    finally:
        writer.close()
    layer_sha256 = writer.commit()
    write_manifest(
        activations_dir,
        {
            **attrs,
            "n_layers": n_layers,
            "d_model": d_model,
            "sets": {name: len(records) for name, records in sets.items()},
            "set_hashes": hashes,
            "layer_files": sorted(layer_sha256),
            "layer_sha256": layer_sha256,
            "package_versions": {p: version(p) for p in ("torch", "transformers", "tokenizers", "h5py")},
        },
    )
    log.info(
        "wrote %d layers x %d distinct prompts to %s (final batch limits: %d prompts, %d tokens)",
        n_layers, len(texts), activations_dir, runner.max_prompts, runner.max_tokens,
    )  # fmt: skip
