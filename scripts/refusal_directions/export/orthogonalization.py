"""Directional ablation as a weight edit (Arditi et al. 2024, weight orthogonalization): every matrix that
writes to the residual stream loses its output component along the unit direction r, W <- W - r r^T W (its
bias b <- b - (b . r) r), and every token embedding row e <- e - (e . r) r. The edited model then never writes
r into the residual stream, as the hooks of ``model.hooks.ablate_everywhere`` make it; a tied LM head is
untied first and keeps the original embedding, as under the hooks. Saved as a standard Hugging Face
checkpoint (weights, config, generation config, tokenizer, a model card with provenance), written into a
temporary sibling folder and renamed when complete."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from string import Template

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import load_file

from ..model.hooks import orthonormal_basis
from ..model.loading import DTYPES, load_model, model_location, resolve_device
from ..stats.method_direction import load_method_direction
from ..workflow.errors import UserError
from ..workflow.execution import ExecutionSettings
from ..workflow.integrity import file_sha256
from ..workflow.jsonio import read_json
from ..workflow.permissions import as_new_files, umask
from ..workflow.progress import Progress
from .residual_writers import residual_writer_weights

log = logging.getLogger(__name__)

# Room kept free beyond the checkpoint's estimated size (tokenizer files, safetensors headers, the card).
DISK_MARGIN_BYTES = 64 * 2**20

MODEL_CARD = Template("""---
base_model: $source_id
tags:
- refusal-direction
- weight-orthogonalization
---

# $source_id, refusal direction orthogonalized

The weights of `$source_id` with the direction r below projected out of every matrix that writes to the
residual stream (Arditi et al. 2024, "Refusal in Language Models Is Mediated by a Single Direction",
weight orthogonalization): W <- W - r r^T W for each attention output projection and MLP down projection
(biases b <- b - (b.r) r), and e <- e - (e.r) r for each token embedding row. The LM head keeps the source's
weights (untied from the embedding where the source ties them). Made by the refusal-directions workflow
(rule `orthogonalize_model`); `edited_check.json` next to this folder compares it with the source model
under directional ablation by forward hooks.

