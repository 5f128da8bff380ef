"""Shared fixtures: a tiny randomly initialised chat model, small prompt files and a workflow runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

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


DEFAULT_RUN_PROMPTS = 16


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


@pytest.fixture(scope="session")
def default_run(tmp_path_factory) -> Path:
    """The shipped default config (embedded SmolLM2, control contrast, behaviour and interventions on),
    finished in a temporary folder with 16 prompts per set instead of 256: shared by the tests of the real
    model and of partial reruns."""
    workdir = tmp_path_factory.mktemp("default-run")
    shutil.copytree(REPO / "data", workdir / "data")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["n_samples"] = DEFAULT_RUN_PROMPTS
    run_workflow(workdir, config)
    return workdir


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
    from refusal_directions.chat_format import PromptFormat

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
        *(["--cores", "2"] if "--cores" not in args else []),
        *args,
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=workdir)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result
