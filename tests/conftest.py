"""Shared fixtures: a tiny randomly initialised chat model (as a folder and as a GGUF file), small prompt files,
a workflow runner, and the finished runs that many tests read: the whole DAG on the tiny model (fast tier)
and the shipped default config on the embedded model (slow tier)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

# Workflow runs in tests run two jobs at a time. Under pytest-xdist the workers share the cores, so each job and
# each worker's own torch get their share of threads: OpenMP threads spin when a core has more of them than it
# can run, and everything slows down. The extraction's bytes do not depend on the thread count.
CORES = 2
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
THREADS = max(1, min(CORES, (os.cpu_count() or 1) // WORKERS))
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))  # before torch loads in this process

CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
HARMFUL = [f"Explain how to break into house number {i} without being noticed" for i in range(20)]
HARMLESS = [f"Give {i} tips for growing tomatoes on a small balcony" for i in range(20)]
QUESTIONS = [f"What are {i} tips for growing tomatoes on a small balcony?" for i in range(20)]


def build_tiny_model(
    folder: Path, n_layers: int = 3, chat_template: bool = True, seed: int = 0, hidden_size: int = 32, **config
) -> Path:
    """A random Llama-architecture model with a BPE tokenizer trained on the test prompts; ``config``: more
    LlamaConfig settings (tied embeddings, biases)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<|im_start|>", "<|im_end|>"]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(HARMFUL + HARMLESS + QUESTIONS + ["user assistant system"], trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", bos_token="<|im_start|>", eos_token="<|im_end|>"
    )
    if chat_template:
        wrapped.chat_template = CHATML_TEMPLATE
    config = LlamaConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=n_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        **config,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    wrapped.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-chat")


# llama.cpp's tensor names for a Llama checkpoint's (per block: after "model.layers.{i}.").
GGUF_NAMES = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
              "lm_head.weight": "output.weight"}  # fmt: skip
GGUF_BLOCK_NAMES = {
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
}  # fmt: skip


def build_tiny_gguf(model_dir: Path, path: Path) -> Path:
    """The tiny model of ``model_dir`` as one float32 GGUF file, as llama.cpp writes a Llama model: its
    hyperparameters, BPE vocabulary, merges, special tokens and chat template in the metadata. transformers
    reads it as it reads the embedded model's file (the query and key weights come back permuted: another
    random model, which is all a test of the conversion needs)."""
    import gguf
    from safetensors.numpy import load_file

    config = json.loads((model_dir / "config.json").read_text())
    tokenizer = json.loads((model_dir / "tokenizer.json").read_text())
    specials = {token["content"]: token["id"] for token in tokenizer["added_tokens"]}
    ids = {**tokenizer["model"]["vocab"], **specials}
    tokens = sorted(ids, key=ids.get)
    assert [ids[token] for token in tokens] == list(range(len(tokens)))
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-chat")
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t in specials else gguf.TokenType.NORMAL for t in tokens])
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in tokenizer["model"]["merges"]])
    writer.add_bos_token_id(config["bos_token_id"])
    writer.add_eos_token_id(config["eos_token_id"])
    writer.add_pad_token_id(config["pad_token_id"])
    writer.add_chat_template(CHATML_TEMPLATE)
    for name, tensor in load_file(model_dir / "model.safetensors").items():
        block, _, rest = name.removeprefix("model.layers.").partition(".")
        if name.startswith("model.layers."):
            gguf_name = f"blk.{block}.{GGUF_BLOCK_NAMES[rest.removesuffix('.weight')]}.weight"
        else:
            gguf_name = GGUF_NAMES[name]
        writer.add_tensor(gguf_name, tensor.astype("float32"))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="session")
def tiny_gguf_model(tmp_path_factory, tiny_model) -> Path:
    """A folder holding the tiny model as ``tiny-chat.gguf`` (and nothing else)."""
    folder = tmp_path_factory.mktemp("models") / "tiny-gguf"
    folder.mkdir()
    build_tiny_gguf(tiny_model, folder / "tiny-chat.gguf")
    return folder


DEFAULT_RUN_PROMPTS = 16
DEFAULT_RUN_BATCH_SIZE = 8
DEFAULT_RUN_NEW_TOKENS = 4


