"""Prompts as the model sees them: one user turn through the model's chat template, or the raw text."""

from __future__ import annotations

from .errors import UserError
from .jsonio import read_jsonl


def format_prompt(tokenizer, text: str, prompt_format: str, system_prompt: str | None, model_id: str) -> str:
    """The exact string the model is fed: one user turn through the chat template, or the raw text."""
    if prompt_format == "raw":
        return text
    if not getattr(tokenizer, "chat_template", None):
        raise UserError(
            f"model '{model_id}' has no chat template; set prompt_format: raw in its config entry to feed raw prompts"
        )
    messages = [] if system_prompt is None else [{"role": "system", "content": system_prompt}]
    messages.append({"role": "user", "content": text})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def formatted_prompt_sets(tokenizer, spec: dict, prompt_files: dict[str, str]) -> dict[str, list[dict]]:
    """The records of each sampled prompt set, each with ``formatted``: the string the model is fed."""
    sets = {}
    for name, path in prompt_files.items():
        records = read_jsonl(path)
        for record in records:
            record["formatted"] = format_prompt(
                tokenizer, record["text"], spec["prompt_format"], spec["system_prompt"], spec["id"]
            )
        sets[name] = records
    return sets
