"""Batched generation of responses, in prompt order, with any intervention hooks that are active."""

from __future__ import annotations

import logging

import torch

from .batching import BatchRunner, left_padded
from .chat_format import PromptFormat
from .execution import ExecutionSettings
from .jsonio import write_jsonl
from .modeling import load_for_job
from .progress import Progress
from .sampling import prompt_subsets

log = logging.getLogger(__name__)


def generate(
    model,
    tokenizer,
    token_ids: list[list[int]],
    max_new_tokens: int,
    runner: BatchRunner,
    device,
    do_sample: bool = False,
    temperature: float = 1.0,
    seed: int = 0,
    progress: Progress | None = None,
) -> list[str]:
    """The model's response to each tokenized prompt (greedy unless ``do_sample``), decoded without special
    tokens. Prompts are batched by length and left-padded; ``generate`` derives positions from the mask."""
    responses: list[str | None] = [None] * len(token_ids)
    if do_sample:
        torch.manual_seed(seed)

    def process(indices):
        padded = left_padded([token_ids[i] for i in indices], tokenizer.pad_token_id, device)
        batch = {"input_ids": padded["input_ids"], "attention_mask": padded["attention_mask"]}
        with torch.inference_mode():
            output = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=do_sample,
                temperature=temperature if do_sample else None,
                top_p=None,
                top_k=None,
                pad_token_id=tokenizer.pad_token_id,
            )
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        for index, text in zip(indices, tokenizer.batch_decode(new_tokens, skip_special_tokens=True), strict=True):
            responses[int(index)] = text.strip()

    # A batch's token budget covers the tokens it will generate as well.
    runner.run([len(ids) + max_new_tokens for ids in token_ids], process, progress)
    return responses


def generate_responses(
    spec: dict, prompt_files: dict[str, str], output: str, converted_dir: str | None, settings: dict,
    execution: ExecutionSettings,
) -> None:  # fmt: skip
    """Experiment 1: the model's response to every prompt of the behaviour subset."""
    model, tokenizer, input_device, _ = load_for_job(spec, converted_dir, execution)
    prompt_format = PromptFormat(tokenizer, spec["prompt_format"], spec["system_prompt"], spec["id"])
    subsets = prompt_subsets(prompt_files, settings["n_prompts"], settings["seed"])
    records = [record | {"set": name} for name, subset in subsets.items() for record in subset]
    responses = generate(
        model,
        tokenizer,
        [prompt_format.encode(record["text"]) for record in records],
        settings["max_new_tokens"],
        BatchRunner.for_job(execution, model, input_device),
        input_device,
        settings["do_sample"],
        settings["temperature"],
        settings["seed"],
        Progress("generation", len(records)),
    )
    keep = ("id", "set", "row", "text", "level")
    write_jsonl(
        output, [{k: r[k] for k in keep if k in r} | {"response": s} for r, s in zip(records, responses, strict=True)]
    )
    log.info("%d responses", len(responses))
