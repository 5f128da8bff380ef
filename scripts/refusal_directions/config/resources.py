"""Cluster resources of the jobs that run a model, from the model's size and the job's work, before any job
runs: GPUs, host memory, wall time and CPU threads. A 135M model then asks for a few GB, a 72B model for
enough GPUs to hold it. Estimates, deliberately generous; a model's config entry can override each
(``resources:``). Standard library only: the workflow definition derives them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..interventions.conditions import BASELINES, CAPABILITY, CONDITIONS, EDITED_WEIGHTS, EVALUATION, SWEEP
from ..selection.layer_filter import scored_layers
from ..stats.direction_methods import METHODS, basis_size

# Bytes per parameter in the job's dtype; auto is bfloat16 on the GPU the job asks for.
BYTES_PER_PARAMETER = {"float32": 4, "bfloat16": 2, "float16": 2, "auto": 2}
# GPU memory per byte of weights: the weights, and room for a batch's activations and key/value caches.
GPU_MEMORY_PER_WEIGHT = 1.2
CUDA_CONTEXT_MB = 2048
# Host memory besides the weights (transformers stages a checkpoint shard in host memory while loading).
HOST_OVERHEAD_MB = 4096
THREADS_PER_GPU = 4
# Throughput assumed for the wall time, on the slow side of current data-centre GPUs: effective bf16
# FLOP/s of a batched forward pass (a sixth of an A100's peak: eager attention, padding, one GPU at a time
# under device_map), the memory bandwidth that bounds a generation step (every step reads all weights once),
# and the disk read of the weights.
FLOPS = 50e12
BANDWIDTH = 0.5e12
LOAD_BYTES_PER_S = 200e6
# Every estimate is doubled and padded: a job that hits its wall time loses all its work.
RUNTIME_FACTOR, RUNTIME_PAD_MIN, RUNTIME_MIN = 2.0, 10, 15


@dataclass(frozen=True)
class Workload:
    """What a job does with the model: prompt tokens through a forward pass, generation steps, and how many
    times it reads (loads) and writes (saves) the whole weights."""

    forward_tokens: int
    decode_steps: int = 0
    loads: int = 1
    saves: int = 0


def weights_mb(n_params: int, dtype: str) -> float:
    return n_params * BYTES_PER_PARAMETER[dtype] / 2**20


def conversion_mem_mb(n_params: int) -> int:
    """Host memory of a GGUF conversion: the dequantised float32 weights, held twice while the model is built
    from them and saved, and the host overhead."""
    return 1000 * math.ceil((2 * weights_mb(n_params, "float32") + HOST_OVERHEAD_MB) / 1000)


def gpus_needed(n_params: int, dtype: str, gpu_mem_mb: int) -> int:
    """GPUs of ``gpu_mem_mb`` each that hold 1.2 x the weights and a CUDA context."""
    return max(1, math.ceil((GPU_MEMORY_PER_WEIGHT * weights_mb(n_params, dtype) + CUDA_CONTEXT_MB) / gpu_mem_mb))


def runtime_minutes(n_params: int, dtype: str, work: Workload) -> int:
    """Wall time in minutes: loading (and saving) the weights, the forward passes (2 FLOP per parameter and
    token) and the generation steps, doubled and padded, rounded up to 5 minutes."""
    weight_bytes = n_params * BYTES_PER_PARAMETER[dtype]
    seconds = (
        (work.loads + work.saves) * weight_bytes / LOAD_BYTES_PER_S
        + 2 * n_params * work.forward_tokens / FLOPS
        + work.decode_steps * weight_bytes / BANDWIDTH
    )
    minutes = RUNTIME_FACTOR * seconds / 60 + RUNTIME_PAD_MIN
    return max(RUNTIME_MIN, 5 * math.ceil(minutes / 5))


def job_resources(n_params: int, dtype: str, work: Workload, gpu_mem_mb: int, overrides: dict | None = None) -> dict:
    """``gpu``, ``mem_mb``, ``runtime`` (minutes) and ``threads`` of one model job; ``overrides`` (a model's
    ``resources:`` entry) win."""
    gpu = gpus_needed(n_params, dtype, gpu_mem_mb)
    derived = {
        "gpu": gpu,
        "mem_mb": 1000 * math.ceil((weights_mb(n_params, dtype) + HOST_OVERHEAD_MB) / 1000),
        "runtime": runtime_minutes(n_params, dtype, work),
        "threads": THREADS_PER_GPU * gpu,
    }
    return {**derived, **{key: value for key, value in (overrides or {}).items() if value is not None}}


# Formatted prompts are assumed this long (chat template and system prompt included) before they are tokenized.
TOKENS_PER_PROMPT = 64
# Layers assumed when a model's depth is not known (n_params given without n_layers).
ASSUMED_LAYERS = 32
# Post-instruction positions assumed before the template is read (ChatML appends five tokens).
ASSUMED_POSITIONS = 5
# The llm judge's rubric and template around a judged prompt and response (judging.llm_judge.RUBRIC: ~110 words).
JUDGE_RUBRIC_TOKENS = 200


def rule_workloads(config: dict, n_layers: int | None) -> dict[str, Workload]:
    """The work of each model job of one model under ``config``."""
    from ..data.splits import split_sizes
    from .check import sampled_prompts

    n_layers = n_layers or ASSUMED_LAYERS
    sampled = {name: sampled_prompts(config, name) for name in config["datasets"]}
    sizes = split_sizes(sampled["harmful"], config["splits"])
    batch = 32 if config["batch_size"] == "auto" else config["batch_size"]

    def passes(forward: int, prompts: int, generations: int = 0, new_tokens: int = 0) -> Workload:
        """``forward`` forward passes and ``generations`` generation passes over ``prompts`` prompts."""
        tokens = (forward + generations) * prompts * TOKENS_PER_PROMPT + generations * prompts * new_tokens
        return Workload(tokens, generations * math.ceil(prompts / batch) * new_tokens)

    behaviour, interventions, selection = config["behaviour"], config["interventions"], config["selection"]
    layers = len(interventions["layers"] or range(n_layers))
    positions = ASSUMED_POSITIONS if config["positions"] == "post_instruction" else 1
    candidates = positions * len(scored_layers(n_layers, selection))
    if selection["max_candidates"]:
        candidates = min(candidates, selection["max_candidates"])
    # The attribution prefilter: a forward and a backward pass (about three forwards' work) over each set,
    # then the top k scored exactly.
    attribution_passes = 2 * 3 if selection["prefilter"] == "attribution" else 0
    if selection["prefilter"] == "attribution":
        candidates = min(candidates, selection["prefilter_top_k"])
    evaluation = selection["evaluation"]
    tested = {name: min(sizes["test"], n or sizes["test"]) for name, n in (
        ("behaviour", behaviour["n_prompts"]), ("interventions", interventions["n_prompts"]),
        ("evaluation", evaluation["n_prompts"]),
    )}  # fmt: skip
    # Per condition of the interventions and the evaluation: the responses (whose first step gives the refusal
    # score) and the next-token distribution of the harmless prompts.
    conditions = len(BASELINES) + (len(SWEEP) - len(BASELINES)) * layers
    capability = config["capability"]
    documents = tested["evaluation"] * (TOKENS_PER_PROMPT + evaluation["max_new_tokens"]) + (
        capability["n_tokens"] if capability["texts"] else 0
    )
    # The llm judge reads every response once after its prompt and the rubric; its job for the largest
    # response file of the run sizes them all.
    responses = {
        "behaviour": (2 * tested["behaviour"], behaviour["max_new_tokens"]),
        "interventions": (conditions * tested["interventions"], interventions["max_new_tokens"]),
        "evaluation": (len(EVALUATION) * tested["evaluation"], evaluation["max_new_tokens"]),
    }
    judged_tokens = max(n * (TOKENS_PER_PROMPT + JUDGE_RUBRIC_TOKENS + new) for n, new in responses.values())

    def optimization(settings: dict, samples: int) -> Workload:
        """An optimized direction method (selection/direction_optimization.py): per step, a forward and backward
        pass (about three forwards) over the harmful and harmless minibatch ablated and the harmless one with
        each of ``samples`` cone directions added; per validation, the same forwards over the validation split."""
        per_step = 3 * (2 + samples) * settings["batch_prompts"]
        validations = settings["steps"] // settings["validate_every"] + 1
        prompts = settings["steps"] * per_step + validations * (2 + max(samples, 2)) * sizes["validation"]
        return Workload(prompts * TOKENS_PER_PROMPT)

    directions = config["directions"]
    optimized = [optimization(directions[name], basis_size(name, directions[name]))
                 for name in directions["methods"] if METHODS[name].optimized]  # fmt: skip
    return {
        "extract_activations": passes(1, sum(sampled.values())),
        "generate_responses": passes(0, 2 * tested["behaviour"], 1, behaviour["max_new_tokens"]),
        "run_interventions": passes(conditions, tested["interventions"], conditions, interventions["max_new_tokens"]),
        "score_candidates": passes(2 * (2 + 3 * candidates) + attribution_passes, sizes["validation"]),
        "evaluate_direction": passes(
            len(EVALUATION), tested["evaluation"], len(EVALUATION), evaluation["max_new_tokens"]
        ),
        # The export loads the model and saves the edited copy; its check loads the source and the edited
        # model one after the other and runs both over the evaluation's test prompts (harmful and harmless).
        "orthogonalize_model": Workload(0, saves=1),
        "check_edited_model": replace(passes(0, 2 * tested["evaluation"], 2, evaluation["max_new_tokens"]), loads=2),
        # One forward pass over every document per condition: the responses after their prompts, the generic text.
        "measure_capability": Workload(sum(CONDITIONS[n].change != EDITED_WEIGHTS for n in CAPABILITY) * documents),
        "measure_edited_capability": Workload(documents),
        "judge_responses": Workload(judged_tokens),
        # rdo and cone share the rule: the larger of the two sizes both.
        "optimize_direction": max(optimized, key=lambda work: work.forward_tokens, default=Workload(0)),
    }


def export_disk_mb(n_params: int, dtype: str | None) -> int:
    """Disk of an edited checkpoint: every weight in the saved dtype (float32 when the source's is not
    known before the job: an upper bound), an LM head of its own counted in the parameters' slack (10%)."""
    return 1000 * math.ceil(1.1 * weights_mb(n_params, dtype or "float32") / 1000)