| | |
|---|---|
| source model | `$source_id` |
| source revision | $revision |
| source weights | `$weights_revision` |
| direction | $direction_source |
| direction file sha256 | `$direction_sha256` |
| layer | $layer |
| position | $position |
| selection method | $method |
| saved dtype | $dtype |
$method_note""")


def export_direction(inputs: dict, layer: int | None) -> tuple[np.ndarray, dict]:
    """The unit direction r of an export and where it comes from: the selected direction (``layer`` None:
    ``inputs['direction']`` is selected_direction.safetensors, whose metadata say its layer, position and
    selection method) or the train-split direction of ``layer`` (``inputs['direction']`` is
    directions.safetensors). A layer outside the model (the extraction's manifest) is an error before any
    model loads."""
    n_layers = int(read_json(inputs["manifest"])["n_layers"])
    path = inputs["direction"]
    if "basis" in load_file(path):  # a direction method's result (stats/method_direction.py)
        result = load_method_direction(path)
        if result.affine:  # rules/methods.smk exports the linear methods only
            raise UserError(f"{path}: {result.method} is an affine edit, which is applied by hooks only")
        info = {"layer": result.layer, "position": result.position, "method": result.method,
                "source": f"the {result.method} method's direction", "k": result.k}  # fmt: skip
        return result.basis, {**info, "sha256": file_sha256(path)}
    if layer is None:
        unit = load_file(path)["unit"].astype(np.float64)
        with safe_open(path, "numpy") as handle:
            where = json.loads(handle.metadata()["refusal_directions"])
        info = {"layer": int(where["layer"]), "position": int(where["position"]), "method": where["method"],
                "source": "the selected direction"}  # fmt: skip
    else:
        if not 0 <= layer < n_layers:
            raise UserError(f"export.layer: {layer} is outside the model (layers 0-{n_layers - 1})")
        unit = load_file(path)["unit_directions"][layer].astype(np.float64)
        info = {"layer": layer, "position": -1, "method": None, "source": f"the train-split direction of layer {layer}"}
    norm = np.linalg.norm(unit)
    if not np.isfinite(norm) or norm == 0:
        raise UserError(f"{path}: the direction is zero or not finite")
    return unit / norm, {**info, "sha256": file_sha256(path)}


def is_tied(model) -> bool:
    """Whether the LM head and the token embedding share their weights."""
    head, embedding = model.get_output_embeddings(), model.get_input_embeddings()
    return head is not None and head.weight.data_ptr() == embedding.weight.data_ptr()


def untie_lm_head(model) -> bool:
    """Give the LM head its own copy of the embedding when the two share their weights, and mark the
    config untied (so a reload does not tie them again). Whether they were tied."""
    if not is_tied(model):
        return False
    embedding, head = model.get_input_embeddings(), model.get_output_embeddings()
    head.weight = torch.nn.Parameter(embedding.weight.detach().clone(), requires_grad=False)
    for config in {id(c): c for c in (model.config, model.config.get_text_config())}.values():
        config.tie_word_embeddings = False
    return True


@torch.no_grad()
def _remove_output_component(weight: torch.Tensor, basis: torch.Tensor) -> None:
    """W <- W - Q^T Q W on the output side of a [out, in] weight (Q: orthonormal rows), computed in float32."""
    if len(basis) > 1:
        return _remove_axis_component(weight, basis, 0)
    edited = weight.float()
    r = basis[0].to(edited.device)
    edited -= torch.outer(r, r @ edited)  # one direction: r r^T W as an outer product, as it has always been
    weight.copy_(edited.to(weight.dtype))


@torch.no_grad()
def _remove_axis_component(weight: torch.Tensor, basis: torch.Tensor, axis: int) -> None:
    """Remove the span of ``basis`` along ``axis`` of a weight of any shape (fused experts' [experts, out, in]
    or [experts, in, out]), computed in float32."""
    edited = weight.float().movedim(axis, -1)
    q = basis.to(edited.device)
    edited -= (edited @ q.T) @ q
    weight.copy_(edited.movedim(-1, axis).to(weight.dtype))


@torch.no_grad()
def _remove_row_component(rows: torch.Tensor, basis: torch.Tensor) -> None:
    """v <- v - Q^T Q v for each row (embedding rows, a bias as one row), computed in float32."""
    if len(basis) > 1:
        return _remove_axis_component(rows, basis, -1)
    edited = rows.float()
    r = basis[0].to(edited.device)
    edited -= (edited @ r).unsqueeze(-1) * r  # one direction: the dot product, as it has always been
    rows.copy_(edited.to(rows.dtype))


def orthogonalize(model, directions: np.ndarray) -> bool:
    """Project the span of ``directions`` (one [d] or a basis [k, d]) out of every write to the residual stream
    of ``model`` in place, as the hooks of ``model.hooks.ablate_everywhere`` do; a tied LM head is untied
    first. Whether it was tied."""
    basis = torch.as_tensor(orthonormal_basis(directions), dtype=torch.float32)
    tied = untie_lm_head(model)
    _remove_row_component(model.get_input_embeddings().weight, basis)
    writers = residual_writer_weights(model)
    progress = Progress("orthogonalizing the residual-stream writers", len(writers))
    for writer in writers:
        if writer.weight.ndim == 2:  # a linear layer, [out, in]
            _remove_output_component(writer.weight, basis)
        else:
            _remove_axis_component(writer.weight, basis, writer.output_axis)
        if writer.bias is not None and writer.bias.ndim == 1:
            _remove_row_component(writer.bias, basis)
        elif writer.bias is not None:  # fused experts' biases, [experts, out]
            _remove_axis_component(writer.bias, basis, -1)
        progress.update(1)
    return tied


def checkpoint_bytes(model, dtype: torch.dtype, tied: bool) -> int:
    """The saved weights' size: every parameter in ``dtype``, and the LM head's own copy if it was tied."""
    n_values = sum(parameter.numel() for parameter in model.parameters())
    if tied:
        n_values += model.get_input_embeddings().weight.numel()
    return n_values * torch.empty((), dtype=dtype).element_size()


def check_free_space(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed + DISK_MARGIN_BYTES:
        raise UserError(
            f"{folder}: {free / 2**30:.2f} GiB free, the edited checkpoint needs about "
            f"{(needed + DISK_MARGIN_BYTES) / 2**30:.2f} GiB; free some space or move results/"
        )


def _load_tokenizer(location: str, gguf_file: str | None, spec: dict):
    """The source's tokenizer as its files define it (the jobs' loader sets a padding side and token)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(
        location,
        gguf_file=gguf_file,
        revision=None if Path(location).exists() else spec.get("revision"),
        trust_remote_code=spec.get("trust_remote_code", False),
    )


