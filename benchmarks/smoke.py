"""Every benchmark at a tiny size, so a change that breaks one fails CI (`make bench-smoke`, run by .ci/run).

    python benchmarks/smoke.py

Runs each script below with its smoke arguments and checks that it exits 0 and prints each line that
benchmarks/README.md records for it (the line's name up to its colon; never its value: these machines are
noisy, and a tiny size measures nothing). Exits 1 naming the first script that fails or misses a line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# script: (smoke arguments, the lines it must print, by the text before their value)
SMOKE = {
    "bench_layer_stats.py": (["--tiny"], ["layer stats seconds (K = 1000", "layer stats seconds (K = 10000"]),
    "bench_batching.py": (
        ["--prompts", "8", "--budget", "256"],
        ["ratio peak memory budget/fixed:", "ratio throughput budget/fixed:"],
    ),
    "bench_extraction.py": (
        [
            "--random-qwen",
            "--shape",
            "tiny",
            "--device",
            "cpu",
            "--prompts",
            "16",
            "--naive-prompts",
            "4",
            "--generation-prompts",
            "4",
            "--new-tokens",
            "2",
            "--batch-size",
            "8",
            "--skip-dag",
        ],
        [
            "shared prefix tokens:",
            "ratio extractor/naive:",
            "ratio extractor/bare:",
            "ratio generation cached/uncached:",
            "max rel diff cached vs uncached:",
            "peak rss extractor MB:",
            "dag other/extraction:",
        ],
    ),  # fmt: skip
    "bench_edited_model.py": (
        ["--shape", "tiny", "--device", "cpu", "--prompts", "4", "--new-tokens", "2"],
        [
            "max rel logit diff:",
            "max refusal score diff:",
            "mean kl:",
            "identical continuations:",
            "max residual component:",
            "head change along r:",
            "ce edited minus ablation:",
            "within tolerances",
        ],
    ),  # fmt: skip
    "bench_model_size.py": (
        [],
        [
            "ratio gguf size read/model load:",
            "ratio gguf size cached/read:",
            "ratio offline hub size/hub timeout:",
        ],
    ),  # fmt: skip
    "bench_selection.py": (
        ["--model", "tiny", "--train", "8", "--validation", "4", "--top-k", "2"],
        [
            "ratio selection prefiltered/exhaustive:",
            "same selected candidate:",
            "spearman estimated vs exact bypass:",
            "ratio scoring/extraction throughput:",
        ],
    ),  # fmt: skip
    "bench_methods.py": (
        ["--model", "tiny", "--train", "8", "--validation", "4", "--steps", "2"],
        [
            "extraction s:",
            *(f"ratio {method}/extraction:" for method in ("mean_diff", "projected", "pca", "ace", "rdo", "cone")),
            "rdo s per step:",
        ],
    ),  # fmt: skip
}


def missing_lines(output: str, expected: list[str]) -> list[str]:
    """The expected lines that no line of ``output`` starts with."""
    lines = output.splitlines()
    return [prefix for prefix in expected if not any(line.startswith(prefix) for line in lines)]


def main() -> int:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for script, (arguments, expected) in SMOKE.items():
        started = time.perf_counter()
        result = subprocess.run([sys.executable, str(HERE / script), *arguments], capture_output=True, text=True,
                                env=env)  # fmt: skip
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            print(result.stdout[-2000:] + result.stderr[-3000:], file=sys.stderr)
            print(f"error: {script} failed (exit {result.returncode}) in its smoke run", file=sys.stderr)
            return 1
        missing = missing_lines(result.stdout, expected)
        if missing:
            print(result.stdout[-3000:], file=sys.stderr)
            print(f"error: {script} did not print {missing[0]!r} (benchmarks/README.md records it)", file=sys.stderr)
            return 1
        print(f"{script} {' '.join(arguments)}: ok in {seconds:.0f} s, {len(expected)} recorded lines printed")
    print(f"benchmark smoke run: {len(SMOKE)} of {len(SMOKE)} scripts ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
