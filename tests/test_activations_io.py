"""HDF5 activation files: layout, attributes, and bytes that do not depend on batch order."""

import hashlib

import h5py
import numpy as np

from refusal_directions.activations import LAYER_CONVENTION, ActivationWriter, layer_name, read_layer

SIZES = {"harmful": 10, "harmless": 6}


def write(folder, batches, values):
    writer = ActivationWriter(folder, 2, 4, SIZES, {"model_id": "m"}, {"harmful": {"prompt_hash": "abc"}})
    for name, rows in batches:
        writer.write(name, np.array(rows), [values[name][layer][rows] for layer in range(2)])
    writer.close()


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
