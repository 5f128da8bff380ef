"""Hooks, batching and formatting on a tiny random model."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from refusal_directions.data.chat_format import PromptFormat
from refusal_directions.model.batching import BatchRunner, budget_batches, left_padded
from refusal_directions.model.extraction import Extractor
from refusal_directions.model.forward import ModelRunner
from refusal_directions.model.loading import decoder_layers, load_model, load_tokenizer
from refusal_directions.workflow.errors import UserError

from conftest import HARMFUL, HARMLESS, build_tiny_model, encode_prompts

SPEC = {"id": "tiny", "trust_remote_code": False}


@pytest.fixture(scope="module")
def loaded(tiny_model):
    tokenizer = load_tokenizer(str(tiny_model), None, SPEC)
    model = load_model(str(tiny_model), None, SPEC, torch.device("cpu"), torch.float32)
    return model, tokenizer


def prompts_for(tokenizer, texts):
    # Different lengths on purpose, so batches need padding.
    return [text + " please" * (row % 4) for row, text in enumerate(texts)]


def collect(model, tokenizer, prompts, batch_size):
    n_layers = len(decoder_layers(model))
    out = np.full((n_layers, len(prompts), model.config.hidden_size), np.nan, dtype=np.float32)

    def sink(rows, per_layer, scores):
        for layer, values in enumerate(per_layer):
            out[layer, rows] = values[:, -1]

    extractor = Extractor(ModelRunner(model, tokenizer, torch.device("cpu"), BatchRunner(batch_size)))
    extractor.run(encode_prompts(tokenizer, prompts), sink)
    return out


def reference_states(model, tokenizer, text):
    """Independent reference for one prompt: the whole chat-formatted string tokenized at once,
    output_hidden_states, plus a hook for the last block (whose output_hidden_states entry is after the
    final norm)."""
    formatted = tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
    )
    ids = tokenizer(formatted, add_special_tokens=False, return_tensors="pt")
    captured = {}
    last = decoder_layers(model)[-1]
    handle = last.register_forward_hook(lambda m, i, o: captured.update(last=(o[0] if isinstance(o, tuple) else o)))
    with torch.no_grad():
        hidden = model(**ids, output_hidden_states=True).hidden_states
    handle.remove()
    states = [h[0, -1].numpy() for h in hidden[1:-1]] + [captured["last"][0, -1].numpy()]
    return np.stack(states)


def test_hooks_follow_the_layer_convention(loaded):
    model, tokenizer = loaded
    prompts = prompts_for(tokenizer, HARMFUL[:3])
    got = collect(model, tokenizer, prompts, batch_size=1)
    for row, prompt in enumerate(prompts):
        np.testing.assert_allclose(got[:, row], reference_states(model, tokenizer, prompt), atol=1e-5)


def test_batched_equals_batch_one_and_keeps_prompt_order(loaded):
    model, tokenizer = loaded
    prompts = prompts_for(tokenizer, HARMFUL[:7] + HARMLESS[:6])
    single = collect(model, tokenizer, prompts, batch_size=1)
    batched = collect(model, tokenizer, prompts, batch_size=5)
    assert not np.isnan(batched).any()
    np.testing.assert_allclose(batched, single, atol=1e-5, rtol=1e-5)


def test_length_sorted_batches_cover_every_prompt_once():
    batches = budget_batches([5, 1, 9, 3, 9, 2, 7], 3, max_tokens=10**9)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(7))
    assert [len(b) for b in batches] == [3, 3, 1]
    assert flat.tolist()[:2] == [2, 4]  # longest first


def test_left_padding_positions_restart_at_zero():
    batch = left_padded([[5, 6, 7], [8]], pad_id=0, device="cpu")
    assert batch["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert batch["position_ids"][1, -1].item() == 0 and batch["position_ids"][0].tolist() == [0, 1, 2]


def test_nan_activations_fail_clearly(loaded):
    model, tokenizer = loaded
    handle = decoder_layers(model)[1].register_forward_hook(lambda m, i, o: torch.full_like(o, float("nan")))
    try:
        with pytest.raises(UserError, match="NaN or inf"):
            collect(model, tokenizer, prompts_for(tokenizer, HARMFUL[:2]), batch_size=2)
    finally:
        handle.remove()


def test_model_without_chat_template_needs_raw_format(tmp_path):
    folder = build_tiny_model(tmp_path / "plain", n_layers=1, chat_template=False)
    tokenizer = load_tokenizer(str(folder), None, SPEC)
    with pytest.raises(UserError, match="no chat template; set prompt_format: raw"):
        PromptFormat(tokenizer, "chat", None, "plain")
    assert PromptFormat(tokenizer, "raw", None, "plain").format("hi") == "hi"


def test_system_prompt_becomes_a_system_turn(loaded):
    _, tokenizer = loaded
    text = PromptFormat(tokenizer, "chat", "Be brief.", "tiny").format("hi")
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi")
    assert text.endswith("<|im_start|>assistant\n")


def peak_rss_bytes() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


@pytest.mark.parametrize("keep_batches", [False, True], ids=["streaming", "control-buffering"])
def test_streaming_keeps_memory_bounded(tmp_path, tiny_model, keep_batches):
    """Peak memory of an extraction whose activations total 210 MB grows by far less than that, unless the
    sink keeps the batches (the control, which shows the measurement can fail)."""
    import json
    import os
    import subprocess
    import sys

    command = [sys.executable, str(Path(__file__).with_name("memory_probe.py")), str(tiny_model), str(tmp_path)]
    # A fixed mmap threshold makes glibc return freed large blocks, so RSS tracks live memory rather than
    # heap fragmentation.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    result = subprocess.run(command + (["--keep"] if keep_batches else []), capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    measured = json.loads(result.stdout.splitlines()[-1])
    if keep_batches:
        assert measured["growth"] > measured["total"]
    else:
        assert measured["growth"] < measured["total"] / 4, measured
        assert measured["rows_in_order"]


GEMMA_STYLE = (
    "{% for m in messages %}{{ '<start_of_turn>' + m['role'] + '\n' + m['content'] + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)


@pytest.mark.parametrize("template", [None, GEMMA_STYLE], ids=["chatml", "gemma-style"])
def test_post_instruction_positions_are_the_template_tokens_after_the_text(tmp_path, tiny_model, template):
    """The kept positions are exactly the tokens the template appends after the user's text, and their rows
    are the block outputs there (checked against a plain forward pass of the whole formatted string)."""
    import json

    from refusal_directions.model.activations import read_positions
    from refusal_directions.model.extraction import extract_activations
    from refusal_directions.workflow.execution import ExecutionSettings

    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    tokenizer = load_tokenizer(str(folder), None, SPEC)
    if template:
        tokenizer.chat_template = template
        tokenizer.save_pretrained(folder)
    suffix = "<|im_end|>\n<|im_start|>assistant\n" if template is None else "<end_of_turn>\n<start_of_turn>model\n"
    spec = {**SPEC, "id": str(folder), "prompt_format": "chat", "system_prompt": None, "dtype": "float32",
            "revision": None, "package": None, "gguf_file": None}  # fmt: skip
    prompts = tmp_path / "harmful.jsonl"
    texts = prompts_for(tokenizer, HARMFUL[:5])
    prompts.write_text("".join(json.dumps({"id": f"h-{i}", "text": text}) + "\n" for i, text in enumerate(texts)))
    out = tmp_path / "activations"
    extract_activations({"prompts": [str(prompts)]},
                        {"activations": str(out), "prompts": [str(tmp_path / "formatted.jsonl")]}, spec, ["harmful"],
                        "post_instruction", {"prefixes": ["I"], "token_ids": None},
                        ExecutionSettings(batch_size=2, device="cpu"))  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    expected_ids = tokenizer(suffix, add_special_tokens=False)["input_ids"]
    assert manifest["post_instruction_tokens"] == [tokenizer.decode([t]) for t in expected_ids]
    assert "".join(manifest["post_instruction_tokens"]) == suffix
    model = load_model(str(folder), None, spec, torch.device("cpu"), torch.float32)
    captured = {}
    for index, block in enumerate(decoder_layers(model)):
        block.register_forward_hook(
            lambda m, i, o, index=index: captured.__setitem__(index, o[0] if isinstance(o, tuple) else o)
        )
    for row, text in enumerate(texts):
        formatted = tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                  add_generation_prompt=True)  # fmt: skip
        with torch.no_grad():
            model(**tokenizer(formatted, add_special_tokens=False, return_tensors="pt"))
        for layer in (0, 2):
            stored, _ = read_positions(out / f"layer_0{layer}.h5", "harmful")
            expected = captured[layer][0, -len(expected_ids) :].numpy()
            np.testing.assert_allclose(stored[row], expected, atol=1e-5)
