"""Experiment 1: the model's responses to a subset of the test split."""

from __future__ import annotations

import logging

from ..model.job import ModelJob, split_prompts
from ..model.resume import ResumeState
from ..workflow.execution import ExecutionSettings
from ..workflow.jsonio import write_jsonl
from ..workflow.progress import Progress

log = logging.getLogger(__name__)


def generate_responses(
    inputs: dict, outputs: dict, model: dict, generation: dict, execution: ExecutionSettings
) -> None:
    """Experiment 1: the model's response to every prompt of the behaviour subset, drawn from the test split
    (prompts the directions were not fitted on)."""
    settings = generation
    job = ModelJob.load(model, inputs, execution)
    subsets = split_prompts(inputs, "test", settings["n_prompts"], settings["seed"])
    records = [record | {"set": name} for name, subset in subsets.items() for record in subset]
    responses, _ = job.runner.generate(
        job.encode(records),
        settings["max_new_tokens"],
        settings["do_sample"],
        settings["temperature"],
        settings["seed"],
        Progress("generation", len(records)),
        ResumeState(execution.resume),
    )
    keep = ("id", "set", "row", "text", "level")
    write_jsonl(
        outputs["responses"],
        [{k: r[k] for k in keep if k in r} | {"response": s} for r, s in zip(records, responses, strict=True)],
    )
    log.info("%d responses", len(responses))
