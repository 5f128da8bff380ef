"""Strict JSON and JSON Lines for results: NaN and inf become null (valid JSON), read back as None."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np


def _clean(value):
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | Path, data: dict) -> None:
    Path(path).write_text(json.dumps(_clean(data), indent=2, allow_nan=False) + "\n")


def read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def write_jsonl(path: str | Path, records: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(_clean(record), ensure_ascii=False, allow_nan=False) + "\n")


def read_jsonl(path: str | Path) -> list[dict]:
    """Records of a JSON Lines file the workflow wrote (user files go through prompt_sources)."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
