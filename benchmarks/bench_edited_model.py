"""The edited model at a real model's shape and dtype: a model of Qwen2.5's architecture with random weights
(``--shape qwen2.5-1.5b``: Qwen2.5-1.5B's shape, bf16 on CUDA, float32 elsewhere; ``--shape tiny`` for a smoke
run) saved as a checkpoint, orthogonalized against a random direction by the workflow's export, reloaded with
plain transformers and compared with the source model under hook ablation as check_edited_model compares
them (harmful and harmless prompts: next-token logits, refusal score, KL, greedy continuations, residual
component), and the cross-entropy of both on the same texts (export/capability.py's measure). Random weights give
flat next-token distributions with many near ties, so their continuations diverge sooner than a trained
model's: the continuation figure is a lower bound for real models. ``--plant`` exports with a known bug (the LM
head left tied to the edited embedding, or one block's MLP down projection left unedited) to show what the
check sees then at this shape and dtype. Its last lines are always:

export seconds: S                      # load, orthogonalize and save the edited checkpoint
max rel logit diff: X                  # per prompt, largest |difference| over the largest |logit|
max refusal score diff: R
mean kl: K
identical continuations: F
max residual component: C              # largest |h . r| / |h| of the edited model's residual stream
head change along r: H                 # |W'_head r - W_head r| / |W_head r|: 1 for a head edited with a tied embedding
ce edited minus ablation: D            # nats per token, the prompts' texts scored as plain text
within tolerances (<dtype>): yes|no    # export.edited_check.TOLERANCES for the coarsest dtype involved
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
import torch  # noqa: E402
from bench_extraction import prompt_texts, random_qwen_shaped, synchronise  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

from refusal_directions.data.prompt_sets import HARMFUL, HARMLESS, MAIN_SETS  # noqa: E402
from refusal_directions.export import orthogonalization  # noqa: E402
from refusal_directions.export.edited_check import (  # noqa: E402
    DirectionComponent,
    compare,
    failures,
    head_along,
    head_change,
    load_edited,
    tolerances,
)
from refusal_directions.export.orthogonalization import export_direction, export_edited_model  # noqa: E402
from refusal_directions.model.forward import ModelRunner  # noqa: E402
from refusal_directions.model.hooks import ablate_everywhere  # noqa: E402
from refusal_directions.model.job import ModelJob  # noqa: E402
from refusal_directions.model.loading import resolve_device  # noqa: E402
from refusal_directions.workflow.execution import ExecutionSettings  # noqa: E402


def direction_files(folder: Path, hidden: int, n_layers: int) -> dict:
    """A random direction as the selection writes it and a manifest: the export's inputs."""
    direction = np.random.default_rng(0).normal(size=hidden).astype(np.float32)
    metadata = {"refusal_directions": json.dumps({"layer": n_layers // 2, "position": -1, "method": "random"})}
    unit = direction / np.linalg.norm(direction)
    save_file({"direction": direction, "unit": unit}, str(folder / "selected.safetensors"), metadata=metadata)
    (folder / "manifest.json").write_text(json.dumps({"n_layers": n_layers, "weights_revision": "random"}))
    return {"direction": str(folder / "selected.safetensors"), "manifest": str(folder / "manifest.json")}


def trained_like(model) -> None:
    """Norm gains and biases away from their initial ones and zeros, as a trained model's are: with unit gains
    the final norm keeps an ablated residual stream orthogonal to r, and a head edited with a tied embedding
    would go unseen."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(".bias"):
                parameter.copy_(torch.randn_like(parameter))
            elif "norm" in name:
                parameter.copy_(1 + 0.5 * torch.randn_like(parameter))


def plant(bug: str) -> None:
    """Make the export wrong in one known way (the check must then fail)."""
    if bug == "tied-head":
        orthogonalization.untie_lm_head = lambda model: False
    elif bug == "missed-writer":
        every = orthogonalization.residual_writer_weights
        orthogonalization.residual_writer_weights = lambda model: every(model)[:-1]


def responses_and_losses(runner: ModelRunner, ids: dict, texts: list[list[int]], new_tokens: int):
    """Each set's (responses, next-token logits), and the summed cross-entropy of every text after its first token."""
    results = {name: runner.generate(ids[name], new_tokens) for name in MAIN_SETS}
    return results, runner.loss_sums(texts, [len(t) - 1 for t in texts])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=["qwen2.5-1.5b", "tiny"], default="qwen2.5-1.5b")
    parser.add_argument("--prompts", type=int, default=32, help="prompts per set (harmful, harmless)")
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], default="auto",
                        help="auto: bf16 on CUDA, float32 elsewhere")  # fmt: skip
    parser.add_argument("--plant", choices=["none", "tied-head", "missed-writer"], default="none")
    args = parser.parse_args()
    plant(args.plant)
    device = resolve_device(args.device)
    execution = ExecutionSettings(device=str(device.type), batch_size=16)
    model, tokenizer, _ = random_qwen_shaped(device, args.shape)
    trained_like(model)
    if args.dtype != "auto":
        model = model.to(getattr(torch, args.dtype))
    dtype = model.dtype
    work = Path(tempfile.mkdtemp(prefix="bench-edited-"))
    source = work / "source"
    model.save_pretrained(source)
    tokenizer.save_pretrained(source)
    del model
    spec = {"id": str(source), "revision": None, "package": None, "gguf_file": None, "trust_remote_code": False,
            "dtype": str(dtype).removeprefix("torch."), "prompt_format": "chat", "system_prompt": None}  # fmt: skip
    config = json.loads((source / "config.json").read_text())
    inputs = direction_files(work, config["hidden_size"], config["num_hidden_layers"])
    started = time.perf_counter()
    export_edited_model(inputs, {"edited": str(work / "edited")}, spec, {"dtype": None, "layer": None}, execution)
    synchronise(device)
    export_s = time.perf_counter() - started

    texts = prompt_texts(2 * args.prompts)
    job = ModelJob.open(spec, {})
    prompts = {HARMFUL: texts[: args.prompts], HARMLESS: texts[args.prompts :]}
    ids = {name: [job.prompt_format.encode(text) for text in prompts[name]] for name in MAIN_SETS}
    plain = [tokenizer.encode(text) for text in texts]
    plain = [t for t in plain if len(t) > 1]
    r, _ = export_direction(inputs, None)
    job.load_weights(execution)
    source_head = head_along(job.model, r)
    with ablate_everywhere(job.model, r):
        ablated, ablated_losses = responses_and_losses(job.runner, ids, plain, args.new_tokens)
    job.model = job.runner = None
    edited_model, edited_tokenizer = load_edited(str(work / "edited"), dtype, device, execution)
    component = DirectionComponent(edited_model, r)
    runner = ModelRunner.for_job(edited_model, edited_tokenizer, device, execution)
    edited, edited_losses = responses_and_losses(runner, ids, plain, args.new_tokens)
    component.remove()

    scored_by = [1, 2]  # any two tokens: the figure is the difference between the two models
    figures = {
        **compare(edited, ablated, scored_by),
        "max_residual_component": component.largest,
        "max_head_change_along_r": head_change(source_head, head_along(edited_model, r)),
    }
    tokens = sum(len(t) - 1 for t in plain)
    ce_difference = (edited_losses.sum() - ablated_losses.sum()) / tokens
    bounds = tolerances(dtype)
    print(f"device {device}, dtype {dtype}, shape {args.shape}, planted bug: {args.plant}, "
          f"{args.prompts} + {args.prompts} prompts, {args.new_tokens} new tokens, {len(plain)} texts "
          f"({tokens} tokens scored)")  # fmt: skip
    print(f"export seconds: {export_s:.1f}")
    print(f"max rel logit diff: {figures['max_relative_logit_difference']:.3g}")
    print(f"max refusal score diff: {figures['max_refusal_score_difference']:.3g}")
    print(f"mean kl: {figures['mean_kl']:.3g}")
    print(f"identical continuations: {figures['identical_continuations']:.3f}")
    print(f"max residual component: {figures['max_residual_component']:.3g}")
    print(f"head change along r: {figures['max_head_change_along_r']:.3g}")
    print(f"ce edited minus ablation: {ce_difference:.3g}")
    print(f"within tolerances ({str(dtype).removeprefix('torch.')}): {'no' if failures(figures, bounds) else 'yes'}")


if __name__ == "__main__":
    main()
