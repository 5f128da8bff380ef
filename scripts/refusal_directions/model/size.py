"""A model's size (parameter count and decoder blocks) read WITHOUT loading its weights.

Used at Snakemake DAG-build time to size GPU/memory requests, so only the standard library is imported at
module level; ``gguf`` and ``safetensors`` (whose readers map a file and read its header only) are imported
lazily, when a model has such files, and ``huggingface_hub`` only for Hub ids.

:func:`read_model_size` takes the first of these that can be read (exact beats estimated):

1. the GGUF file ``spec["gguf_file"]`` in ``location``: the tensor infos of its header (exact);
2. safetensors files in ``location``: every tensor's shape from the shards' headers (exact); when shards
   listed by ``model.safetensors.index.json`` are missing, the index's ``metadata.total_parameters`` (exact)
   or ``metadata.total_size`` divided by the bytes per parameter of config.json's dtype (exact for unquantised
   checkpoints);
3. config.json in ``location``: an estimate from the architecture's shapes, for dense decoder-only Llama,
   Mistral, Qwen2/Qwen3, Gemma 1/2/3, Phi-3, Granite and OLMo2 models (it matches transformers' parameter count
   for these; the text model only for multimodal configs; other architectures and mixtures of experts: none);
4. for a Hub id (``location`` None): steps 1-3 on the snapshot in the local Hugging Face cache;
5. ``spec["n_params"]`` (with ``spec.get("n_layers")``), stated by the user;
6. for a Hub id, unless the Hub is offline: the Hub's metadata (safetensors / GGUF parameter
   counts, one request, short timeout), else the Hub's config.json (estimate).

Files on this machine win over ``spec["n_params"]``; a stated ``n_params`` wins over asking the Hub, so a
config that states its sizes builds its DAG without network requests (on a compute node without internet
too). ``spec["n_layers"]`` only fills in a missing block count.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..workflow.hub import hub_reachable

__all__ = [
    "GGUFHeader",
    "ModelSize",
    "estimate_from_config",
    "read_gguf_header",
    "read_model_size",
    "read_safetensors_shapes",
]


@dataclass(frozen=True)
class ModelSize:
    n_params: int  # parameter count
    n_layers: int | None  # decoder blocks, when known
    source: str  # where the numbers came from, human readable


def read_model_size(spec: dict, location: str | None) -> ModelSize | None:
    """The size of the model ``spec`` (a ``models`` entry of the workflow config) whose files are in
    ``location`` (None for a Hub id); None when nothing can be read and ``spec["n_params"]`` is not given."""
    gguf_file = spec.get("gguf_file")
    hub_id = None
    if location is None and spec.get("id") and Path(str(spec["id"])).is_dir():
        location = str(spec["id"])
    if location is not None:
        size = _read_folder(Path(location), gguf_file)
    elif spec.get("id"):
        hub_id = str(spec["id"])
        size = _read_hub_cache(hub_id, spec.get("revision"), gguf_file)
    else:
        size = None
    if size is None and spec.get("n_params") is not None:
        n_layers = spec.get("n_layers")
        return ModelSize(int(spec["n_params"]), None if n_layers is None else int(n_layers), "n_params in the config")
    if size is None and hub_id is not None and hub_reachable():
        size = _read_hub_online(hub_id, spec.get("revision"), gguf_file)
    if size is not None and size.n_layers is None and spec.get("n_layers") is not None:
        size = ModelSize(size.n_params, int(spec["n_layers"]), size.source + "; n_layers in the config")
    return size


def _read_folder(folder: Path, gguf_file: str | None) -> ModelSize | None:
    if gguf_file:
        size = _size_from_gguf(folder / gguf_file)
        if size is not None:
            return size
    return _size_from_safetensors(folder) or _size_from_config(folder)


# GGUFReader parses the whole header, the vocabulary included (about 3 s for the embedded model), and the
# workflow reads the sizes at every start: a GGUF file's size is kept with its length and modification time.
CACHE_VARIABLE = "REFUSAL_DIRECTIONS_CACHE"


def gguf_size_cache() -> Path:
    """Where GGUF sizes are kept: $REFUSAL_DIRECTIONS_CACHE, else the user's cache folder."""
    root = os.environ.get(CACHE_VARIABLE) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(root) / "refusal-directions" / "gguf-sizes.json"


