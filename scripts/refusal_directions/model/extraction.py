"""Last-token residual stream of every decoder block, batched by length and streamed to HDF5 files."""

from __future__ import annotations

import hashlib
import logging
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.chat_format import PromptFormat, formatted_prompt_sets
from ..data.prompt_sets import MAIN_SETS
from ..workflow.errors import UserError
from ..workflow.execution import ExecutionSettings
from ..workflow.jsonio import write_jsonl
from ..workflow.progress import Progress
from .activations import REFUSAL_SCORES, ActivationWriter, write_manifest, write_whole
from .forward import ModelRunner, PositionRecorder
from .job import ModelJob
from .loading import context_length, decoder_layers, weights_revision
from .refusal_score import refusal_scores, refusal_token_ids
from .resume import ResumeState

log = logging.getLogger(__name__)


class Extractor:
    """Runs a model over tokenized prompts and hands each batch's rows to ``sink(indices, per_layer,
    scores)``: the batch's positions in the prompt list, one float32 array [batch, n_positions, d_model]
    per layer (the last position last), and each prompt's refusal score (None without refusal tokens)."""

    def __init__(self, runner: ModelRunner, n_positions: int = 1, refusal_tokens: list[int] | None = None):
        self.runner = runner
        self.n_positions = n_positions
        self.refusal_tokens = refusal_tokens

    def run(self, token_ids: list[list[int]], sink, progress: Progress | None = None,
            resume: ResumeState | None = None) -> None:  # fmt: skip
        """With ``resume``, each batch is kept as soon as it is done, and a batch an earlier run finished is
        handed to ``sink`` from there instead of running again."""
        recorder = PositionRecorder(self.runner.model, self.n_positions)

        def handle(indices, logits):
            per_layer = recorder.rows()
            scores = refusal_scores(logits, self.refusal_tokens) if self.refusal_tokens else None
            if resume is not None:
                tensors = {f"layer_{layer}": values for layer, values in enumerate(per_layer)}
                resume.save(indices, tensors if scores is None else {**tensors, "scores": scores})
            sink(indices, per_layer, scores)

        def replay(indices) -> bool:
            saved = resume.saved(indices) if resume is not None else None
            if saved is None:
                return False
            sink(indices, [saved[f"layer_{layer}"] for layer in range(len(recorder.captured))], saved.get("scores"))
            return True

        try:
            self.runner.each_batch(token_ids, handle, progress, keep=self.n_positions, replay=replay)
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
    inputs: dict,
    outputs: dict,
    model: dict,
    datasets: list[str],
    positions: str,
    refusal_score: dict,
    execution: ExecutionSettings,
) -> None:
    """Format the sampled prompts (``inputs["prompts"]``, one file per dataset of ``datasets``) with the
    chat template of ``model`` (its config entry) and record every layer's residual stream at the last token
    (and, with ``positions: post_instruction``, at every template token after the user's text) and each
    prompt's refusal score: one HDF5 file per layer, refusal_scores.csv and a manifest with each file's
    sha256 in the folder ``activations``, and the formatted ``prompts``. Prompt lengths are checked before
    the model loads."""
    spec, activations_dir = model, outputs["activations"]
    prompt_files = dict(zip(datasets, inputs["prompts"], strict=True))
    formatted_outputs = dict(zip(datasets, outputs["prompts"], strict=True))
    job = ModelJob.open(spec, inputs)
    prompt_format = job.prompt_format
    position_tokens = post_instruction_tokens(prompt_format, positions)
    refusal_tokens = refusal_token_ids(job.tokenizer, refusal_score["prefixes"], refusal_score["token_ids"])
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
        limit, where = context_length(job.location, job.gguf_file, spec), "the model's context length"
    by_id = {record["id"]: encoded[record["formatted"]] for records in sets.values() for record in records}
    check_prompt_lengths(by_id, limit, where)
    for name, records in sets.items():
        write_jsonl(formatted_outputs[name], records)

    job.load_weights(execution)
    n_layers = len(decoder_layers(job.model))
    d_model = job.model.config.get_text_config().hidden_size
    hashes = {name: text_hash([r["formatted"] for r in records]) for name, records in sets.items()}
    attrs = {
        "model_id": spec["id"],
        "weights_revision": weights_revision(job.model, job.location, job.gguf_file),
        "dtype": str(job.model.dtype).removeprefix("torch."),
        "prompt_set_hash": text_hash([hashes[name] for name in sorted(hashes)]),
    }
    set_attrs = {name: {"prompt_hash": digest} for name, digest in hashes.items()}
    writer = ActivationWriter(
        activations_dir, n_layers, d_model, {name: len(records) for name, records in sets.items()}, attrs, set_attrs,
        positions=position_tokens if positions == "post_instruction" else None, position_sets=MAIN_SETS,
    )  # fmt: skip
    scores = {name: np.full(len(records), np.nan) for name, records in sets.items()}

    def write_batch(indices, per_layer, batch_scores):
        by_set: dict[str, tuple[list[int], list[int]]] = {}
        for position, index in enumerate(indices):
            for name, row in destinations[texts[index]]:
                by_set.setdefault(name, ([], []))
                by_set[name][0].append(row)
                by_set[name][1].append(position)
        for name, (rows, batch_positions) in by_set.items():
            writer.write(name, np.array(rows), [values[batch_positions] for values in per_layer])
            scores[name][rows] = batch_scores[batch_positions]

    runner = job.runner
    extractor = Extractor(runner, len(position_tokens), refusal_tokens)
    resume = ResumeState(execution.resume)
    try:
        extractor.run([encoded[text] for text in texts], write_batch, Progress("extraction", len(texts)), resume)
    finally:
        writer.close()
    sha256 = writer.commit()
    sha256[REFUSAL_SCORES] = write_whole(
        Path(activations_dir, REFUSAL_SCORES),
        lambda path: refusal_score_table(sets, scores).to_csv(path, index=False, float_format="%.6f"),
    )
    write_manifest(
        activations_dir,
        {
            **attrs,
            "n_layers": n_layers,
            "d_model": d_model,
            "sets": {name: len(records) for name, records in sets.items()},
            "set_hashes": hashes,
            "layer_files": sorted(name for name in sha256 if name.endswith(".h5")),
            "positions": positions,
            "post_instruction_tokens": position_tokens,
            "refusal_token_ids": refusal_tokens,
            "refusal_tokens": [job.tokenizer.decode([token]) for token in refusal_tokens],
            "sha256": sha256,
            "package_versions": {p: version(p) for p in ("torch", "transformers", "tokenizers", "h5py")},
        },
    )
    log.info(
        "wrote %d layers x %d distinct prompts x %d position(s) to %s (final batch limits: %d prompts, %d tokens)",
        n_layers, len(texts), len(position_tokens), activations_dir, runner.batches.max_prompts,
        runner.batches.max_tokens,
    )  # fmt: skip


def post_instruction_tokens(prompt_format: PromptFormat, positions: str) -> list[str]:
    """The tokens whose activations are kept, decoded: the template tokens after the user's text with
    ``positions: post_instruction``, else the last token only."""
    if positions == "last":
        return ["(last token)"]
    if not prompt_format.suffix_ids:
        raise UserError(
            "positions: post_instruction needs a chat template that adds tokens after the user's text; "
            "this model's prompt_format is raw"
        )
    return [prompt_format.tokenizer.decode([token]) for token in prompt_format.suffix_ids]


def refusal_score_table(sets: dict[str, list[dict]], scores: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per prompt of every set: set, row, id, refusal_score."""
    return pd.DataFrame(
        [
            {"set": name, "row": row, "id": record["id"], "refusal_score": scores[name][row]}
            for name, records in sets.items()
            for row, record in enumerate(records)
        ]  # fmt: skip
    )
