"""What an intervention costs the model's ordinary abilities: the summed cross-entropy of every document under
each condition of ``interventions.conditions.CAPABILITY`` (no intervention, the evaluation's interventions and
controls by hooks on the source model, and the exported edited model loaded as it is), on two kinds of text:

- on-distribution: the unedited model's own greedy responses to the harmless test prompts (the evaluation's
  ``baseline_harmless`` responses), scored as continuations of their formatted prompts (Arditi et al.'s
  "on-distribution" loss; the prompt's tokens are context, never scored);
- generic: ``capability.texts`` (e.g. a Pile or Alpaca-responses sample), every token after the first,
  the documents in file order until ``capability.n_tokens`` scored tokens.

One row per condition, text and document: its scored tokens and their summed loss. capability_summary.py
turns them into means with intervals."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from ..data.prompt_sets import HARMLESS
from ..interventions.condition_hooks import condition_hooks
from ..interventions.conditions import CAPABILITY, CONDITIONS, EDITED, EDITED_WEIGHTS, baseline_of
from ..model.forward import ModelRunner
from ..model.job import ModelJob
from ..model.loading import resolve_device, resolve_dtype
from ..selection.evaluation import evaluation_vectors
from ..workflow.execution import ExecutionSettings
from ..workflow.jsonio import read_jsonl
from ..workflow.progress import Progress
from .capability_texts import GENERIC, ON_DISTRIBUTION
from .edited_check import load_edited

log = logging.getLogger(__name__)

# A longer generic document is cut here: one sequence's logits stay small, and the loss per token hardly
# depends on context further back.
MAX_DOCUMENT_TOKENS = 1024
COLUMNS = ["condition", "text", "document", "n_tokens", "loss_sum"]


@dataclass
class Documents:
    """Token sequences of one kind of text, each scored over its last ``n_scored`` tokens."""

    text: str
    ids: list[str]
    token_ids: list[list[int]]
    n_scored: list[int]


def on_distribution_documents(generations_path: str, job: ModelJob) -> Documents:
    """The baseline's responses to the harmless test prompts, after their prompts (an empty response,
    possible when generation stops at once, has nothing to score and is left out)."""
    baseline = baseline_of(HARMLESS)
    documents = Documents(ON_DISTRIBUTION, [], [], [])
    for record in (r for r in read_jsonl(generations_path) if r["condition"] == baseline):
        response = job.tokenizer.encode(record["response"], add_special_tokens=False)
        if response:
            documents.ids.append(record["id"])
            documents.token_ids.append(job.prompt_format.encode(record["text"]) + response)
            documents.n_scored.append(len(response))
    return documents


def generic_documents(texts_path: str, tokenizer, n_tokens: int) -> Documents:
    """The texts in file order, each cut at MAX_DOCUMENT_TOKENS, until ``n_tokens`` tokens are scored (the
    last document cut to fit)."""
    documents, budget = Documents(GENERIC, [], [], []), n_tokens
    for record in read_jsonl(texts_path):
        ids = tokenizer.encode(record["text"])[: min(MAX_DOCUMENT_TOKENS, budget + 1)]
        if len(ids) < 2:
            continue
        documents.ids.append(record["id"])
        documents.token_ids.append(ids)
        documents.n_scored.append(len(ids) - 1)
        budget -= len(ids) - 1
        if budget == 0:
            break
    log.info("generic text: %d documents, %d tokens scored", len(documents.ids), n_tokens - budget)
    return documents


def read_documents(inputs: dict, job: ModelJob, n_tokens: int) -> list[Documents]:
    """Every kind of text this run has (generic text only where ``inputs`` has ``texts``), tokenized before
    any weights load."""
    documents = [on_distribution_documents(inputs["generations"], job)]
    if "texts" in inputs:
        documents.append(generic_documents(inputs["texts"], job.tokenizer, n_tokens))
    return documents


def loss_rows(runner: ModelRunner, name: str, documents: list[Documents]) -> list[dict]:
    rows = []
    for part in documents:
        progress = Progress(f"{name}: cross-entropy, {part.text} text", len(part.ids))
        sums = runner.loss_sums(part.token_ids, part.n_scored, progress)
        rows += [
            {"condition": name, "text": part.text, "document": document, "n_tokens": n, "loss_sum": float(loss)}
            for document, n, loss in zip(part.ids, part.n_scored, sums, strict=True)
        ]
    return rows


def measure_capability(
    inputs: dict, outputs: dict, model: dict, capability: dict, seed: int, execution: ExecutionSettings
) -> None:
    """losses.csv: every condition of CAPABILITY that hooks make (with the evaluation's vectors: ``seed`` is
    its seed, so the random direction is the same), on every document."""
    job = ModelJob.open(model, inputs)
    documents = read_documents(inputs, job, capability["n_tokens"])
    vectors = evaluation_vectors(inputs, seed)
    job.load_weights(execution)
    rows = []
    for name in CAPABILITY:
        condition = CONDITIONS[name]
        if condition.change != EDITED_WEIGHTS and condition.available(vectors):
            with condition_hooks(condition, job.model, vectors):
                rows += loss_rows(job.runner, name, documents)
    pd.DataFrame(rows, columns=COLUMNS).to_csv(outputs["losses"], index=False)


def measure_edited_capability(
    inputs: dict, outputs: dict, model: dict, capability: dict, execution: ExecutionSettings
) -> None:
    """edited_losses.csv: the edited checkpoint (loaded with plain transformers, in the dtype the source's jobs
    run in) on the same documents, tokenized by the source's tokenizer (its check shows the copy encodes
    alike)."""
    job = ModelJob.open(model, inputs)
    documents = read_documents(inputs, job, capability["n_tokens"])
    device = resolve_device(execution.device)
    edited, tokenizer = load_edited(inputs["edited"], resolve_dtype(model["dtype"], device), device, execution)
    runner = ModelRunner.for_job(edited, tokenizer, edited.get_input_embeddings().weight.device, execution)
    rows = loss_rows(runner, EDITED, documents)
    pd.DataFrame(rows, columns=COLUMNS).to_csv(outputs["losses"], index=False)
