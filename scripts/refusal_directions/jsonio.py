"""Strict JSON for results: NaN and inf become null (valid JSON), read back as NaN."""

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
