"""The edited model (export/orthogonalization.py): a tiny random Llama-style model with tied embeddings and biases
on every residual-stream writer, exported, reloaded with plain transformers in a fresh process, equals the
source model under hook ablation; and the export's bad inputs."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from edited_models import NEW_TOKENS, PROMPTS, direction_inputs, export, spec_of

from refusal_directions.export import orthogonalization
from refusal_directions.export.edited_check import (
    DirectionComponent,
    compare,
    failures,
    head_along,
    head_change,
    tolerances,
)
from refusal_directions.export.orthogonalization import export_direction, export_edited_model
from refusal_directions.model.hooks import ablate_everywhere
from refusal_directions.model.loading import load_model
from refusal_directions.workflow.errors import UserError
from refusal_directions.workflow.execution import ExecutionSettings
from refusal_directions.workflow.permissions import umask

# Run in a fresh interpreter: plain transformers only (no project code), as a user of the checkpoint would.
PLAIN_RELOAD = """
import json, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
folder, prompts, unit, new_tokens = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
AutoTokenizer.from_pretrained(folder)
r = torch.tensor(unit, dtype=torch.float32)
largest = [0.0]
def measure(_module, _inputs, output):
    hidden = output[0] if isinstance(output, tuple) else output
    largest[0] = max(largest[0], float(((hidden @ r).abs() / hidden.norm(dim=-1)).max()))
for module in [model.get_input_embeddings(), *model.model.layers]:
    module.register_forward_hook(measure)
