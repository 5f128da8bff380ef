"""Extraction speed against the naive notebook loop and the bare forward pass, in one process.

    make bench                                   # the embedded SmolLM2, 512 prompts, then the default DAG
    python benchmarks/bench_extraction.py --help

On the same prompts and the same loaded model it times
  (a) the workflow's extractor (hooks, length-sorted left-padded batches, the shared prompt prefix run once
      from its key/value cache, streaming HDF5 writes),
  (b) the naive loop: batch size 1, output_hidden_states=True, every layer collected,
  (c) the bare forward pass over the same batches, whole prompts (no prefix cache), nothing collected,
  (d) TransformerLens run_with_cache (batch size 1), if it is installed and loads the model,
checks that (a) with and without the prefix cache give the same rows, times generation with and without it
(interleaved, best of three), then runs the default workflow's Experiment 0 once (without the behaviour,
interventions and selection branches, whose jobs are model work too) and splits its wall time into the
one-time GGUF conversion, the extraction and everything else.
The last lines are always
  shared prefix tokens: P of mean T
  ratio extractor/naive: X              speed-up of (a) over (b), prompts/s over prompts/s; goal >= 2.5
  ratio extractor/bare: Y               time of (a) over time of (c) on the same prompts; goal <= 0.65
  ratio generation cached/uncached: G   time with the prefix cache over time without; goal <= 0.7
  max rel diff cached vs uncached: E    largest |difference| of a row of (a), over the row's norm; <= 1e-4
  peak rss extractor MB: Z
  dag other/extraction: W
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from refusal_directions.data.chat_format import PromptFormat  # noqa: E402
from refusal_directions.model.activations import ActivationWriter  # noqa: E402
from refusal_directions.model.batching import BatchRunner, budget_batches, left_padded  # noqa: E402
from refusal_directions.model.extraction import Extractor  # noqa: E402
from refusal_directions.model.forward import ModelRunner  # noqa: E402
from refusal_directions.model.loading import (  # noqa: E402
    decoder_layers,
    load_model,
    load_tokenizer,
    resolve_device,
    resolve_dtype,
    weights_location,
)
from refusal_directions.model.prefix_cache import shared_prefix_length  # noqa: E402


def rss_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak since the last reset) of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets VmHWM, so the next peak belongs to what runs next."""
    Path("/proc/self/clear_refs").write_text("5")


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(function, device) -> float:
    synchronise(device)
    start = time.perf_counter()
    function()
    synchronise(device)
    return time.perf_counter() - start


def prompt_texts(n_prompts: int) -> list[str]:
    """The first n/2 harmful and n/2 harmless prompts of the project's data."""
    half = n_prompts // 2
    harmful = (REPO / "data" / "harmful.txt").read_text().splitlines()[:half]
    harmless = (REPO / "data" / "harmless.txt").read_text().splitlines()[:half]
    return harmful + harmless


def load_from_config(config_path: Path, device: torch.device, report: dict):
    """The config's first model, from a converted folder for GGUF models (timing the GGUF load once)."""
    config = yaml.safe_load(config_path.read_text())
    spec = {"revision": None, "package": None, "gguf_file": None, "trust_remote_code": False, "dtype": "auto",
            **config["models"][0]}  # fmt: skip
    dtype = resolve_dtype(spec["dtype"], device)
    location, gguf_file = weights_location(spec)
    if gguf_file:
        start = time.perf_counter()
        tokenizer = load_tokenizer(location, gguf_file, spec)
        model = load_model(location, gguf_file, spec, torch.device("cpu"), torch.float32)
        report["load gguf s"] = time.perf_counter() - start
        folder = Path(tempfile.mkdtemp(prefix="bench-converted-"))
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        del model
        location, gguf_file = str(folder), None
    start = time.perf_counter()
    tokenizer = load_tokenizer(location, gguf_file, spec)
    model = load_model(location, gguf_file, spec, device, dtype)
    report["load converted s" if spec.get("gguf_file") else "load s"] = time.perf_counter() - start
    return model, tokenizer, spec


