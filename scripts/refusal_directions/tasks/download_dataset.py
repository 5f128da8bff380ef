"""Fetch one dataset (local file or Hub) into a normalised JSONL of {id, text, source}."""

from __future__ import annotations

import logging

from ..prompts import load_dataset_records, write_jsonl

log = logging.getLogger(__name__)


def main(name: str, spec: dict, output: str) -> None:
    records, counts = load_dataset_records(name, spec)
    if counts["dropped_empty"] or counts["dropped_duplicate"]:
        log.warning(
            "dataset '%s': dropped %d empty and %d duplicate prompts of %d rows",
            name,
            counts["dropped_empty"],
            counts["dropped_duplicate"],
            counts["rows"],
        )
    write_jsonl(output, records)
    log.info("dataset '%s': %d prompts", name, counts["kept"])
