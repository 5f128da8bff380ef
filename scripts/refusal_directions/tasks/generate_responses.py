"""Experiment 1: the model's response to every prompt of the behaviour subset."""

from __future__ import annotations

import logging

from ..generation import generate, prompt_subsets
from ..modeling import load_for_job
from ..prompts import write_jsonl

log = logging.getLogger(__name__)


def main(
    spec: dict,
    prompt_files: dict[str, str],
    output: str,
    converted_dir: str | None,
    settings: dict,
    batch_size: int | str,
    device: str,
    device_map: str | None,
    threads: int,
) -> None:
    model, tokenizer, input_device, _ = load_for_job(spec, converted_dir, device, device_map, threads)
    subsets = prompt_subsets(prompt_files, settings["n_prompts"], settings["seed"])
    records = [record | {"set": name} for name, subset in subsets.items() for record in subset]
    responses = generate(
        model,
        tokenizer,
        [record["formatted"] for record in records],
        settings["max_new_tokens"],
        32 if batch_size == "auto" else batch_size,
        input_device,
        settings["do_sample"],
        settings["temperature"],
        settings["seed"],
    )
    keep = ("id", "set", "row", "text", "level")
    write_jsonl(
        output, [{k: r[k] for k in keep if k in r} | {"response": s} for r, s in zip(records, responses, strict=True)]
    )
    log.info("%d responses", len(responses))