# Qwen2.5-1.5B's shape, and a tiny model of the same architecture (tied embeddings, biased q/k/v) for smoke runs.
QWEN_SHAPES = {
    "qwen2.5-1.5b": {"vocab_size": 151936, "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
                     "num_attention_heads": 12, "num_key_value_heads": 2},
    "tiny": {"vocab_size": 4096, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2},
}  # fmt: skip


def random_qwen_shaped(device: torch.device, shape: str = "qwen2.5-1.5b"):
    """A model of Qwen2.5's architecture and ``shape`` with random weights (no download), in bf16 on CUDA, and
    a byte-level tokenizer with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(**QWEN_SHAPES[shape], max_position_embeddings=32768, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(device=device, dtype=resolve_dtype("auto", device)).eval()
    trainer = trainers.BpeTrainer(vocab_size=4000, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.train_from_iterator(prompt_texts(512) + ["system user assistant You are a helpful assistant."], trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="<|endoftext|>", eos_token="<|im_end|>")
    tokenizer.chat_template = (
        "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
        "{{ '<|im_start|>assistant\n' }}"
    )
    tokenizer.padding_side = "left"
    return model, tokenizer, {"id": "random Qwen2.5-1.5B-shaped", "prompt_format": "chat", "system_prompt": None}


def runner(model, tokenizer, batch_size, device, prefix_cache: str) -> ModelRunner:
    return ModelRunner(model, tokenizer, device, BatchRunner(batch_size), prefix_cache)


def run_extractor(model, tokenizer, token_ids, batch_size, device, folder: Path) -> None:
    """(a): exactly what the extraction job does per batch, writing to HDF5 in ``folder``."""
    n_layers, d_model = len(decoder_layers(model)), model.config.get_text_config().hidden_size
    writer = ActivationWriter(folder, n_layers, d_model, {"prompts": len(token_ids)}, {}, {})
    extractor = Extractor(runner(model, tokenizer, batch_size, device, "auto"))
    try:
        extractor.run(token_ids, lambda rows, per, scores: writer.write("prompts", rows, per))
    finally:
        writer.close()


def rows_of(model, tokenizer, token_ids, batch_size, device, prefix_cache: str) -> np.ndarray:
    """Every layer's last-token rows [prompts, layers, d_model] with or without the prefix cache."""
    rows = np.zeros((len(token_ids), len(decoder_layers(model)), model.config.get_text_config().hidden_size))

    def keep(indices, per_layer, scores):
        rows[indices] = np.stack([values[:, -1] for values in per_layer], axis=1)

    Extractor(runner(model, tokenizer, batch_size, device, prefix_cache)).run(token_ids, keep)
    return rows


def run_naive(model, token_ids, device) -> list:
    """(b): what a notebook does: one prompt at a time, all hidden states, every layer kept."""
    kept = []
    with torch.no_grad():
        for ids in token_ids:
            hidden = model(input_ids=torch.tensor([ids], device=device), output_hidden_states=True).hidden_states
            kept.append([state[0, -1].float().cpu().numpy() for state in hidden])
    return kept


def run_bare(model, tokenizer, token_ids, batch_size, device) -> None:
    """(c): the same length-sorted, left-padded batches through the base model, nothing collected."""
    body = getattr(model, model.base_model_prefix, model)
    with torch.inference_mode():
        for indices in budget_batches([len(ids) for ids in token_ids], batch_size, max_tokens=10**12):
            body(**left_padded([token_ids[i] for i in indices], tokenizer.pad_token_id, device), use_cache=False)