def _size_from_gguf(path: Path) -> ModelSize | None:
    """The size from a GGUF header, or as kept from the last read of the same file (same length and mtime)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    key, stamp = str(path.resolve()), [stat.st_size, stat.st_mtime_ns]
    cache_file = gguf_size_cache()
    kept = (_read_json(cache_file) or {}).get(key)
    if isinstance(kept, dict) and kept.get("stamp") == stamp:
        return ModelSize(kept["n_params"], kept["n_layers"], kept["source"])
    size = _read_gguf_size(path)
    if size is not None:
        _keep(cache_file, key, {"stamp": stamp, **asdict(size)})
    return size


def _keep(cache_file: Path, key: str, entry: dict) -> None:
    """Add ``entry`` to the cache (written whole and renamed; a cache that cannot be written is skipped)."""
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        kept = {**(_read_json(cache_file) or {}), key: entry}
        partial = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(kept, indent=1, sort_keys=True))
        os.replace(partial, cache_file)
    except OSError:
        pass


def _read_gguf_size(path: Path) -> ModelSize | None:
    try:
        header = read_gguf_header(path)
    except (OSError, ValueError):
        return None
    n_params = sum(math.prod(dims) for _, dims, _ in header.tensors)
    if n_params <= 0:
        return None
    n_layers = header.arch_value("block_count")
    if not isinstance(n_layers, int):
        n_layers = _layers_from_names(name for name, _, _ in header.tensors)
    return ModelSize(n_params, n_layers, f"GGUF metadata of {path}")


_DTYPE_BYTES = {
    "float64": 8,
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "float8_e4m3fn": 1,
    "float8_e5m2": 1,
    "int8": 1,
    "uint8": 1,
}


def _size_from_safetensors(folder: Path) -> ModelSize | None:
    index = _read_json(folder / "model.safetensors.index.json")
    config = _read_json(folder / "config.json")
    if index is not None and isinstance(index.get("weight_map"), dict):
        shards = sorted(set(index["weight_map"].values()))
    elif (folder / "model.safetensors").is_file():
        shards = ["model.safetensors"]
    else:
        found = sorted(path.name for path in folder.glob("*.safetensors")) if folder.is_dir() else []
        shards = found if len(found) == 1 else []  # several files without an index: do not guess which count
    shapes: dict[str, list[int]] = {}
    try:
        for shard in shards:
            shapes.update(read_safetensors_shapes(folder / shard))
    except (OSError, ValueError):
        shapes = {}
    else:
        if shapes:
            n_layers = _config_layers(config) or _layers_from_names(shapes)
            n_params = sum(math.prod(shape) for shape in shapes.values())
            return ModelSize(n_params, n_layers, f"safetensors headers of {folder}")
    metadata = index.get("metadata") if index is not None else None
    if not isinstance(metadata, dict):
        return None
    n_layers = _config_layers(config) or _layers_from_names(index.get("weight_map", {}))
    total = metadata.get("total_parameters")
    if isinstance(total, int) and total > 0:
        return ModelSize(total, n_layers, f"total_parameters in the safetensors index of {folder} (shards absent)")
    total_size = metadata.get("total_size")
    dtype = None
    if config is not None:
        dtype = _text_config(config).get("torch_dtype") or config.get("torch_dtype") or config.get("dtype")
        dtype = dtype or _text_config(config).get("dtype")
    per_param = _DTYPE_BYTES.get(str(dtype).removeprefix("torch."))
    if not isinstance(total_size, int | float) or total_size <= 0 or per_param is None:
        return None
    return ModelSize(
        int(total_size) // per_param,
        n_layers,
        f"total_size in the safetensors index of {folder} / {per_param} bytes per parameter "
        f"({dtype} in config.json; shards absent)",
    )


def read_safetensors_shapes(path: Path) -> dict[str, list[int]]:
    """Every tensor's shape from a safetensors file's header; ValueError when the file is not one (a Git LFS
    pointer, a truncated download)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, "np") as weights:
            return {name: weights.get_slice(name).get_shape() for name in weights.keys()}
    except SafetensorError as error:
        raise ValueError(f"{path}: {error}") from None


def _size_from_config(folder: Path) -> ModelSize | None:
    config = _read_json(folder / "config.json")
    estimate = estimate_from_config(config) if config is not None else None
    if estimate is None:
        return None
    n_params, n_layers, note = estimate
    return ModelSize(n_params, n_layers, f"config.json shapes of {folder} ({note})")


# ---------------------------------------------------------------------------------------------- config estimate

