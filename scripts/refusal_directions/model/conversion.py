"""Convert a GGUF model once into a plain transformers folder, so later jobs load it in seconds.

Dequantising the GGUF tensors and converting its tokenizer cost tens of seconds; the converted
folder (float32 safetensors + tokenizer files) loads from disk without either step.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from ..workflow.errors import UserError
from ..workflow.integrity import file_sha256
from ..workflow.permissions import as_new_files
from .loading import CONVERTED_SOURCE, load_model, load_tokenizer, weights_location

log = logging.getLogger(__name__)


def convert_gguf_model(inputs: dict, outputs: dict, model: dict) -> None:
    """Dequantise a GGUF model (``model``: what its config entry says of the file; ``inputs``: the ``gguf``
    file it names) into float32 safetensors in the folder ``converted`` and save its tokenizer, with a
    source.json that pins the GGUF file it came from."""
    location, gguf_file = weights_location(model)
    log.info("converting %s/%s", location, gguf_file)
    tokenizer = load_tokenizer(location, gguf_file, model)
    loaded = load_model(location, gguf_file, model, torch.device("cpu"), torch.float32)
    quantizer = getattr(loaded, "hf_quantizer", None)
    if getattr(quantizer, "supported", False):
        raise UserError(f"{gguf_file} loads as packed GGUF blocks, which cannot be saved as plain weights")
    # The weights are fully dequantised float32 tensors; only the GGUF marker blocks saving them.
    loaded.hf_quantizer = None
    if hasattr(loaded.config, "quantization_config"):
        del loaded.config.quantization_config
    out = Path(outputs["converted"])
    loaded.save_pretrained(out)
    tokenizer.save_pretrained(out)
    as_new_files(out)  # safetensors writes the weights with mode 0600
    source = {
        "id": model["id"],
        "gguf_file": gguf_file,
        "weights_revision": "sha256:" + file_sha256(Path(location, gguf_file)),
    }
    (out / CONVERTED_SOURCE).write_text(json.dumps(source, indent=2) + "\n")
    log.info("wrote %s", out)