def run_transformer_lens(model_folder: str | None, token_ids, device) -> tuple[float | None, str]:
    """(d): TransformerLens's run_with_cache on each prompt, keeping only the block outputs."""
    try:
        from transformer_lens.model_bridge import TransformerBridge
    except ImportError as error:
        return None, f"not installed ({error})"
    if model_folder is None:
        return None, "needs a local model folder"
    try:
        bridge = TransformerBridge.boot_transformers(model_folder, device=str(device))
        keep = [name for name in bridge.hook_dict if name.startswith("blocks.") and name.endswith("hook_out")]
        keep = [name for name in keep if name.count(".") == 2]  # blocks.{i}.hook_out, the block outputs

        def loop():
            for ids in token_ids:
                tokens = torch.tensor([ids], device=device)
                _, cache = bridge.run_with_cache(tokens, names_filter=lambda name: name in keep)
                [cache[name][0, -1].float().cpu().numpy() for name in keep]

        return timed(loop, device), f"TransformerBridge, {len(keep)} block-output hooks"
    except Exception as error:  # the architecture or this version may not be supported
        return None, f"failed: {type(error).__name__}: {str(error)[:200]}"


def experiment0_config() -> dict:
    """The default config with every optional branch off, whichever branches it has (export and capability
    need the selection, so one left on would make the config invalid: tests/test_definition.py checks it)."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for settings in config.values():
        if isinstance(settings, dict) and "enabled" in settings:
            settings["enabled"] = False
    return config


def dag_split(cores: int) -> dict:
    """Run the default workflow's Experiment 0 in a fresh folder and split its wall time by the jobs'
    benchmark files. Every optional branch is left out: their jobs run the model, like the extraction, and
    are not the bookkeeping this measures."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-dag-"))
    shutil.copytree(REPO / "data", workdir / "data")
    (workdir / "config.yaml").write_text(yaml.safe_dump(experiment0_config()))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory",
               str(workdir), "--configfile", str(workdir / "config.yaml"), "--cores", str(cores)]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if result.returncode != 0:
        sys.exit(f"error: the default workflow's Experiment 0 failed in {workdir}:\n{result.stderr[-2000:]}")
    wall = time.perf_counter() - start
    seconds = {}
    for tsv in (workdir / "results" / "benchmarks").glob("*/*.tsv"):
        with tsv.open() as handle:
            seconds[tsv.parent.name] = seconds.get(tsv.parent.name, 0.0) + float(
                next(csv.DictReader(handle, delimiter="\t"))["s"]
            )
    shutil.rmtree(workdir)
    extraction = seconds.get("extract_activations", float("nan"))
    conversion = seconds.get("convert_model", 0.0)
    return {"wall": wall, "extraction": extraction, "conversion": conversion, "other": wall - extraction - conversion}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "config" / "config.yaml", help="model: its first entry")
    parser.add_argument("--random-qwen", action="store_true", help="a Qwen2.5-1.5B-shaped random model instead")
    parser.add_argument("--shape", choices=list(QWEN_SHAPES), default="qwen2.5-1.5b",
                        help="the random model's shape (tiny: the smoke run)")  # fmt: skip
    parser.add_argument("--prompts", type=int, default=512)
    parser.add_argument("--naive-prompts", type=int, default=128, help="prompts for the batch-1 loops (b) and (d)")
    parser.add_argument("--generation-prompts", type=int, default=64, help="prompts for the generation timing")
    parser.add_argument("--new-tokens", type=int, default=16, help="tokens generated per prompt")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--skip-dag", action="store_true", help="do not run the default workflow")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    report: dict = {}
    if args.random_qwen:
        model, tokenizer, spec = random_qwen_shaped(device, args.shape)
        model_folder = None
    else:
        model, tokenizer, spec = load_from_config(args.config, device, report)
        model_folder = str(model.name_or_path)
    prompt_format = PromptFormat(tokenizer, "chat", spec.get("system_prompt"), spec["id"])
    texts = [prompt_format.encode(text) for text in prompt_texts(args.prompts)]
    # The batch-1 loops run on every k-th prompt, so their length mix matches the full set.
    sparse = texts[:: max(1, len(texts) // args.naive_prompts)][: args.naive_prompts]
    model_rss = rss_mb("VmRSS")
    print(
        f"device {device}, dtype {next(model.parameters()).dtype}, {len(decoder_layers(model))} layers, "
        f"{len(texts)} prompts (batch-1 loops: {len(sparse)}), batch size {args.batch_size}, {args.threads} threads"
    )

    run_bare(model, tokenizer, texts[: args.batch_size], args.batch_size, device)  # warm-up
    folder = Path(tempfile.mkdtemp(prefix="bench-h5-"))
    extractor_s, bare_s = [], []
    peak_rss = 0.0
    for _ in range(2):  # interleaved, best of two: the machine is noisy
        reset_peak_rss()
        extractor_s.append(
            timed(lambda: run_extractor(model, tokenizer, texts, args.batch_size, device, folder), device)
        )
        peak_rss = max(peak_rss, rss_mb("VmHWM"))
        bare_s.append(timed(lambda: run_bare(model, tokenizer, texts, args.batch_size, device), device))
    shutil.rmtree(folder)
    cached, uncached = (rows_of(model, tokenizer, texts, args.batch_size, device, mode) for mode in ("auto", "off"))
    norms = np.linalg.norm(uncached, axis=-1)
    max_rel_diff = float((np.abs(cached - uncached).max(axis=-1) / norms).max())
    generation_prompts = texts[:: max(1, len(texts) // args.generation_prompts)][: args.generation_prompts]
    generation_s, responses = {"off": [], "auto": []}, {}
    for _ in range(3):  # interleaved, best of three: a single pair of timings varied by 0.66-0.84 in their ratio
        for mode in ("off", "auto"):
            generating = runner(model, tokenizer, args.batch_size, device, mode)
            generation_s[mode].append(
                timed(
                    lambda generating=generating, mode=mode: responses.__setitem__(
                        mode, generating.generate(generation_prompts, args.new_tokens)[0]
                    ),
                    device,
                )
            )
    same_tokens = sum(a == b for a, b in zip(responses["auto"], responses["off"], strict=True))
    naive_s = timed(lambda: run_naive(model, sparse, device), device)
    lens_s, lens_note = run_transformer_lens(model_folder, sparse, device)

    rates = {
        "(a) extractor": len(texts) / min(extractor_s),
        "(b) naive batch-1 loop": len(sparse) / naive_s,
        "(c) bare forward": len(texts) / min(bare_s),
    }
    for name, seconds in report.items():
        print(f"{name}: {seconds:.1f}")
    for name, rate in rates.items():
        print(f"{name}: {rate:.2f} prompts/s")
    print(f"(d) TransformerLens run_with_cache: {len(sparse) / lens_s:.2f} prompts/s ({lens_note})" if lens_s
          else f"(d) TransformerLens run_with_cache: {lens_note}")  # fmt: skip
    print(f"model rss MB: {model_rss:.0f}")
    print(
        f"generation: {len(generation_prompts)} prompts x {args.new_tokens} tokens, best of three "
        f"{min(generation_s['off']):.1f} s uncached, {min(generation_s['auto']):.1f} s cached; "
        f"the same response for {same_tokens} of them"
    )
    dag = None if args.skip_dag or args.random_qwen else dag_split(args.threads)
    if dag:
        print(
            f"default DAG (Experiment 0) wall s: {dag['wall']:.1f} (GGUF conversion {dag['conversion']:.1f}, "
            f"extraction {dag['extraction']:.1f}, everything else {dag['other']:.1f})"
        )
    print(json.dumps({"rates": rates, "peak_rss_mb": peak_rss, "dag": dag, "generation_s": generation_s}))
    prefix = shared_prefix_length(texts)
    print(f"shared prefix tokens: {prefix} of mean {np.mean([len(ids) for ids in texts]):.1f}")
    print(f"ratio extractor/naive: {rates['(a) extractor'] / rates['(b) naive batch-1 loop']:.2f}")
    print(f"ratio extractor/bare: {min(extractor_s) / min(bare_s):.3f}")
    print(f"ratio generation cached/uncached: {min(generation_s['auto']) / min(generation_s['off']):.3f}")
    print(f"max rel diff cached vs uncached: {max_rel_diff:.2e}")
    print(f"peak rss extractor MB: {peak_rss:.0f}")
    print(f"dag other/extraction: {dag['other'] / dag['extraction']:.2f}" if dag else "dag other/extraction: nan")


if __name__ == "__main__":
    main()