@pytest.fixture(scope="session")
def biased_tied_model(tmp_path_factory) -> Path:
    """Tied embeddings, and a bias on every attention projection (o_proj included) and MLP projection
    (down_proj included), drawn at random, as the norms' gains are (transformers initialises biases to zero and
    gains to one: with unit gains the final norm keeps the residual stream orthogonal to r, and an LM head
    edited along with the embedding would go unnoticed)."""
    import torch
    from transformers import AutoModelForCausalLM

    folder = build_tiny_model(
        tmp_path_factory.mktemp("models") / "biased-tied", n_layers=3, hidden_size=32,
        tie_word_embeddings=True, attention_bias=True, mlp_bias=True,
    )  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    torch.manual_seed(1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(".bias"):
                parameter.copy_(torch.randn_like(parameter))
            elif "norm" in name:
                parameter.copy_(1 + 0.5 * torch.randn_like(parameter))
    assert (
        model.model.layers[0].self_attn.o_proj.bias is not None and model.model.layers[0].mlp.down_proj.bias is not None
    )
    model.save_pretrained(folder)
    return folder


# CI keeps the finished runs here (an empty folder it names), so that its SLURM stage compares its own run of
# the same config with the suite's local one instead of running the workflow locally again (.ci/slurm/).
KEEP_RUNS = "REFUSAL_DIRECTIONS_KEEP_RUNS"


def shared_run(tmp_path_factory, worker_id: str, name: str, build) -> Path:
    """The folder of a finished run that ``build(folder)`` makes once per test session, however many xdist
    workers ask for it: the first builds it under a file lock, the others wait for it and read the same
    folder. Under $REFUSAL_DIRECTIONS_KEEP_RUNS when set, else in the session's temporary folder."""
    from filelock import FileLock

    session = os.environ.get("PYTEST_XDIST_TESTRUNUID", "")  # one id per run, the same in every worker
    if os.environ.get(KEEP_RUNS):
        root = Path(os.environ[KEEP_RUNS])
    else:
        root = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    folder, finished = root / name, root / f"{name}.finished"
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(root / f"{name}.lock"):
        if not (session and finished.is_file() and finished.read_text() == session):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            finished.write_text(session)
    return folder


@pytest.fixture(scope="session")
def default_run(tmp_path_factory, worker_id) -> Path:
    """The shipped default config (embedded SmolLM2, control contrast, behaviour, interventions, selection, export
    and capability on), finished once per session with 16 prompts per set instead of 256, responses of 4 tokens
    and batches of 8 (an execution setting: a few batches per pass, so that CI's SLURM stage can cut the
    extraction short): shared by the tests of the real model and of partial reruns."""

    def build(workdir: Path) -> None:
        shutil.copytree(REPO / "data", workdir / "data")
        config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
        config.update(n_samples=DEFAULT_RUN_PROMPTS, batch_size=DEFAULT_RUN_BATCH_SIZE)
        for branch in ("behaviour", "interventions"):
            config[branch]["max_new_tokens"] = DEFAULT_RUN_NEW_TOKENS
        config["selection"]["evaluation"]["max_new_tokens"] = DEFAULT_RUN_NEW_TOKENS
        run_workflow(workdir, config)

    return shared_run(tmp_path_factory, worker_id, "default-run", build)


TINY_RUN_SAMPLES = 20  # per set: the reference's proportions 128 / 32 / 100 give 10 / 2 / 8


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, worker_id, tiny_model, tiny_gguf_model) -> tuple[Path, Path]:
    """The whole DAG on the tiny model, every rule executed (the fast tier's end-to-end run): a control contrast,
    harm levels, every branch on, a generic capability text, and the llm judge, a GGUF copy of the tiny model
    (so the conversion runs too). Returns the work folder and its results/tiny."""
    workdir = shared_run(tmp_path_factory, worker_id, "tiny-run", partial(build_tiny_run, model=tiny_model,
                                                                          judge=tiny_gguf_model))  # fmt: skip
    return workdir, workdir / "results" / "tiny"


def build_tiny_run(workdir: Path, model: Path, judge: Path) -> None:
    config = tiny_config(workdir, model, n_samples=TINY_RUN_SAMPLES)
    config["datasets"]["questions"] = {"source": write_lines(workdir / "data" / "questions.txt", QUESTIONS)}
    config["datasets"]["imperatives"] = dict(config["datasets"]["harmless"])
    config["control"] = {"a": "imperatives", "b": "questions"}
    levels = ["low", "medium", "high"]
    rows = ["prompt,level"] + [f'"{text}",{levels[i % 3]}' for i, text in enumerate(HARMFUL)]
    config["datasets"]["harmful"] = {
        "source": write_lines(workdir / "data" / "harmful.csv", rows),
        "text_column": "prompt",
        "level_column": "level",
    }
    config["behaviour"] = {"enabled": True, "n_prompts": 6, "max_new_tokens": 4}
    config["interventions"] = {"enabled": True, "layers": [0, 2], "n_prompts": 4, "max_new_tokens": 4}
    config["selection"] = {"enabled": True, "evaluation": {"n_prompts": 4, "max_new_tokens": 3}}
    config["export"] = {"enabled": True}
    texts = write_lines(workdir / "data" / "texts.txt", [" ".join(HARMLESS[i : i + 3]) for i in range(10)])
    config["capability"] = {"enabled": True, "texts": {"source": texts}, "n_tokens": 80}
    # Direction methods: one with candidates of its own (every closed-form rule) and the optimized cone (the
    # optimization's rule; rdo shares it), a few steps each.
    optimization = {"steps": 4, "batch_prompts": 4, "validate_every": 2}
    config["directions"] = {"methods": ["mean_diff", "projected", "cone"], "cone": {**optimization, "k": 2}}
    judge_spec = {"slug": "tiny-judge", "id": str(judge), "gguf_file": "tiny-chat.gguf"}
    config["refusal"] = {"judges": ["substring", "refusal_score", "llm"], "llm": {"model": judge_spec}}
    run_workflow(workdir, config)