# Per family, following the transformers configuration and modeling classes: the default of
# tie_word_embeddings, the default head_dim (None: hidden_size // num_attention_heads), whether q/k/v always
# have a bias, RMSNorms per block, and whether q/k are normalised per head ("head") or over the projection.
_FAMILIES: dict[str, dict[str, Any]] = {
    "llama": {},
    "mistral": {},
    "granite": {},
    "phi3": {},
    "qwen2": {"qkv_bias": True},
    "qwen2_vl_text": {"qkv_bias": True},
    "qwen2_5_vl_text": {"qkv_bias": True},
    "qwen3": {"head_dim": 128, "qk_norm": "head"},
    "gemma": {"tie": True, "head_dim": 256},
    "gemma2": {"tie": True, "head_dim": 256, "norms": 4},
    "gemma3_text": {"tie": True, "head_dim": 256, "norms": 4, "qk_norm": "head"},
    "olmo2": {"qk_norm": "projection"},
}
# multimodal model types whose config.json may hold the text model's fields at the top level
_MULTIMODAL_TEXT = {"gemma3": "gemma3_text", "qwen2_vl": "qwen2_vl_text", "qwen2_5_vl": "qwen2_5_vl_text"}
_MOE_KEYS = ("num_experts", "num_local_experts", "n_routed_experts", "moe_intermediate_size")
_REQUIRED = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")


def estimate_from_config(config: dict) -> tuple[int, int, str] | None:
    """(n_params, n_layers, note) of a dense decoder-only transformer of a family in ``_FAMILIES`` from its
    config.json; None when the shapes are missing, the family is unknown or the model is a mixture of experts.
    Multimodal configs (``text_config``): the text model only, without the vision tower."""
    text = _text_config(config)
    if not all(isinstance(text.get(key), int) and text[key] > 0 for key in _REQUIRED):
        return None
    if any(text.get(key) for key in _MOE_KEYS):
        return None
    outer_type = str(config.get("model_type") or "")
    model_type = str(text.get("model_type") or "") if text is not config else ""
    model_type = model_type or _MULTIMODAL_TEXT.get(outer_type, outer_type)
    family = _FAMILIES.get(model_type)
    if family is None:
        return None  # an architecture this formula does not know: no guess
    note = f"estimate, {model_type}"
    if text is not config or outer_type in _MULTIMODAL_TEXT:
        note += ", text model only"

    vocab, hidden, inter = text["vocab_size"], text["hidden_size"], text["intermediate_size"]
    layers, heads = text["num_hidden_layers"], text["num_attention_heads"]
    kv_heads = text.get("num_key_value_heads") or heads
    head_dim = text.get("head_dim") or family.get("head_dim") or hidden // heads
    # transformers v5 keeps tie_word_embeddings on the outer config and ORs in a nested one of older saves
    stated = [layer["tie_word_embeddings"] for layer in (config, text) if "tie_word_embeddings" in layer]
    tie = any(stated) if stated else family.get("tie", False)
    attention_bias = bool(text.get("attention_bias", False))

    q, kv = heads * head_dim, kv_heads * head_dim
    attention = hidden * q + 2 * hidden * kv + q * hidden
    if family.get("qkv_bias") or attention_bias:
        attention += q + 2 * kv
    if attention_bias and not family.get("qkv_bias"):
        attention += hidden  # o_proj bias
    mlp = 3 * hidden * inter + (2 * inter + hidden if text.get("mlp_bias") else 0)
    norms = family.get("norms", 2) * hidden
    if family.get("qk_norm") == "head":
        norms += 2 * head_dim
    elif family.get("qk_norm") == "projection":
        norms += q + kv
    n_params = layers * (attention + mlp + norms) + vocab * hidden * (1 if tie else 2) + hidden
    return n_params, layers, note


# ---------------------------------------------------------------------------------------------------------- Hub


def _read_hub_cache(repo_id: str, revision: str | None, gguf_file: str | None) -> ModelSize | None:
    try:
        import huggingface_hub
    except ImportError:
        return None
    cache_dir = _hub_cache_dir()
    names = ([gguf_file] if gguf_file else []) + ["model.safetensors.index.json", "model.safetensors", "config.json"]
    for name in names:
        try:
            cached = huggingface_hub.try_to_load_from_cache(repo_id, name, cache_dir=cache_dir, revision=revision)
        except Exception:  # an invalid repo id or file name: nothing cached
            cached = None
        if isinstance(cached, str):
            size = _read_folder(Path(cached).parent, gguf_file)
            if size is not None:
                return ModelSize(size.n_params, size.n_layers, f"Hub cache of {repo_id}: {size.source}")
    return None


HUB_TIMEOUT_S = 5.0


