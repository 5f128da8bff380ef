"""Prompt sets: load from local files or the Hugging Face Hub, clean, sample with a seed, read and write JSONL."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from .runlog import UserError
from .workflow_helpers import hub_id

log = logging.getLogger(__name__)

OFFLINE_HINT = (
    "without Hub access, run the offline default instead: `make run` "
    "(config/config.yaml: the embedded SmolLM2-135M-Instruct and the prompts under data/)"
)
LOCAL_FORMATS = (".txt", ".csv", ".tsv", ".json", ".jsonl", ".parquet")


def _read_local(path: Path) -> list:
    """Rows of a local file: strings (txt, or a JSON list of strings) or dicts (everything else)."""
    suffix = path.suffix.lower()
    if not path.exists():
        raise UserError(f"dataset file {path} does not exist")
    if suffix == ".txt":
        return path.read_text(encoding="utf-8").splitlines()
    if suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise UserError(f"{path} must hold a JSON list of strings or of objects")
        return data
    if suffix in (".csv", ".tsv", ".parquet"):
        import pandas as pd

        if suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", keep_default_na=False)
        return frame.to_dict("records")
    raise UserError(f"dataset file {path}: unsupported format '{suffix}' (use one of {', '.join(LOCAL_FORMATS)})")


def _text_and_level(rows: list, spec: dict, where: str) -> tuple[list, list | None]:
    """The prompt of every row and, if the spec names a level column, its harm level."""
    level_column = spec.get("level_column")
    if rows and isinstance(rows[0], str):
        if level_column:
            raise UserError(f"{where} has one prompt per line and no columns; it cannot have level_column")
        return rows, None
    columns = list(rows[0]) if rows else []
    for role, column in (("text", spec["text_column"]), ("level", level_column)):
        if column and rows and column not in rows[0]:
            raise UserError(f"{where} has no {role} column '{column}' (columns: {', '.join(map(str, columns))})")
    texts = [row.get(spec["text_column"]) for row in rows]
    return texts, ([row.get(level_column) for row in rows] if level_column else None)


def hub_reachable(timeout: float = 5.0) -> bool:
    """True when the Hub endpoint accepts a TCP connection; avoids minutes of library retries offline."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _read_hub(name: str, spec: dict) -> list:
    import datasets

    if not hub_reachable():
        # Cached copies still load; anything else fails here, not after minutes of retries.
        os.environ["HF_HUB_OFFLINE"] = "1"
        datasets.config.HF_HUB_OFFLINE = True
    try:
        table = datasets.load_dataset(name, spec.get("subset"), split=spec["split"], revision=spec.get("revision"))
    except Exception as error:  # the library raises many types for "not reachable / not cached"
        raise UserError(
            f"cannot load Hub dataset '{name}' (split {spec['split']}): {type(error).__name__}; {OFFLINE_HINT}"
        ) from error
    return table.to_list()


def load_dataset_records(name: str, spec: dict) -> tuple[list[dict], dict]:
    """Records ``{id, text, source}`` of one dataset, with empty and duplicate prompts dropped.

    ``id`` keeps the source row number, so a prompt can be traced back to its file or Hub row.
    Returns the records and counts of what was dropped.
    """
    source = spec["source"]
    hub = hub_id(source)
    raw, where = (_read_hub(hub, spec), f"Hub dataset '{hub}'") if hub else (_read_local(Path(source)), source)
    texts, levels = _text_and_level(raw, spec, where)
    records, seen, n_empty, n_duplicate = [], set(), 0, 0
    for row, value in enumerate(texts):
        text = value.strip() if isinstance(value, str) else ""
        if not text:
            n_empty += 1
        elif text in seen:
            n_duplicate += 1
        else:
            seen.add(text)
            record = {"id": f"{name}-{row:05d}", "text": text, "source": source}
            if levels is not None:
                record["level"] = levels[row]
            records.append(record)
    counts = {"rows": len(raw), "kept": len(records), "dropped_empty": n_empty, "dropped_duplicate": n_duplicate}
    if not records:
        raise UserError(f"dataset '{name}' ({source}) holds no usable prompts ({n_empty} empty rows)")
    return records, counts


def sample_records(records: list[dict], n_samples: int, seed: int, name: str) -> list[dict]:
    """``n_samples`` records drawn without replacement with ``seed``, kept in source order.

    Two datasets of equal length sampled with the same seed get the same row numbers, which keeps
    line-aligned control sets (imperatives vs questions) paired.
    """
    if n_samples > len(records):
        raise UserError(
            f"n_samples = {n_samples} but dataset '{name}' has only {len(records)} usable prompts; "
            "lower n_samples or add prompts"
        )
    chosen = np.sort(np.random.default_rng(seed).permutation(len(records))[:n_samples])
    return [records[i] for i in chosen]


def write_jsonl(path: str | Path, records: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_jsonl(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def text_hash(texts: list[str]) -> str:
    """sha256 over the exact strings, in order: identifies a prompt set as the model saw it."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()
