"""What each direction method costs (README: "Direction methods"), as a ratio of the extraction's time.

    python benchmarks/bench_methods.py                  # the embedded SmolLM2, 64 + 64 train, 32 + 32 validation
    python benchmarks/bench_methods.py --model tiny     # a tiny random Qwen2.5-shaped model: the smoke run

On one model, in this process: the extraction pass (every layer's last-token state of the train prompts of
both sets), then each method's way to its direction, timed from the extraction's states on:

- mean_diff, projected, pca, ace: every layer's candidate (stats/direction_methods.candidate_vector) and the
  workflow's candidate scoring on the validation prompts (selection/candidate_scores.py, the default
  config's layer stride and filter; ace's candidates scored under its affine edit);
- rdo and cone (k = 2): --steps Adam steps of the workflow's optimization (selection/direction_optimization.py)
  at the mean_diff candidate of the middle layer, with one validation at the end.

Its lines:

    extraction s: E
    ratio <method>/extraction: X      # one line per method
    rdo s per step: S                 # the optimization's wall time over its steps (its one validation included)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "benchmarks"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_selection import load_bench_model  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

from refusal_directions.data.prompt_sets import HARMFUL, HARMLESS, MAIN_SETS  # noqa: E402
from refusal_directions.model.job import ModelJob  # noqa: E402
from refusal_directions.model.refusal_score import refusal_token_ids  # noqa: E402
from refusal_directions.selection.candidate_scores import score_candidates  # noqa: E402
from refusal_directions.selection.direction_optimization import (  # noqa: E402
    RefusalObjective,
    initial_basis,
    optimize,
)
from refusal_directions.stats.direction_methods import METHODS, candidate_vector  # noqa: E402
from refusal_directions.workflow.jsonio import write_json, write_jsonl  # noqa: E402


def seconds(function) -> tuple[float, object]:
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def write_inputs(job: ModelJob, work: Path, texts: dict, n_train: int, prefixes: list[str]) -> dict:
    """The files candidate scoring reads: both sets' prompts (train rows first, then validation), the
    validation split and the refusal tokens."""
    inputs = {"prompts": []}
    for name in MAIN_SETS:
        path = work / f"{name}.jsonl"
        write_jsonl(path, [{"id": f"{name}-{i}", "text": text} for i, text in enumerate(texts[name])])
        inputs["prompts"].append(str(path))
    rows = list(range(n_train, len(texts[HARMFUL])))
    write_json(work / "splits.json", {name: {"validation": {"rows": rows}} for name in MAIN_SETS})
    write_json(work / "manifest.json", {"refusal_token_ids": refusal_token_ids(job.tokenizer, prefixes, None)})
    return {**inputs, "splits": str(work / "splits.json"), "manifest": str(work / "manifest.json")}


def save_candidates(path: Path, method: str, states: dict, seed: int) -> None:
    """Every layer's candidate of a closed-form method (last token), in the workflow's candidates format."""
    n_layers = len(states[HARMFUL])
    vectors = [candidate_vector(method, states[HARMFUL][layer], states[HARMLESS][layer], seed) for layer in
               range(n_layers)]  # fmt: skip
    save_file({"candidates": np.stack(vectors)[None].astype(np.float32),
               **{f"{name}_means": states[name].mean(axis=1)[None].astype(np.float32) for name in MAIN_SETS}},
              str(path), metadata={"refusal_directions": json.dumps({"positions": ["(last token)"]})})  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["embedded", "tiny"], default="embedded")
    parser.add_argument("--train", type=int, default=64, help="prompts per set that build the directions")
    parser.add_argument("--validation", type=int, default=32, help="prompts per set that score and validate them")
    parser.add_argument("--steps", type=int, default=10, help="optimization steps of rdo and cone")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    config, work, spec, execution, job = load_bench_model(args.model, args.batch_size, "bench-methods-")
    n = args.train + args.validation
    texts = {name: (REPO / "data" / f"{name}.txt").read_text().splitlines()[:n] for name in MAIN_SETS}
    inputs = write_inputs(job, work, texts, args.train, config["refusal_score"]["prefixes"])
    train_ids = {name: job.encode([{"text": t} for t in texts[name][: args.train]]) for name in MAIN_SETS}

    def extraction():
        return {name: job.runner.last_states(train_ids[name])[1] for name in MAIN_SETS}  # [layers, n, d]

    extraction_s, states = seconds(extraction)
    scoring = {key: config["selection"][key] for key in ("layer_stride", "max_candidates", "score_all_layers",
                                                         "max_layer_fraction", "prefilter")}  # fmt: skip
    method_s = {}
    for method in (name for name, m in METHODS.items() if not m.optimized):
        candidates = work / f"{method}.safetensors"

        def find(method=method, candidates=candidates):
            save_candidates(candidates, method, states, config["directions"]["pca"]["seed"])
            score_candidates({**inputs, "candidates": str(candidates)}, {"scores": str(work / f"{method}.csv")},
                             spec, scoring, execution, method)  # fmt: skip

        method_s[method], _ = seconds(find)

    for parameter in job.model.parameters():
        parameter.requires_grad_(False)
    layer = len(states[HARMFUL]) // 2
    direction = states[HARMFUL][layer].mean(0) - states[HARMLESS][layer].mean(0)
    validation_ids = {name: job.encode([{"text": t} for t in texts[name][args.train :]]) for name in MAIN_SETS}
    unchanged = {"train": job.runner.next_token_logits(train_ids[HARMLESS]),
                 "validation": job.runner.next_token_logits(validation_ids[HARMLESS])}  # fmt: skip
    settings = {**config["directions"]["rdo"], "steps": args.steps, "validate_every": args.steps}
    objective = RefusalObjective(job.model, layer, float(np.linalg.norm(direction)), json.loads(
        Path(inputs["manifest"]).read_text())["refusal_token_ids"], job.tokenizer.pad_token_id, torch.device("cpu"),
        settings["addition_weight"], settings["kl_weight"])  # fmt: skip
    for method, k in (("rdo", 1), ("cone", 2)):
        start = initial_basis(direction, k, settings["seed"])
        method_s[method], result = seconds(
            lambda start=start: optimize(objective, start, train_ids, validation_ids, unchanged, settings)
        )
        if method == "rdo":
            per_step = method_s[method] / result.steps_run

    print(f"model {args.model}, {len(states[HARMFUL])} layers, {args.train} + {args.train} train and "
          f"{args.validation} + {args.validation} validation prompts, {args.steps} optimization steps")  # fmt: skip
    print(f"extraction s: {extraction_s:.2f}")
    for method, value in method_s.items():
        print(f"ratio {method}/extraction: {value / extraction_s:.2f}")
    print(f"rdo s per step: {per_step:.3f}")


if __name__ == "__main__":
    main()
