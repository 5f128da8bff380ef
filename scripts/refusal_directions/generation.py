"""Experiment 1: the model's responses to a subset of the test split."""

from __future__ import annotations

import logging

from .chat_format import PromptFormat
from .execution import ExecutionSettings
from .forward import ModelRunner
from .jsonio import write_jsonl
from .modeling import load_for_job
from .progress import Progress
from .sampling import prompt_subsets
from .splits import read_split

log = logging.getLogger(__name__)


def generate_responses(
    spec: dict, prompt_files: dict[str, str], splits: str, output: str, converted_dir: str | None, settings: dict,
    execution: ExecutionSettings,
) -> None:  # fmt: skip
    """Experiment 1: the model's response to every prompt of the behaviour subset, drawn from the test split
    (prompts the directions were not fitted on)."""
    model, tokenizer, input_device, _ = load_for_job(spec, converted_dir, execution)
    prompt_format = PromptFormat(tokenizer, spec["prompt_format"], spec["system_prompt"], spec["id"])
    test_rows = {name: read_split(splits, name, "test") for name in prompt_files}
    subsets = prompt_subsets(prompt_files, test_rows, settings["n_prompts"], settings["seed"])
    records = [record | {"set": name} for name, subset in subsets.items() for record in subset]
    runner = ModelRunner.for_job(model, tokenizer, input_device, execution)
    responses = runner.generate(
        [prompt_format.encode(record["text"]) for record in records],
        settings["max_new_tokens"],
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
