"""Mixture-of-experts models (export/residual_writers.py): on tiny random Qwen2-MoE (shared expert), Qwen3-MoE
and Mixtral models, whose experts transformers 5 stores as one fused 3-D parameter, the exported edit equals
the hook ablation within the float32 tolerances; with one expert left unedited it does not; an expert block
with a module the export does not know stops it with one line."""

import numpy as np
import pytest
import torch
from edited_models import PROMPTS, export

from refusal_directions.export import orthogonalization
from refusal_directions.export.residual_writers import ResidualWriter, residual_writer_weights
from refusal_directions.model.hooks import ablate_everywhere
from refusal_directions.model.loading import decoder_layers
from refusal_directions.workflow.errors import UserError

HIDDEN = 32
COMMON = {"hidden_size": HIDDEN, "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
          "max_position_embeddings": 256, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}  # fmt: skip
FAMILIES = {
    "qwen2_moe": ("Qwen2MoeConfig", "Qwen2MoeForCausalLM", {"intermediate_size": 64, "moe_intermediate_size": 16,
                  "shared_expert_intermediate_size": 24, "num_experts": 4, "num_experts_per_tok": 2}),
    "qwen3_moe": ("Qwen3MoeConfig", "Qwen3MoeForCausalLM", {"intermediate_size": 64, "moe_intermediate_size": 16,
                  "num_experts": 4, "num_experts_per_tok": 2, "head_dim": 8}),
    "mixtral": ("MixtralConfig", "MixtralForCausalLM", {"intermediate_size": 48, "num_local_experts": 4,
                "num_experts_per_tok": 2}),
}  # fmt: skip


@pytest.fixture(scope="module", params=list(FAMILIES))
def moe_model(request, tiny_model, tmp_path_factory):
    """A tiny random model of the family, saved with the tiny model's tokenizer."""
    import transformers

    config_class, model_class, settings = FAMILIES[request.param]
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_model)
    config = getattr(transformers, config_class)(vocab_size=len(tokenizer), **COMMON, **settings)
    torch.manual_seed(0)
    model = getattr(transformers, model_class)(config).eval()
    with torch.no_grad():  # experts of the init's scale write little; larger weights make a missed one show
        for name, parameter in model.named_parameters():
            if "experts" in name:
                parameter.normal_(0, 0.2)
    folder = tmp_path_factory.mktemp(request.param)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def compare_with_hooks(source, edited_folder, unit) -> tuple[float, float]:
    """The largest relative logit difference of the edited model against the source under hook ablation, and the
    largest |h . r| / |h| of the edited model's residual stream."""
    from transformers import AutoModelForCausalLM

    source_model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).eval()
    edited = AutoModelForCausalLM.from_pretrained(edited_folder, dtype=torch.float32).eval()
    r = torch.as_tensor(unit, dtype=torch.float32)
    largest = [0.0]

    def measure(_module, _inputs, output):
        hidden = output[0] if isinstance(output, tuple) else output
        largest[0] = max(largest[0], float(((hidden @ r).abs() / hidden.norm(dim=-1)).max()))

    handles = [module.register_forward_hook(measure) for module in [edited.get_input_embeddings(),
                                                                    *decoder_layers(edited)]]  # fmt: skip
    relative = 0.0
    with torch.no_grad():
        for ids in PROMPTS:
            x = torch.tensor([ids])
            logits = edited(x).logits[0, -1].double()
            with ablate_everywhere(source_model, unit):
                ablated = source_model(x).logits[0, -1].double()
            relative = max(relative, float((logits - ablated).abs().max() / ablated.abs().max()))
    for handle in handles:
        handle.remove()
    return relative, largest[0]


def test_every_expert_is_edited_and_the_export_equals_the_hooks(moe_model, tmp_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(moe_model, dtype=torch.float32)
    writers = residual_writer_weights(model)
    fused = [writer for writer in writers if writer.weight.ndim == 3]
    assert len(fused) == 3 and all(writer.weight.shape[writer.output_axis] == HIDDEN for writer in fused)
    shared = [writer for writer in writers if "shared_expert" in writer.name]
    assert len(shared) == (3 if "qwen2_moe" in moe_model.name else 0)
    edited, unit = export(moe_model, tmp_path)
    relative, residual = compare_with_hooks(moe_model, edited, unit)
    assert relative <= 1e-4 and residual <= 1e-5


def test_an_expert_left_unedited_shows(moe_model, tmp_path, monkeypatch):
    """The planted bug: expert 0 of every block keeps its weights. The residual stream then carries r."""
    every = orthogonalization.residual_writer_weights

    def all_but_expert_zero(model):
        return [ResidualWriter(w.name, w.weight[1:], w.output_axis, w.bias) if w.weight.ndim == 3 else w
                for w in every(model)]  # fmt: skip

    monkeypatch.setattr(orthogonalization, "residual_writer_weights", all_but_expert_zero)
    edited, unit = export(moe_model, tmp_path)
    relative, residual = compare_with_hooks(moe_model, edited, unit)
    assert residual > 1e-3 or relative > 1e-4


def test_an_unknown_module_in_an_expert_block_stops_the_export(moe_model):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(moe_model, dtype=torch.float32)
    decoder_layers(model)[1].mlp.side_writer = torch.nn.Linear(HIDDEN, HIDDEN)
    with pytest.raises(
        UserError,
        match=rf"{type(model).__name__}: \w+SparseMoeBlock has a module 'side_writer' "
        r"\(Linear\) whose writes to the residual stream the export does not know",
    ):
        orthogonalization.orthogonalize(model, np.eye(HIDDEN)[0])