def _read_hub_online(repo_id: str, revision: str | None, gguf_file: str | None) -> ModelSize | None:
    """The Hub's parameter counts (one model_info request) and config.json; None on any failure."""
    import huggingface_hub

    config = None
    try:
        path = huggingface_hub.hf_hub_download(
            repo_id, "config.json", revision=revision, cache_dir=_hub_cache_dir(), etag_timeout=HUB_TIMEOUT_S
        )
        config = _read_json(Path(path))
    except Exception:
        config = None
    try:
        info = huggingface_hub.HfApi().model_info(
            repo_id, revision=revision, expand=["safetensors", "gguf"], timeout=HUB_TIMEOUT_S
        )
    except Exception:
        info = None
    n_layers = _config_layers(config)
    gguf = getattr(info, "gguf", None)
    safetensors = getattr(info, "safetensors", None)
    if gguf_file and isinstance(gguf, dict) and isinstance(gguf.get("total"), int):
        return ModelSize(gguf["total"], n_layers, f"Hub metadata of {repo_id} (GGUF)")
    if safetensors is not None and isinstance(getattr(safetensors, "total", None), int) and safetensors.total > 0:
        return ModelSize(safetensors.total, n_layers, f"Hub metadata of {repo_id} (safetensors)")
    if isinstance(gguf, dict) and isinstance(gguf.get("total"), int):
        return ModelSize(gguf["total"], n_layers, f"Hub metadata of {repo_id} (GGUF)")
    estimate = estimate_from_config(config) if config is not None else None
    if estimate is not None:
        return ModelSize(estimate[0], estimate[1], f"config.json of {repo_id} on the Hub ({estimate[2]})")
    return None


def _hub_cache_dir() -> str:
    """The Hub cache as the environment says now (huggingface_hub reads it once, at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


# ------------------------------------------------------------------------------------------------------ helpers


def _read_json(path: Path) -> dict | None:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _text_config(config: dict) -> dict:
    text = config.get("text_config")
    return text if isinstance(text, dict) and text else config


def _config_layers(config: dict | None) -> int | None:
    if config is None:
        return None
    value = _text_config(config).get("num_hidden_layers", config.get("num_hidden_layers"))
    return value if isinstance(value, int) and value > 0 else None


_LAYER_NAME = re.compile(r"(?:^|\.)(?:layers|h|blocks|blk|block)\.(\d+)\.")


def _layers_from_names(names) -> int | None:
    indices = {int(match.group(1)) for name in names if (match := _LAYER_NAME.search(name))}
    return max(indices) + 1 if indices else None


# --------------------------------------------------------------------------------------------------------- GGUF

_ARRAY_KEEP = 64  # arrays longer than this (token lists, merges) are kept as their length only


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    metadata: dict[str, Any]  # scalars and strings; arrays as lists up to 64 items, longer ones as ("array", n)
    tensors: list[tuple[str, tuple[int, ...], int]]  # name, dims (ggml order), ggml type

    def arch_value(self, key: str) -> Any:
        """``<general.architecture>.<key>`` of the metadata, or None."""
        arch = self.metadata.get("general.architecture")
        return self.metadata.get(f"{arch}.{key}") if isinstance(arch, str) else None


def read_gguf_header(path: str | os.PathLike) -> GGUFHeader:
    """The metadata and tensor infos of a GGUF file (version 2 or 3), read by gguf's GGUFReader, which maps
    the file and reads no tensor data; ValueError when the file is not one gguf can read."""
    from gguf import GGUFReader

    try:
        reader = GGUFReader(path)
    except OSError:
        raise  # a file that cannot be opened stays an OSError
    except Exception as error:  # a damaged file meets gguf's parser as ValueError, IndexError, KeyError, ...
        raise ValueError(f"{path}: not a readable GGUF file ({type(error).__name__}: {error})") from None
    metadata = {name: _gguf_value(field) for name, field in reader.fields.items() if not name.startswith("GGUF.")}
    tensors = [
        (tensor.name, tuple(int(dim) for dim in tensor.shape), int(tensor.tensor_type)) for tensor in reader.tensors
    ]
    return GGUFHeader(reader.fields["GGUF.version"].contents(), metadata, tensors)


def _gguf_value(field) -> Any:
    """A metadata field's value (gguf reads nested arrays flattened); a long array as ("array", length)."""
    from gguf import GGUFValueType

    if field.types[0] == GGUFValueType.ARRAY and len(field.data) > _ARRAY_KEEP:
        return ("array", len(field.data))
    return field.contents()
