"""Measure the peak-memory growth of an extraction whose activations are large (used by test_extraction).

    python tests/memory_probe.py MODEL_DIR OUT_DIR [--keep]

The model's tokenizer is used with a stub model whose 32 blocks cost nothing but output hidden size 4096,
so 400 prompts make 210 MB of activations. Prints JSON: growth and total in bytes, and whether the stored
rows are in prompt order. --keep makes the sink also hold every batch (a buffer, for the control).
"""

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from refusal_directions.model.activations import ActivationWriter, read_layer, write_manifest  # noqa: E402
from refusal_directions.model.batching import BatchRunner  # noqa: E402
from refusal_directions.model.extraction import Extractor  # noqa: E402
from refusal_directions.model.forward import ModelRunner  # noqa: E402
from refusal_directions.model.loading import load_tokenizer  # noqa: E402

from conftest import HARMFUL, HARMLESS, encode_prompts  # noqa: E402

N_LAYERS, HIDDEN = 32, 4096


class AddOne(torch.nn.Module):
    def forward(self, hidden):
        return hidden + 1.0


class WideStub(torch.nn.Module):
    """Model-shaped: ``model.layers`` are the blocks; next-token logits of two tokens, all zero."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.model = Body(vocab_size)

    def get_input_embeddings(self):
        return self.model.embed

    def forward(self, input_ids, attention_mask, position_ids, cache=None, use_cache=False, logits_to_keep=1):
        self.model(input_ids)
        return SimpleNamespace(logits=torch.zeros(len(input_ids), 1, 2))


class Body(torch.nn.Module):
    def __init__(self, vocab_size: int):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, HIDDEN)
        self.layers = torch.nn.ModuleList(AddOne() for _ in range(N_LAYERS))

    def forward(self, input_ids):
        hidden = self.embed(input_ids)
        for block in self.layers:
            hidden = block(hidden)
        return hidden


def peak_rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def main() -> None:
    model_dir, out_dir, keep = sys.argv[1], Path(sys.argv[2]), "--keep" in sys.argv
    tokenizer = load_tokenizer(model_dir, None, {"id": "tiny", "trust_remote_code": False})
    model = WideStub(len(tokenizer)).eval()
    texts = encode_prompts(tokenizer, (HARMFUL + HARMLESS) * 10)
    writer = ActivationWriter(out_dir, N_LAYERS, HIDDEN, {"all": len(texts)}, {}, {})
    # prefix_cache off: the stub keeps no key/value cache.
    extractor = Extractor(ModelRunner(model, tokenizer, torch.device("cpu"), BatchRunner(16), "off"))
    extractor.run(texts[:16], lambda rows, per_layer, scores: None)  # warm-up: allocator pools, lazy imports
    kept = []

    def sink(rows, per_layer, scores):
        writer.write("all", rows, per_layer)
        if keep:
            kept.append([values.copy() for values in per_layer])

    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    before = peak_rss_bytes()
    extractor.run(texts, sink)
    growth = peak_rss_bytes() - before
    write_manifest(out_dir, {"sha256": writer.commit()})
    stored, _ = read_layer(out_dir / f"layer_{N_LAYERS - 1}.h5")
    first = torch.tensor([texts[0]])
    with torch.inference_mode():
        expected = model.model.embed(first)[0, -1].numpy() + N_LAYERS
    in_order = bool(np.allclose(stored["all"][0], expected))
    print(json.dumps({"growth": growth, "total": len(texts) * N_LAYERS * HIDDEN * 4, "rows_in_order": in_order}))


if __name__ == "__main__":
    main()
