"""Time all statistics of one layer at the size of the seed experiment, on one CPU thread.

    python benchmarks/bench_layer_stats.py            # n = 256 + 256 prompts, d = 1536, control included
    python benchmarks/bench_layer_stats.py --tiny     # n = 16 + 16, d = 32: the smoke run

Prints the wall time of analyse_layer (in-sample tests, 5-fold held-out effect, K permutations, 1000
bootstrap resamples, the control contrast) for K = 1000 (the issue's target: under 10 s) and for the
default K = 10000.
"""

import os

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"  # before numpy is imported: one core, as a layer_stats job gets

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from refusal_directions.stats.layer_analysis import StatsSettings, analyse_layer  # noqa: E402

SIZES = {"seed": (256, 1536), "tiny": (16, 32)}  # prompts per group, hidden size


def synthetic_layer(n_per_group: int, d_model: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shift = rng.normal(size=d_model) / np.sqrt(d_model)
    return {
        "harmful": rng.normal(size=(n_per_group, d_model)) + 2 * shift,
        "harmless": rng.normal(size=(n_per_group, d_model)),
        "control_a": rng.normal(size=(n_per_group, d_model)),
        "control_b": rng.normal(size=(n_per_group, d_model)) + shift,
    }


def seconds_per_layer(n_permutations: int, n_per_group: int, d_model: int, repeats: int = 3) -> float:
    groups = synthetic_layer(n_per_group, d_model)
    settings = StatsSettings(n_folds=5, n_permutations=n_permutations, n_bootstrap=1000, ci_level=0.95, seed=0)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        analyse_layer(groups, settings, control=("control_a", "control_b"))
        times.append(time.perf_counter() - start)
    return min(times)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="16 + 16 prompts, d = 32, one repeat")
    args = parser.parse_args()
    n, d = SIZES["tiny" if args.tiny else "seed"]
    size = f"n = {n} + {n}, d = {d}, k = 5, B = 1000, control included, 1 thread"
    for n_permutations in (1000, 10000):
        seconds = seconds_per_layer(n_permutations, n, d, repeats=1 if args.tiny else 3)
        print(f"layer stats seconds (K = {n_permutations}, {size}): {seconds:.2f}")