def model_card(spec: dict, manifest: dict, direction: dict, dtype: torch.dtype) -> str:
    revision = spec.get("revision") or "default"
    if spec.get("package"):
        revision += f", the copy shipped in the Python package {spec['package']}"
    if spec.get("gguf_file"):
        revision += f", GGUF file {spec['gguf_file']} (saved from its float32 conversion)"
    return MODEL_CARD.substitute(
        source_id=spec["id"],
        revision=revision,
        weights_revision=manifest["weights_revision"],
        direction_source=direction["source"],
        direction_sha256=direction["sha256"],
        layer=direction["layer"],
        position=direction["position"],
        method=direction["method"] or "none (a configured layer)",
        dtype=str(dtype).removeprefix("torch."),
        method_note=method_note(direction),
    )


def method_note(direction: dict) -> str:
    """What a direction method's basis adds to the card (README: "Direction methods"); nothing for one direction."""
    if direction.get("k", 1) == 1:
        return ""
    return (f"\nThe edit projects out the span of {direction['k']} orthonormal directions (the basis in the direction "
            "file): W <- (I - Q Q^T) W.\n")  # fmt: skip


def _saved_dtype(model, requested: str | None) -> torch.dtype:
    if requested:
        return DTYPES[requested]
    return next(model.parameters()).dtype


def export_edited_model(inputs: dict, outputs: dict, model: dict, export: dict, execution: ExecutionSettings) -> None:
    """The edited checkpoint in the folder ``outputs['edited']``: the source model (a GGUF model's
    converted weights), loaded in its own dtype (or ``export['dtype']``), orthogonalized against the export
    direction (``export['layer']``: None = the selected direction) and saved with its tokenizer and card."""
    unit, direction = export_direction(inputs, export["layer"])
    manifest = read_json(inputs["manifest"])
    final = Path(outputs["edited"])
    final.parent.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(execution.threads)
    location, gguf_file = model_location(model, inputs.get("converted"))
    tokenizer = _load_tokenizer(location, gguf_file, model)
    device = resolve_device(execution.device)
    dtype = DTYPES[export["dtype"]] if export["dtype"] else "auto"
    log.info("loading %s from %s on %s (dtype %s)", model["id"], location, device, dtype)
    source = load_model(location, gguf_file, model, device, dtype, execution.device_map)
    saved_dtype = _saved_dtype(source, export["dtype"])
    check_free_space(final.parent, checkpoint_bytes(source, saved_dtype, is_tied(source)))
    log.info("direction: %s (layer %s, position %s)", direction["source"], direction["layer"], direction["position"])
    if orthogonalize(source, unit):
        log.info("the LM head was tied to the embedding: untied, it keeps the source's weights")
    source.to(saved_dtype)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        staging.chmod(0o777 & ~umask())  # mkdtemp's folder is private; the checkpoint is not
        source.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "README.md").write_text(model_card(model, manifest, direction, saved_dtype))
        as_new_files(staging)  # safetensors writes the weights with mode 0600
        if final.is_dir() and not any(final.iterdir()):
            final.rmdir()
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("wrote %s", final)
