"""What every job that runs the model starts with: the model loaded under the job's execution settings, its
prompt format and runner, and the main contrast's prompts by split. ``inputs`` are a rule's named inputs:
``prompts`` (the formatted harmful and harmless prompt files; the extraction's: the sampled prompts of every
dataset), ``splits``, ``manifest`` (the extraction's, for the refusal tokens) and, for a GGUF model,
``converted``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.chat_format import PromptFormat
from ..data.prompt_sets import HARMFUL, MAIN_SETS
from ..data.sampling import prompt_subsets
from ..data.splits import read_split
from ..workflow.execution import ExecutionSettings
from ..workflow.jsonio import read_json, read_jsonl
from .forward import ModelRunner
from .loading import load_job_model, load_tokenizer, model_location


@dataclass
class ModelJob:
    spec: dict
    location: str
    gguf_file: str | None
    tokenizer: object
    prompt_format: PromptFormat
    model: object = None
    runner: ModelRunner | None = None

    @classmethod
    def open(cls, spec: dict, inputs: dict) -> ModelJob:
        """The model's tokenizer and prompt format, before its weights load (the extraction checks its
        prompts first)."""
        location, gguf_file = model_location(spec, inputs.get("converted"))
        tokenizer = load_tokenizer(location, gguf_file, spec)
        prompt_format = PromptFormat(tokenizer, spec["prompt_format"], spec["system_prompt"], spec["id"])
        return cls(spec, location, gguf_file, tokenizer, prompt_format)

    def load_weights(self, execution: ExecutionSettings) -> None:
        """The model on the job's device (the weights revision is the extraction's: hashing the weights again
        in every job would cost minutes on large models) and its runner."""
        self.model, device = load_job_model(self.spec, self.location, self.gguf_file, execution)
        self.runner = ModelRunner.for_job(self.model, self.tokenizer, device, execution)

    @classmethod
    def load(cls, spec: dict, inputs: dict, execution: ExecutionSettings) -> ModelJob:
        job = cls.open(spec, inputs)
        job.load_weights(execution)
        return job

    def encode(self, records: list[dict]) -> list[list[int]]:
        return [self.prompt_format.encode(record["text"]) for record in records]


def split_prompts(inputs: dict, split: str, n_wanted: int | None = None, seed: int = 0) -> dict[str, list[dict]]:
    """The harmful and harmless prompt records of one split (a seeded subset of ``n_wanted`` of each), each
    with its ``row`` in the set."""
    files = dict(zip(MAIN_SETS, inputs["prompts"], strict=True))
    rows = {name: read_split(inputs["splits"], name, split) for name in MAIN_SETS}
    return prompt_subsets(files, rows, n_wanted, seed)


def evaluation_prompts(inputs: dict, evaluation: dict) -> dict[str, list[dict]]:
    """The selected direction's test prompts (``evaluation``: n_prompts, seed): both sets' test split, or,
    where the rule passes ``evaluation_harmful`` (selection.evaluation.harmful_dataset), a subset of every
    sampled prompt of that dataset as the harmful ones: prompts that did not build the direction at all."""
    prompts = split_prompts(inputs, "test", evaluation["n_prompts"], evaluation["seed"])
    if "evaluation_harmful" in inputs:
        files = {HARMFUL: inputs["evaluation_harmful"]}
        every_row = {HARMFUL: np.arange(len(read_jsonl(inputs["evaluation_harmful"])))}
        prompts[HARMFUL] = prompt_subsets(files, every_row, evaluation["n_prompts"], evaluation["seed"])[HARMFUL]
    return prompts


def refusal_tokens(inputs: dict) -> list[int]:
    """The refusal tokens the extraction scored with (its manifest): every later score uses the same."""
    return read_json(inputs["manifest"])["refusal_token_ids"]
