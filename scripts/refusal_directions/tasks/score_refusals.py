"""Label each response: refused or not (substrings always; the configured classifier judge if any)."""

from __future__ import annotations

import logging

import pandas as pd

from ..prompts import read_jsonl
from ..refusal import SubstringJudge, make_judge

log = logging.getLogger(__name__)


def label_responses(records: list[dict], settings: dict) -> pd.DataFrame:
    """One row per response with ``refused`` (the configured judge) and ``refused_substring``."""
    prompts, responses = [r["text"] for r in records], [r["response"] for r in records]
    substring = SubstringJudge(settings["substrings"], settings["empty_is_refusal"]).judge(prompts, responses)
    judge = make_judge(settings)
    primary = substring if isinstance(judge, SubstringJudge) else judge.judge(prompts, responses)
    table = pd.DataFrame(records).drop(columns=["response"])
    table["refused"] = [j.refused for j in primary]
    table["evidence"] = [j.evidence for j in primary]
    table["refused_substring"] = [j.refused for j in substring]
    table["judge"] = judge.name
    table["response_chars"] = [len(r) for r in responses]
    return table


def main(responses_path: str, output: str, settings: dict) -> None:
    table = label_responses(read_jsonl(responses_path), settings)
    table.to_csv(output, index=False)
    for name, part in table.groupby("set", sort=False):
        log.info("%s: %d of %d refused", name, int(part["refused"].sum()), len(part))
