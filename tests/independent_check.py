"""Independent check of the held-out d, permutation p and bootstrap CI of a finished run.

Written with numpy, scipy and h5py only (none of the workflow's code) and with its own random draws, so
it agrees with validation_results.csv only within Monte-Carlo error, which it estimates and reports.

    python tests/independent_check.py results/smollm2-135m-instruct [--layers 0 15 29]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

TOLERANCE_SE = 4.0  # agreement within this many combined Monte-Carlo standard errors


def cohens_d(a_proj, b_proj):
    n1, n2 = len(a_proj), len(b_proj)
    pooled = (n1 - 1) * np.var(a_proj, ddof=1) + (n2 - 1) * np.var(b_proj, ddof=1)
    return (np.mean(a_proj) - np.mean(b_proj)) / math.sqrt(pooled / (n1 + n2 - 2))


def refit_d(a, b):
    unit = a.mean(0) - b.mean(0)
    unit /= np.linalg.norm(unit)
    return cohens_d(a @ unit, b @ unit)


def heldout_d(a, b, n_folds, rng):
    """One random stratified k-fold split; each fold scored on the other folds' direction, relative to the
    midpoint of their means."""
    scores_a, scores_b = np.empty(len(a)), np.empty(len(b))
    folds_a = rng.permutation(len(a)) % n_folds
    folds_b = rng.permutation(len(b)) % n_folds
    for fold in range(n_folds):
        mean_a, mean_b = a[folds_a != fold].mean(0), b[folds_b != fold].mean(0)
        unit = (mean_a - mean_b) / np.linalg.norm(mean_a - mean_b)
        middle = (mean_a + mean_b) / 2
        scores_a[folds_a == fold] = (a[folds_a == fold] - middle) @ unit
        scores_b[folds_b == fold] = (b[folds_b == fold] - middle) @ unit
    return cohens_d(scores_a, scores_b)


def check_layer(a, b, row, settings, rng, n_splits=20, n_permutations=2000, n_bootstrap=2000) -> dict:
    """Independent estimates for one layer and whether each agrees with the workflow's row."""
    # Held-out d: the workflow used one random split; the split-to-split spread is its Monte-Carlo error.
    splits = np.array([heldout_d(a, b, settings["n_folds"], rng) for _ in range(n_splits)])
    heldout_se = splits.std(ddof=1) * math.sqrt(1 + 1 / n_splits)
    heldout_ok = abs(row["cohens_d_heldout"] - splits.mean()) <= TOLERANCE_SE * heldout_se + 1e-9

    # Permutation p of the in-sample d: binomial Monte-Carlo error of both estimates.
    stacked, n_a = np.vstack([a, b]), len(a)
    observed = refit_d(a, b)
    exceed = 0
    for _ in range(n_permutations):
        order = rng.permutation(len(stacked))
        exceed += refit_d(stacked[order[:n_a]], stacked[order[n_a:]]) >= observed
    p_independent = (1 + exceed) / (n_permutations + 1)
    p_mid = (p_independent + row["p_perm"]) / 2
    p_se = math.sqrt(p_mid * (1 - p_mid) * (1 / n_permutations + 1 / settings["n_permutations"]))
    p_ok = abs(row["p_perm"] - p_independent) <= TOLERANCE_SE * p_se + 1 / (n_permutations + 1)

    # Bootstrap CI of the in-sample d: the endpoints' Monte-Carlo error from batches of resamples.
    resampled = np.array(
        [refit_d(a[rng.integers(0, len(a), len(a))], b[rng.integers(0, len(b), len(b))]) for _ in range(n_bootstrap)]
    )
    tail = (1 - settings["ci_level"]) / 2 * 100
    low, high = np.percentile(resampled, [tail, 100 - tail])
    batches = resampled.reshape(10, -1)
    batch_ends = np.percentile(batches, [tail, 100 - tail], axis=1)  # 2 x 10
    per_resample_var = batch_ends.var(axis=1, ddof=1) * batches.shape[1]  # endpoint variance x resamples
    ends_se = np.sqrt(per_resample_var * (1 / n_bootstrap + 1 / settings["n_bootstrap"]))
    ci_ok = bool(np.all(np.abs(np.array([row["d_ci_low"], row["d_ci_high"]]) - [low, high]) <= TOLERANCE_SE * ends_se))
    return {
        "layer": int(row["layer"]),
        "heldout_d": (row["cohens_d_heldout"], splits.mean(), heldout_se, heldout_ok),
        "p_perm": (row["p_perm"], p_independent, p_se, p_ok),
        "d_ci": ((row["d_ci_low"], row["d_ci_high"]), (low, high), tuple(ends_se), ci_ok),
    }


def check_run(results: Path, layers: list[int] | None = None, seed: int = 12345) -> list[dict]:
    table = pd.read_csv(results / "validation_results.csv")
    settings = json.loads((results / "summary.json").read_text())["statistics"]
    # The statistics are computed on the train split (results/splits.json, beside the model folders).
    splits = json.loads((results.parent / "splits.json").read_text())
    train = {name: splits[name]["train"]["rows"] for name in ("harmful", "harmless")}
    rng = np.random.default_rng(seed)
    checks = []
    for _, row in table.iterrows():
        if layers is not None and int(row["layer"]) not in layers:
            continue
        with h5py.File(results / "activations" / f"layer_{int(row['layer']):02d}.h5") as handle:
            a = handle["harmful"][...].astype(float)[train["harmful"]]
            b = handle["harmless"][...].astype(float)[train["harmless"]]
        checks.append(check_layer(a, b, row, settings, rng))
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="a model's results folder, e.g. results/smollm2-135m-instruct")
    parser.add_argument("--layers", type=int, nargs="*", help="only these layers (default: all)")
    args = parser.parse_args()
    failures = 0
    for check in check_run(args.results, args.layers):
        for name in ("heldout_d", "p_perm", "d_ci"):
            workflow, independent, se, ok = check[name]
            failures += not ok
            print(f"layer {check['layer']:2d} {name:9s} workflow {workflow} independent {independent} "
                  f"MC error {se} {'agrees' if ok else 'DISAGREES'}")  # fmt: skip
    print(f"{failures} disagreement(s)")
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
