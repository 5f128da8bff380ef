"""HDF5 activation files: layout, attributes, and bytes that do not depend on batch order."""

import hashlib
import os

import h5py
import numpy as np
import pytest

from refusal_directions.model.activations import (
    LAYER_CONVENTION,
    ActivationWriter,
    layer_name,
    read_layer,
    read_positions,
    write_manifest,
)
from refusal_directions.workflow.errors import UserError

SIZES = {"harmful": 10, "harmless": 6}


def write(folder, batches, values):
    writer = ActivationWriter(folder, 2, 4, SIZES, {"model_id": "m"}, {"harmful": {"prompt_hash": "abc"}})
    for name, rows in batches:
        writer.write(name, np.array(rows), [values[name][layer][rows][:, None] for layer in range(2)])
    write_manifest(folder, {"sha256": writer.commit()})


def test_layout_attributes_and_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    values = {name: rng.normal(size=(2, n, 4)).astype(np.float32) for name, n in SIZES.items()}
    write(tmp_path, [("harmful", list(range(10))), ("harmless", list(range(6)))], values)
    assert sorted(p.name for p in tmp_path.glob("*.h5")) == ["layer_00.h5", "layer_01.h5"]
    with h5py.File(tmp_path / "layer_01.h5") as handle:
        assert handle.attrs["layer"] == 1 and handle.attrs["n_layers"] == 2
        assert handle.attrs["layer_convention"] == LAYER_CONVENTION and handle.attrs["model_id"] == "m"
        assert handle["harmful"].dtype == np.float32 and handle["harmful"].shape == (10, 4)
        assert handle["harmful"].attrs["prompt_hash"] == "abc"
    arrays, attrs = read_layer(tmp_path / "layer_01.h5")
    np.testing.assert_array_equal(arrays["harmless"], values["harmless"][1])
    assert arrays["harmful"].dtype == np.float64 and attrs["layer"] == 1


def test_bytes_do_not_depend_on_batch_order(tmp_path):
    rng = np.random.default_rng(1)
    values = {name: rng.normal(size=(2, n, 4)).astype(np.float32) for name, n in SIZES.items()}
    write(tmp_path / "a", [("harmful", list(range(10))), ("harmless", list(range(6)))], values)
    write(tmp_path / "b", [("harmless", [5, 3]), ("harmful", [9, 0, 4]), ("harmless", [0, 1, 2, 4]),
                           ("harmful", [1, 2, 3, 5, 6, 7, 8])], values)  # fmt: skip
    for name in ("layer_00.h5", "layer_01.h5"):
        digests = {hashlib.sha256((tmp_path / run / name).read_bytes()).hexdigest() for run in ("a", "b")}
        assert len(digests) == 1


def test_layer_names_widen_only_past_99_layers():
    assert layer_name(3, 30) == "03" and layer_name(3, 120) == "003"


def test_files_reach_their_final_names_only_when_complete(tmp_path):
    writer = ActivationWriter(tmp_path, 2, 4, SIZES, {}, {})
    writer.write("harmful", np.arange(10), [np.ones((10, 1, 4), np.float32)] * 2)
    writer.close()  # as after a failure: nothing committed
    assert not list(tmp_path.glob("*.h5")) and len(list(tmp_path.glob("*.h5.partial"))) == 2


def test_a_damaged_layer_file_is_refused(tmp_path):
    rng = np.random.default_rng(2)
    values = {name: rng.normal(size=(2, n, 4)).astype(np.float32) for name, n in SIZES.items()}
    write(tmp_path, [("harmful", list(range(10))), ("harmless", list(range(6)))], values)
    path = tmp_path / "layer_01.h5"
    stat = path.stat()
    with open(path, "r+b") as handle:
        handle.truncate(stat.st_size // 2)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the old mtime: Snakemake would not notice
    with pytest.raises(UserError, match="layer_01.h5 does not match the sha256 recorded"):
        read_layer(path)


def test_post_instruction_positions(tmp_path):
    """The main sets keep every position in a group; the last position is also the set's dataset."""
    values = np.random.default_rng(3).normal(size=(2, 10, 3, 4)).astype(np.float32)
    tokens = ["<|im_end|>", "\n", "assistant"]
    writer = ActivationWriter(tmp_path, 2, 4, SIZES, {}, {}, positions=tokens, position_sets=("harmful",))
    writer.write("harmful", np.arange(10), [values[layer] for layer in range(2)])
    writer.write("harmless", np.arange(6), [values[layer][:6, -1:] for layer in range(2)])
    write_manifest(tmp_path, {"sha256": writer.commit()})
    positions, names = read_positions(tmp_path / "layer_01.h5", "harmful")
    np.testing.assert_array_equal(positions, values[1])
    assert names == tokens
    arrays, _ = read_layer(tmp_path / "layer_01.h5")
    assert sorted(arrays) == ["harmful", "harmless"]  # the group is not a prompt set
    np.testing.assert_array_equal(arrays["harmful"], values[1][:, -1])
