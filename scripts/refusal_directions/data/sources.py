"""Prompt sets from local files or the Hugging Face Hub, as clean records ``{id, text, source[, level]}``.

Every problem with a user's file (missing, not decodable, malformed rows, missing columns) becomes one
UserError that names the file and, where it can, the line.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..workflow.errors import UserError
from ..workflow.hub import OFFLINE_HINT, cache_only_unless_reachable, hub_id
from ..workflow.jsonio import write_jsonl

log = logging.getLogger(__name__)

LOCAL_FORMATS = (".txt", ".csv", ".tsv", ".json", ".jsonl", ".parquet")


def _decode(path: Path, encoding: str) -> str:
    """The file's text, without a leading byte-order mark (editors on Windows write one; it is not data)."""
    data = path.read_bytes()
    try:
        return data.decode(encoding).removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise UserError(
            f"{path} is not valid {encoding}: byte 0x{data[error.start]:02x} at line {line} (byte offset "
            f"{error.start}); save the file as UTF-8, or give its encoding in the dataset's 'encoding' key"
        ) from None


def _parse_json_lines(path: Path, text: str) -> list:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise UserError(f"{path}: line {number} is not valid JSON ({error.msg}, column {error.colno})") from None
    return rows


def _parse_json(path: Path, text: str) -> list:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: not valid JSON ({error.msg}, line {error.lineno}, column {error.colno})") from None
    if not isinstance(data, list):
        raise UserError(f"{path} must hold a JSON list of strings or of objects")
    return data


def _parse_table(path: Path, text: str, suffix: str) -> list:
    import io

    import pandas as pd

    try:
        frame = pd.read_csv(io.StringIO(text), sep="\t" if suffix == ".tsv" else ",", keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        reason = str(error).strip().splitlines()[0]
        raise UserError(f"{path}: cannot be read as {suffix[1:].upper()}: {reason}") from None
    return frame.to_dict("records")


def _read_local(path: Path, encoding: str) -> list:
    """Rows of a local file: strings (txt, or a JSON list of strings) or dicts (everything else)."""
    suffix = path.suffix.lower()
    if suffix not in LOCAL_FORMATS:
        raise UserError(f"dataset file {path}: unsupported format '{suffix}' (use one of {', '.join(LOCAL_FORMATS)})")
    if not path.is_file():
        raise UserError(f"dataset file {path} does not exist")
    if suffix == ".parquet":
        import pandas as pd

        try:
            return pd.read_parquet(path).to_dict("records")
        except Exception as error:  # pyarrow raises its own types for a damaged file
            raise UserError(f"{path}: cannot be read as Parquet ({type(error).__name__}: {error})") from None
    text = _decode(path, encoding)
    if suffix == ".txt":
        return text.splitlines()
    if suffix == ".jsonl":
        return _parse_json_lines(path, text)
    if suffix == ".json":
        return _parse_json(path, text)
    return _parse_table(path, text, suffix)


def load_hub_dataset(name: str, spec: dict) -> list[dict]:
    """The rows of one split of a Hub dataset (from the cache when the Hub cannot be reached)."""
    cache_only_unless_reachable()
    import datasets

    try:
        table = datasets.load_dataset(name, spec.get("subset"), split=spec["split"], revision=spec.get("revision"))
    except Exception as error:  # the library raises many types for "not reachable / not cached"
        raise UserError(
            f"cannot load Hub dataset '{name}' (split {spec['split']}): {type(error).__name__}; {OFFLINE_HINT}"
        ) from error
    return table.to_list()


def _text_and_level(rows: list, spec: dict, where: str) -> tuple[list, list | None]:
    """The prompt of every row and, if the spec names a level column, its harm level."""
    level_column = spec.get("level_column")
    if rows and isinstance(rows[0], str):
        if level_column:
            raise UserError(f"{where} has one prompt per line and no columns; it cannot have level_column")
        return rows, None
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise UserError(f"{where}: row {number} is a {type(row).__name__}, not an object with named fields")
    columns = list(rows[0]) if rows else []
    for role, column in (("text", spec["text_column"]), ("level", level_column)):
        if column and rows and column not in rows[0]:
            raise UserError(f"{where} has no {role} column '{column}' (columns: {', '.join(map(str, columns))})")
    texts = [row.get(spec["text_column"]) for row in rows]
    return texts, ([row.get(level_column) for row in rows] if level_column else None)


def load_dataset_records(name: str, spec: dict, what: str = "prompts") -> tuple[list[dict], dict]:
    """Records ``{id, text, source}`` of one dataset (of prompts, or of texts to score), with empty and
    duplicate rows dropped.

    ``id`` keeps the source row number, so a prompt can be traced back to its file or Hub row.
    Returns the records and counts of what was dropped.
    """
    source = spec["source"]
    hub = hub_id(source)
    if hub:
        raw, where = load_hub_dataset(hub, spec), f"Hub dataset '{hub}'"
    else:
        raw, where = _read_local(Path(source), spec.get("encoding", "utf-8")), source
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
        raise UserError(f"dataset '{name}' ({source}) holds no usable {what} ({n_empty} empty rows)")
    return records, counts


def download_dataset(inputs: dict, outputs: dict, name: str, spec: dict, what: str = "prompts") -> None:
    """Fetch one dataset (local file or Hub; ``inputs``: its local ``source`` file, if any, which ``spec``
    names) into a normalised JSON Lines file, ``dataset``."""
    records, counts = load_dataset_records(name, spec, what)
    if counts["dropped_empty"] or counts["dropped_duplicate"]:
        log.warning(
            "dataset '%s': dropped %d empty and %d duplicate %s of %d rows",
            name, counts["dropped_empty"], counts["dropped_duplicate"], what, counts["rows"],
        )  # fmt: skip
    write_jsonl(outputs["dataset"], records)
    log.info("dataset '%s': %d %s", name, counts["kept"], what)