logits, continuations = [], []
with torch.no_grad():
    for ids in prompts:
        x = torch.tensor([ids])
        logits.append(model(x).logits[0, -1].tolist())
        out = model.generate(x, max_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
        continuations.append(out[0, len(ids):].tolist())
print(json.dumps({"logits": logits, "continuations": continuations, "residual": largest[0],
                  "tied": model.config.tie_word_embeddings}))
"""


def plain_reload(edited: Path, unit: np.ndarray) -> dict:
    arguments = [str(edited), json.dumps(PROMPTS), json.dumps(unit.tolist()), str(NEW_TOKENS)]
    result = subprocess.run([sys.executable, "-c", PLAIN_RELOAD, *arguments], capture_output=True, text=True,
                            env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def hook_ablation(source: Path, unit: np.ndarray) -> dict:
    model = load_model(str(source), None, spec_of(source), torch.device("cpu"), torch.float32)
    logits, continuations = [], []
    with torch.no_grad(), ablate_everywhere(model, unit):
        for ids in PROMPTS:
            x = torch.tensor([ids])
            logits.append(model(x).logits[0, -1].tolist())
            out = model.generate(x, max_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=0)
            continuations.append(out[0, len(ids) :].tolist())
    return {"logits": logits, "continuations": continuations}


def relative_logit_difference(edited: dict, ablated: dict) -> float:
    e, a = np.array(edited["logits"]), np.array(ablated["logits"])
    return float((np.abs(e - a).max(-1) / np.abs(a).max(-1)).max())


def test_the_plain_reload_equals_the_hook_ablation(biased_tied_model, tmp_path):
    edited, unit = export(biased_tied_model, tmp_path)
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "README.md"} <= {
        path.name for path in edited.iterdir()
    }
    reloaded, ablated = plain_reload(edited, unit), hook_ablation(biased_tied_model, unit)
    assert reloaded["tied"] is False
    assert relative_logit_difference(reloaded, ablated) <= 1e-4
    assert reloaded["continuations"] == ablated["continuations"]
    assert reloaded["residual"] <= 1e-5
    assert head_change_of(biased_tied_model, edited, unit) == 0  # the head keeps the source's weights
    # the edit changed the model: without ablation, the source gives other logits
    plain = load_model(str(biased_tied_model), None, spec_of(biased_tied_model), torch.device("cpu"), torch.float32)
    with torch.no_grad():
        source_logits = [plain(torch.tensor([ids])).logits[0, -1].tolist() for ids in PROMPTS]
    assert relative_logit_difference({"logits": source_logits}, ablated) > 1e-3
    card = (edited / "README.md").read_text()
    assert "sha256:abc" in card and "| layer | 1 |" in card and "refusal_score" in card
    assert not [path for path in edited.parent.iterdir() if path.name.startswith(".edited")]
    assert edited.stat().st_mode & 0o755 == 0o755  # readable by others, as save_pretrained's files are
    # the weights too (safetensors writes them 0600), as a new file under the umask gets
    assert all(path.stat().st_mode & 0o777 == 0o666 & ~umask() for path in edited.iterdir())


def test_a_head_left_tied_fails_the_comparison(biased_tied_model, tmp_path, monkeypatch):
    """Without untying, orthogonalizing the embedding edits the LM head too: the logits leave the tolerance."""
    monkeypatch.setattr(orthogonalization, "untie_lm_head", lambda model: False)
    edited, unit = export(biased_tied_model, tmp_path)
    reloaded, ablated = plain_reload(edited, unit), hook_ablation(biased_tied_model, unit)
    assert reloaded["tied"] is True
    assert relative_logit_difference(reloaded, ablated) > 1e-4
    assert head_change_of(biased_tied_model, edited, unit) > 0.5  # the weight-level figure sees it in any dtype


def head_change_of(source, edited, unit) -> float:
    from transformers import AutoModelForCausalLM

    plain = AutoModelForCausalLM.from_pretrained(edited, dtype=torch.float32)
    model = load_model(str(source), None, spec_of(source), torch.device("cpu"), torch.float32)
    return head_change(head_along(model, unit), head_along(plain, unit))


def test_a_half_precision_export_saves_that_dtype(biased_tied_model, tmp_path):
    edited, _ = export(biased_tied_model, tmp_path, dtype="bfloat16")
    config = json.loads((edited / "config.json").read_text())
    assert config["dtype"] == "bfloat16" and config["tie_word_embeddings"] is False


def test_a_layer_outside_the_model_fails_before_loading(tmp_path, monkeypatch):
    inputs, _ = direction_inputs(tmp_path / "inputs")
    inputs["direction"] = inputs["direction"].replace("selected", "directions")
    assert export_direction(inputs, 2)[1]["layer"] == 2

    def no_loading(*arguments, **settings):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(orthogonalization, "load_model", no_loading)
    with pytest.raises(UserError, match=r"export.layer: 3 is outside the model \(layers 0-2\)"):
        export_edited_model(inputs, {"edited": str(tmp_path / "edited")}, spec_of(tmp_path),
                            {"dtype": None, "layer": 3}, ExecutionSettings(device="cpu"))  # fmt: skip


def test_too_little_disk_space_fails_before_writing(biased_tied_model, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 2**20, 2**20))
    with pytest.raises(UserError, match="GiB free, the edited checkpoint needs about"):
        export(biased_tied_model, tmp_path)
    assert not (tmp_path / "results" / "edited").exists()
    assert list((tmp_path / "results").iterdir()) == []


def test_an_interrupted_export_leaves_nothing_at_the_final_path(biased_tied_model, tmp_path, monkeypatch):
    from transformers import PreTrainedTokenizerBase

    def interrupted(*arguments, **settings):
        raise KeyboardInterrupt

    monkeypatch.setattr(PreTrainedTokenizerBase, "save_pretrained", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export(biased_tied_model, tmp_path)
    assert list((tmp_path / "results").iterdir()) == []


def test_the_check_flags_a_mismatch():
    logits = torch.randn(4, 50) * 5
    responses = ["a", "b"]
    same = {"harmful": (responses, logits[:2]), "harmless": (responses, logits[2:])}
    figures = {**compare(same, same, [3, 7]), "max_residual_component": 0.0, "max_head_change_along_r": 0.0}
    assert figures["max_relative_logit_difference"] == 0 and figures["identical_continuations"] == 1
    assert failures(figures, tolerances(torch.float32)) == []
    moved = {"harmful": (["a", "c"], logits[:2] * 1.2), "harmless": (responses, logits[2:])}
    wrong = {**compare(moved, same, [3, 7]), "max_residual_component": 1e-3, "max_head_change_along_r": 1.0}
    assert {problem.split()[0] for problem in failures(wrong, tolerances(torch.float32))} == {
        "max_relative_logit_difference", "max_refusal_score_difference", "mean_kl", "max_residual_component",
        "identical_continuations", "max_head_change_along_r",
    }  # fmt: skip
    assert tolerances(torch.float32, torch.bfloat16) == tolerances(torch.bfloat16)


def test_the_direction_component_hook_measures_the_largest_ratio():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=2)).eval()  # fmt: skip
    unit = np.eye(16)[0]
    component = DirectionComponent(model, unit)
    with torch.no_grad():
        model(torch.tensor([[1, 2, 3]]))
    component.remove()
    assert 0 < component.largest <= 1