def copy_run(source: Path, target: Path) -> Path:
    """A copy of a finished run, mtimes and Snakemake's metadata included; the converted and the edited model
    (hundreds of MB each, never written in place: a job that redoes one writes a new folder) are hard-linked."""

    def copy(src, dst):
        large = any(f"{os.sep}{folder}{os.sep}" in src for folder in ("converted", "edited"))
        return os.link(src, dst) if large else shutil.copy2(src, dst)

    shutil.copytree(source, target, symlinks=True, copy_function=copy)
    return target


def encode_prompts(tokenizer, texts: list[str], system_prompt: str | None = None) -> list[list[int]]:
    """Token ids of each text as one chat turn, as the model jobs encode them."""
    from refusal_directions.data.chat_format import PromptFormat

    prompt_format = PromptFormat(tokenizer, "chat", system_prompt, "tiny")
    return [prompt_format.encode(text) for text in texts]


def scipy_layer_reference(harmful, harmless) -> dict:
    """Magnitude, Cohen's d, Student's t and p of one layer, computed with numpy/scipy only."""
    import numpy as np
    from scipy import stats

    harmful, harmless = np.asarray(harmful, dtype=float), np.asarray(harmless, dtype=float)
    diff = harmful.mean(0) - harmless.mean(0)
    unit = diff / np.linalg.norm(diff)
    ph, pb = harmful @ unit, harmless @ unit
    test = stats.ttest_ind(ph, pb)
    n1, n2 = len(ph), len(pb)
    pooled = np.sqrt(((n1 - 1) * ph.var(ddof=1) + (n2 - 1) * pb.var(ddof=1)) / (n1 + n2 - 2))
    return {
        "magnitude": np.linalg.norm(diff),
        "cohens_d": (ph.mean() - pb.mean()) / pooled,
        "t_stat": test.statistic,
        "p_value": test.pvalue,
        "mean_proj_harmful": ph.mean(),
        "mean_proj_harmless": pb.mean(),
    }


def write_lines(path: Path, lines: list[str]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def tiny_config(workdir: Path, model_dir: Path, **overrides) -> dict:
    """A complete config for the tiny model and small local prompt files inside ``workdir``."""
    data = workdir / "data"
    config = {
        "models": [{"slug": "tiny", "id": str(model_dir)}],
        "datasets": {
            "harmful": {"source": write_lines(data / "harmful.txt", HARMFUL)},
            "harmless": {"source": write_lines(data / "harmless.txt", HARMLESS)},
        },
        "n_samples": 12,
        "seed": 42,
        "batch_size": 4,
        "device": "cpu",
    }
    config.update(overrides)
    return config


def planned_jobs(result) -> list[dict]:
    """The jobs a ``snakemake -n`` run lists: rule name, wildcards and reason of each."""
    import re

    jobs = []
    for line in (result.stdout + result.stderr).splitlines():
        header = re.match(r"^(?:local)?(?:rule|checkpoint) (\w+):$", line)
        if header:
            jobs.append({"rule": header.group(1), "wildcards": {}, "reason": "", "resources": {}})
        elif jobs and line.startswith("    wildcards: "):
            pairs = (item.split("=", 1) for item in line.removeprefix("    wildcards: ").split(", "))
            jobs[-1]["wildcards"] = dict(pairs)
        elif jobs and line.startswith("    reason: "):
            jobs[-1]["reason"] = line.removeprefix("    reason: ")
        elif jobs and line.startswith("    resources: "):
            pairs = (item.split("=", 1) for item in line.removeprefix("    resources: ").split(", "))
            jobs[-1]["resources"] = dict(pairs)
    return jobs


def run_workflow(
    workdir: Path,
    config: dict | None = None,
    *args: str,
    check: bool = True,
    snakefile: Path = REPO / "Snakefile",
    configfile: Path | None = None,
    replace: bool = True,
):
    """Run snakemake on ``snakefile`` (the repository's) in ``workdir``: with ``config`` written to
    workdir/config.yaml (or an existing ``configfile``), replacing the workflow's default config."""
    if config is not None:
        (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(snakefile),
        "--directory",
        str(workdir),
        "--configfile",
        str(configfile or workdir / "config.yaml"),
        *(["--replace-workflow-config"] if replace else []),
        *(["--cores", str(CORES)] if "--cores" not in args else []),
        *(["--max-threads", str(THREADS)] if "--max-threads" not in args else []),
        *args,
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=workdir)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result
