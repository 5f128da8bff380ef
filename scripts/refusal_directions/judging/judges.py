"""The judges of refusal: one registry, one name each.

A judge decides, for one response, whether the model refused. ``substring`` reads the response text for the
reference's refusal phrases; ``refusal_score`` reads the prompt's refusal score (the first token, no text);
``classifier`` is a sequence-classification model; ``llm`` is a causal language model asked a fixed rubric
(llm_judge.py). ``text_or_score`` is the rule the headline rates used before judges could be chosen: the text
judge (the classifier when it is listed, else the substrings) or the score. Every label table holds one
column per judge run (``refused_<judge>``) and ``refused``: the primary judge's verdict (``refusal.primary``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

SUBSTRING, REFUSAL_SCORE, CLASSIFIER, LLM = "substring", "refusal_score", "classifier", "llm"
TEXT_OR_SCORE = "text_or_score"


@dataclass(frozen=True)
class Judge:
    name: str
    label: str
    column: str
    # Runs a model of its own in a job of its own (judge_responses), once per response file.
    model_job: bool = False


JUDGES: dict[str, Judge] = {
    judge.name: judge
    for judge in (
        Judge(SUBSTRING, "refusal phrases in the response", "refused_substring"),
        Judge(REFUSAL_SCORE, "refusal score of the first token > 0", "refused_score"),
        Judge(CLASSIFIER, "sequence classifier", "refused_classifier"),
        Judge(LLM, "language-model judge", "refused_llm", model_job=True),
    )
}
# The text judge and the combined rule that the headline rates used before judges could be chosen.
TEXT_COLUMN = "refused_text"
RULES: dict[str, Judge] = {
    TEXT_OR_SCORE: Judge(TEXT_OR_SCORE, "response text or refusal score", "refused_text_or_score")
}
PRIMARY_CHOICES = (*RULES, *JUDGES)
# Judges that run in judge_responses, in their registry order.
MODEL_JOB_JUDGES = tuple(name for name, judge in JUDGES.items() if judge.model_job)

# The response files of a run that judges read, named for the stage that wrote them.
RESPONSE_SOURCES = ("behaviour", "interventions", "evaluation", "edited")

# A judge model with fewer parameters than this is a demonstration of the machinery, not evidence.
EVIDENCE_MIN_PARAMS = 7_000_000_000


def column(name: str) -> str:
    """The label-table column of a judge or rule."""
    return {**JUDGES, **RULES}[name].column


def label(name: str) -> str:
    return {**JUDGES, **RULES}[name].label


def text_judge(judges: list[str]) -> str:
    """The judge of the response text in ``text_or_score``: the classifier when it runs, else the substrings."""
    return CLASSIFIER if CLASSIFIER in judges else SUBSTRING


def pair_digest(prompt: str, response: str) -> str:
    """Names one (prompt, response) pair: a model judge's verdict is read back only for the pair it judged."""
    return hashlib.sha256(f"{prompt}\0{response}".encode()).hexdigest()[:16]
