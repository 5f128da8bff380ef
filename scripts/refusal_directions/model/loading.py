"""Load a causal LM and its tokenizer from the Hub, a local folder or a GGUF file; find its decoder blocks."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch

from ..workflow.definition import package_dir
from ..workflow.errors import UserError
from ..workflow.execution import ExecutionSettings
from ..workflow.hub import OFFLINE_HINT, cache_only_unless_reachable
from ..workflow.integrity import file_sha256

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def weights_location(spec: dict) -> tuple[str, str | None]:
    """Where from_pretrained should look: (hub id or folder, gguf file name or None)."""
    if spec.get("package"):
        try:
            return str(package_dir(spec["package"])), spec.get("gguf_file")
        except FileNotFoundError as error:
            raise UserError(str(error)) from error
    return spec["id"], spec.get("gguf_file")


def resolve_device(requested: str) -> torch.device:
    if requested != "auto":
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_dtype(requested: str, device: torch.device) -> torch.dtype:
    if requested == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return DTYPES[requested]


def _offline_guard(location: str) -> None:
    """Fail fast when a Hub id must be fetched and the Hub cannot be reached (cached copies still load)."""
    if not Path(location).exists():
        cache_only_unless_reachable()


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def load_tokenizer(location: str, gguf_file: str | None, spec: dict):
    from transformers import AutoTokenizer

    _offline_guard(location)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            location,
            gguf_file=gguf_file,
            revision=None if Path(location).exists() else spec.get("revision"),
            trust_remote_code=spec.get("trust_remote_code", False),
        )
    except OSError as error:
        raise UserError(f"cannot load tokenizer of '{spec['id']}': {_first_line(error)}; {OFFLINE_HINT}") from error
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def load_model(location: str, gguf_file: str | None, spec: dict, device: torch.device, dtype, device_map=None):
    from transformers import AutoModelForCausalLM

    _offline_guard(location)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            location,
            gguf_file=gguf_file,
            revision=None if Path(location).exists() else spec.get("revision"),
            dtype=dtype,
            device_map=device_map,
            trust_remote_code=spec.get("trust_remote_code", False),
        )
    except OSError as error:
        raise UserError(f"cannot load model '{spec['id']}': {_first_line(error)}; {OFFLINE_HINT}") from error
    if device_map is None:
        model.to(device)
    model.eval()
    return model


CONVERTED_SOURCE = "source.json"


def weights_revision(model, location: str, gguf_file: str | None) -> str:
    """A string that pins the exact weights: the Hub commit, or sha256 of the weight files
    (for a converted GGUF folder, the hash of the GGUF file it came from)."""
    commit = getattr(model.config, "_commit_hash", None)
    folder = Path(location)
    if (folder / CONVERTED_SOURCE).exists():
        return json.loads((folder / CONVERTED_SOURCE).read_text())["weights_revision"]
    if gguf_file:
        return "sha256:" + file_sha256(folder / gguf_file)
    if folder.is_dir():
        digest = hashlib.sha256()
        for weights in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
            digest.update(weights.name.encode())
            digest.update(file_sha256(weights).encode())
        return "sha256:" + digest.hexdigest()
    return f"commit:{commit}" if commit else "unknown"


def decoder_layers(model) -> torch.nn.ModuleList:
    """The model's stack of decoder blocks, whatever the architecture calls it."""
    for path in (
        "model.layers",
        "model.language_model.layers",
        "transformer.h",
        "gpt_neox.layers",
        "model.decoder.layers",
    ):
        module = model
        for attribute in path.split("."):
            module = getattr(module, attribute, None)
            if module is None:
                break
        if isinstance(module, torch.nn.ModuleList):
            return module
    raise UserError(
        f"cannot find the decoder blocks of {type(model).__name__} "
        "(supported: Llama, Qwen, Mistral, Gemma, GPT-2 and NeoX-style models)"
    )


def model_location(spec: dict, converted_dir: str | None) -> tuple[str, str | None]:
    """Where a job loads the model from: the converted folder of a GGUF model, else the Hub or a folder."""
    return (converted_dir, None) if converted_dir else weights_location(spec)


def context_length(location: str, gguf_file: str | None, spec: dict) -> int | None:
    """The model's context length (max_position_embeddings) from its config, without loading weights."""
    from transformers import AutoConfig

    _offline_guard(location)
    config = AutoConfig.from_pretrained(
        location,
        gguf_file=gguf_file,
        revision=None if Path(location).exists() else spec.get("revision"),
        trust_remote_code=spec.get("trust_remote_code", False),
    )
    value = getattr(config.get_text_config(), "max_position_embeddings", None)
    return int(value) if value else None


def load_job_model(spec: dict, location: str, gguf_file: str | None, execution: ExecutionSettings):
    """The model on the job's device in the resolved dtype (auto: CUDA/bf16, else MPS or CPU/fp32), and the
    device its inputs go to."""
    torch.set_num_threads(execution.threads)
    torch_device = resolve_device(execution.device)
    dtype = resolve_dtype(spec["dtype"], torch_device)
    log.info("model %s from %s on %s as %s", spec["id"], location, torch_device, dtype)
    model = load_model(location, gguf_file, spec, torch_device, dtype, execution.device_map)
    # With device_map the model may span devices; inputs go where the embeddings are.
    return model, model.get_input_embeddings().weight.device
