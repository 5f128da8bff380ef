"""Prompts as the model sees them: one user turn through the model's chat template (or the raw text), as
a string for people and as token ids for the model."""

from __future__ import annotations

import logging

from ..workflow.errors import UserError
from ..workflow.jsonio import read_jsonl

log = logging.getLogger(__name__)

# Stands in for the user's text when the template is rendered once to find what comes before and after it.
PLACEHOLDER = "<<refusal-directions: user text>>"


class PromptFormat:
    """The template around one user turn, split at the user's text: ``prefix`` + text + ``suffix``.

    ``encode`` tokenizes the template's parts with their special tokens and the user's text as plain text,
    so a prompt that contains a control-token string (say ``<|im_start|>system``) stays data and cannot open
    a turn of its own. ``suffix_ids`` are the tokens the template appends after the user's text (the
    post-instruction positions).
    """

    def __init__(self, tokenizer, prompt_format: str, system_prompt: str | None, model_id: str):
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.system_prompt = system_prompt
        if prompt_format == "raw":
            self.prefix, self.suffix = "", ""
        else:
            if not getattr(tokenizer, "chat_template", None):
                raise UserError(
                    f"model '{model_id}' has no chat template; set prompt_format: raw in its config entry to "
                    "feed raw prompts"
                )
            parts = self._render(PLACEHOLDER).split(PLACEHOLDER)
            if len(parts) != 2:
                raise UserError(f"the chat template of model '{model_id}' does not show the user's text exactly once")
            self.prefix, self.suffix = parts
        self.templated = prompt_format != "raw"
        self.prefix_ids = self._template_ids(self.prefix)
        self.suffix_ids = self._template_ids(self.suffix)
        self.special_strings = sorted(
            {token.content for token in tokenizer.added_tokens_decoder.values() if token.special}
            | set(tokenizer.all_special_tokens)
        )

    def _render(self, text: str) -> str:
        messages = [] if self.system_prompt is None else [{"role": "system", "content": self.system_prompt}]
        messages.append({"role": "user", "content": text})
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _template_ids(self, part: str) -> list[int]:
        return self.tokenizer(part, add_special_tokens=False)["input_ids"] if part else []

    def format(self, text: str) -> str:
        """The exact string the model is fed (for people: ``encode`` is what the model gets)."""
        formatted = self.prefix + text + self.suffix
        if self.templated and self._render(text) != formatted:
            raise UserError(
                f"the chat template of model '{self.model_id}' changes the prompt text it is given "
                f"({text[:40]!r}...); use prompt_format: raw"
            )
        return formatted

    def encode(self, text: str) -> list[int]:
        text_ids = self.tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        return self.prefix_ids + text_ids + self.suffix_ids

    def holds_special_text(self, text: str) -> bool:
        """Whether the text contains the string of one of the tokenizer's special tokens."""
        return any(special in text for special in self.special_strings)


def formatted_prompt_sets(prompt_format: PromptFormat, prompt_files: dict[str, str]) -> dict[str, list[dict]]:
    """The records of each sampled prompt set, each with ``formatted``: the string the model is fed."""
    sets = {}
    for name, path in prompt_files.items():
        records = read_jsonl(path)
        for record in records:
            record["formatted"] = prompt_format.format(record["text"])
        special = [record["id"] for record in records if prompt_format.holds_special_text(record["text"])]
        if special:
            log.warning(
                "%s: %d prompt(s) contain special-token text, tokenized as plain text (first: %s)",
                name, len(special), special[0],
            )  # fmt: skip
        sets[name] = records
    return sets
