"""Loading, cleaning and sampling prompt sets from local files."""

import json

import pandas as pd
import pytest

from refusal_directions.data.sampling import sample_records
from refusal_directions.data.sources import load_dataset_records
from refusal_directions.model.extraction import text_hash
from refusal_directions.workflow.errors import UserError
from refusal_directions.workflow.jsonio import read_jsonl, write_jsonl

TEXTS = ["Describe a rainbow", "List three fruits", "Name a planet"]


def spec(path, column="text"):
    return {"source": str(path), "text_column": column}


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".tsv", ".json", ".jsonl", ".parquet"])
def test_every_local_format_loads(tmp_path, suffix):
    path = tmp_path / f"prompts{suffix}"
    frame = pd.DataFrame({"prompt": TEXTS, "other": [1, 2, 3]})
    if suffix == ".txt":
        path.write_text("\n".join(TEXTS) + "\n")
    elif suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif suffix == ".json":
        path.write_text(json.dumps(frame.to_dict("records")))
    elif suffix == ".jsonl":
        write_jsonl(path, frame.to_dict("records"))
    else:
        frame.to_parquet(path)
    records, counts = load_dataset_records("set", spec(path, "prompt"))
    assert [r["text"] for r in records] == TEXTS
    assert [r["id"] for r in records] == ["set-00000", "set-00001", "set-00002"]
    assert all(r["source"] == str(path) for r in records)
    assert counts["kept"] == 3


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".tsv", ".json", ".jsonl"])
def test_a_byte_order_mark_is_not_part_of_the_first_prompt(tmp_path, suffix):
    plain = tmp_path / f"plain{suffix}"
    frame = pd.DataFrame({"prompt": TEXTS})
    if suffix == ".txt":
        plain.write_text("\n".join(TEXTS) + "\n")
    elif suffix in (".csv", ".tsv"):
        frame.to_csv(plain, index=False, sep="\t" if suffix == ".tsv" else ",")
    elif suffix == ".json":
        plain.write_text(json.dumps(frame.to_dict("records")))
    else:
        write_jsonl(plain, frame.to_dict("records"))
    marked = tmp_path / f"marked{suffix}"
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())  # what Windows editors write as "UTF-8"
    records, _ = load_dataset_records("set", spec(marked, "prompt"))
    assert [r["text"] for r in records] == TEXTS


def test_missing_text_column_names_file_and_columns(tmp_path):
    path = tmp_path / "p.csv"
    pd.DataFrame({"prompt": TEXTS}).to_csv(path, index=False)
    with pytest.raises(UserError, match=r"p\.csv has no text column 'text' \(columns: prompt\)"):
        load_dataset_records("set", spec(path))


def test_empty_and_duplicate_prompts_are_dropped_and_counted(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("a prompt\n\n   \nanother\na prompt\n")
    records, counts = load_dataset_records("set", spec(path))
    assert [r["text"] for r in records] == ["a prompt", "another"]
    assert [r["id"] for r in records] == ["set-00000", "set-00003"]  # source row numbers survive
    assert counts == {"rows": 5, "kept": 2, "dropped_empty": 2, "dropped_duplicate": 1}


def test_all_empty_dataset_fails(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("\n \n")
    with pytest.raises(UserError, match="no usable prompts"):
        load_dataset_records("set", spec(path))


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_dataset_records("set", spec(tmp_path / "nope.txt"))
    odd = tmp_path / "p.xml"
    odd.write_text("<x/>")
    with pytest.raises(UserError, match="unsupported format"):
        load_dataset_records("set", spec(odd))


def test_sampling_is_seeded_ordered_and_paired():
    records = [{"id": f"a-{i}", "text": f"t{i}"} for i in range(50)]
    twins = [{"id": f"b-{i}", "text": f"q{i}"} for i in range(50)]
    first = sample_records(records, 10, 42, "a")
    assert first == sample_records(records, 10, 42, "a")
    assert first != sample_records(records, 10, 7, "a")
    rows = [int(r["id"].split("-")[1]) for r in first]
    assert rows == sorted(rows)
    assert [r["id"].split("-")[1] for r in sample_records(twins, 10, 42, "b")] == [str(x) for x in rows]


def test_n_samples_larger_than_available_fails():
    with pytest.raises(UserError, match="n_samples = 11 but dataset 'a' has only 10"):
        sample_records([{"id": str(i), "text": str(i)} for i in range(10)], 11, 0, "a")


def test_jsonl_roundtrip_and_hash(tmp_path):
    records = [{"id": "x", "text": "é ü"}]
    write_jsonl(tmp_path / "a.jsonl", records)
    assert read_jsonl(tmp_path / "a.jsonl") == records
    assert text_hash(["ab", "c"]) != text_hash(["a", "bc"])


@pytest.mark.parametrize("suffix", [".txt", ".csv"])
def test_a_file_that_is_not_utf8_names_its_line_and_the_fix(tmp_path, suffix):
    path = tmp_path / f"p{suffix}"
    lines = (["text"] if suffix == ".csv" else []) + ["Describe a rainbow", "Name a planet", "Cook a crêpe"]
    path.write_bytes("\n".join(lines).encode("latin-1"))
    line = len(lines)
    with pytest.raises(
        UserError, match=rf"p\{suffix} is not valid utf-8: byte 0xea at line {line} .*save the file as UTF-8"
    ):
        load_dataset_records("set", spec(path))
    records, _ = load_dataset_records("set", {**spec(path), "encoding": "latin-1"})
    assert records[-1]["text"] == "Cook a crêpe"


def test_malformed_json_lines_name_the_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"text": "a"}\n{"text": "b"}\n\n{"text": "c"\n')
    with pytest.raises(UserError, match=r"p\.jsonl: line 4 is not valid JSON"):
        load_dataset_records("set", spec(path))
    path.write_text('["not", "an object"]\n')
    with pytest.raises(UserError, match="row 1 is a list, not an object"):
        load_dataset_records("set", spec(path))


def test_malformed_json_names_line_and_column(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('[\n  {"text": "a"},\n  {"text": }\n]')
    with pytest.raises(UserError, match=r"p\.json: not valid JSON \(Expecting value, line 3, column 12\)"):
        load_dataset_records("set", spec(path))
