"""What every job that runs the model starts with: the model loaded under the job's execution settings, its
prompt format and runner, and the main contrast's prompts by split. ``inputs`` are a rule's named inputs:
``prompts`` (the formatted harmful and harmless prompt files), ``splits``, ``manifest`` (the extraction's,
for the refusal tokens) and, for a GGUF model, ``converted``."""

from __future__ import annotations

from dataclasses import dataclass

from .chat_format import PromptFormat
from .execution import ExecutionSettings
from .extraction import MAIN_SETS
from .forward import ModelRunner
from .jsonio import read_json
from .modeling import load_for_job
from .runlog import named_files
from .sampling import prompt_subsets
from .splits import read_split


@dataclass
class ModelJob:
    model: object
    tokenizer: object
    prompt_format: PromptFormat
    runner: ModelRunner

    @classmethod
    def load(cls, spec: dict, inputs: dict, execution: ExecutionSettings) -> ModelJob:
        model, tokenizer, device = load_for_job(spec, inputs.get("converted"), execution)
        prompt_format = PromptFormat(tokenizer, spec["prompt_format"], spec["system_prompt"], spec["id"])
        return cls(model, tokenizer, prompt_format, ModelRunner.for_job(model, tokenizer, device, execution))

    def encode(self, records: list[dict]) -> list[list[int]]:
        return [self.prompt_format.encode(record["text"]) for record in records]


def split_prompts(inputs: dict, split: str, n_wanted: int | None = None, seed: int = 0) -> dict[str, list[dict]]:
    """The harmful and harmless prompt records of one split (a seeded subset of ``n_wanted`` of each), each
    with its ``row`` in the set."""
    files = dict(zip(MAIN_SETS, inputs["prompts"], strict=True))
    rows = {name: read_split(inputs["splits"], name, split) for name in MAIN_SETS}
    return prompt_subsets(files, rows, n_wanted, seed)


def refusal_tokens(inputs: dict) -> list[int]:
    """The refusal tokens the extraction scored with (its manifest): every later score uses the same."""
    return read_json(inputs["manifest"])["refusal_token_ids"]


def job_context(snakemake) -> dict:
    """What every model job's function takes from its Snakemake job: the model's config entry, the named
    inputs and outputs, and the execution settings (resources, never params)."""
    execution = ExecutionSettings.from_resources(snakemake.resources, snakemake.threads)
    return {"spec": snakemake.params.model, **named_files(snakemake), "execution": execution}
