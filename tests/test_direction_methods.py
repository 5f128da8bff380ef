"""The direction methods (stats/direction_methods.py, selection/direction_optimization.py): the closed-form
candidates against their definitions, the affine hooks against their formula, RDO's gradient against finite
differences, and a refusal cone recovering a planted plane that no single direction carries."""

import numpy as np
import pytest
import torch

from refusal_directions.data.prompt_sets import HARMFUL, HARMLESS
from refusal_directions.model.hooks import _project_out, ablate_everywhere, add_at_layer
from refusal_directions.model.loading import decoder_layers
from refusal_directions.selection.direction_optimization import (
    RefusalObjective,
    basis_of,
    initial_basis,
    optimize,
)
from refusal_directions.stats.direction_methods import (
    METHODS,
    candidate_vector,
    check_basis_size,
    check_methods,
    principal_angles,
    projected,
)
from refusal_directions.workflow.errors import UserError

D = 16


def classes(seed=0, n=40, d=D):
    rng = np.random.default_rng(seed)
    axis = rng.normal(size=d)
    harmless = rng.normal(size=(n, d)) + 3.0  # a large shared mean, as real activations have
    harmful = rng.normal(size=(n, d)) + 3.0 + axis
    return harmful, harmless


def test_projected_is_orthogonal_to_the_harmless_mean():
    harmful, harmless = classes()
    vector = candidate_vector("projected", harmful, harmless, seed=0)
    mean = harmless.mean(axis=0)
    assert abs(vector @ mean) / (np.linalg.norm(vector) * np.linalg.norm(mean)) < 1e-12
    difference = harmful.mean(axis=0) - harmless.mean(axis=0)
    assert np.allclose(vector + (difference @ mean) / (mean @ mean) * mean, difference)  # it only lost that part
    assert np.allclose(projected(np.array([1.0, 1.0]), np.array([2.0, 0.0])), [0.0, 1.0])


def test_pca_is_sign_aligned_with_the_difference_in_means_and_finds_the_axis():
    rng = np.random.default_rng(1)
    axis = np.eye(D)[3]
    harmless = rng.normal(size=(200, D)) * 0.3
    harmful = harmless[rng.permutation(200)] + 4.0 * axis + rng.normal(size=(200, D)) * 0.3
    for seed in range(5):
        vector = candidate_vector("pca", harmful, harmless, seed)
        difference = harmful.mean(axis=0) - harmless.mean(axis=0)
        assert vector @ difference > 0
        assert np.isclose(np.linalg.norm(vector), np.linalg.norm(difference))
        assert abs(vector @ axis) / np.linalg.norm(vector) > 0.98
    # the sign follows the difference in means even when the component comes out the other way round
    assert candidate_vector("pca", harmless, harmful, 0) @ (harmless.mean(0) - harmful.mean(0)) > 0


def test_ace_ablation_hook_is_the_affine_formula_at_the_embedding():
    """h <- h - ((h - mu) . r) r where the residual stream starts; every other writer loses its component."""
    rng = np.random.default_rng(2)
    unit = rng.normal(size=D)
    unit /= np.linalg.norm(unit)
    mu = rng.normal(size=D) * 3
    hidden = torch.as_tensor(rng.normal(size=(2, 5, D)))
    basis, offset = torch.as_tensor(unit[None]), torch.as_tensor((mu @ unit) * unit)
    expected = hidden.numpy() - ((hidden.numpy() - mu) @ unit)[..., None] * unit
    assert np.allclose(_project_out(basis, offset)(None, None, hidden).numpy(), expected, atol=1e-12)
    assert np.allclose(_project_out(basis)(None, None, hidden).numpy() @ unit, 0, atol=1e-12)


def block_outputs(model, ids):
    captured = []
    handles = [block.register_forward_hook(lambda m, i, o: captured.append(o[0] if isinstance(o, tuple) else o))
               for block in decoder_layers(model)]  # fmt: skip
    with torch.no_grad():
        model(input_ids=torch.tensor([ids]))
    for handle in handles:
        handle.remove()
    return [state[0].double().numpy() for state in captured]


@pytest.fixture(scope="module")
def tiny(tiny_model):
    from refusal_directions.model.loading import load_model

    spec = {"id": "tiny", "trust_remote_code": False}
    return load_model(str(tiny_model), None, spec, torch.device("cpu"), torch.float32)


def test_ace_holds_each_layers_reference_component_and_addition_moves_it(tiny):
    """h <- h - ((h - mu_l) . r) r at the output of every block l, with each layer's own reference mu_l."""
    rng = np.random.default_rng(3)
    unit = rng.normal(size=32)
    unit /= np.linalg.norm(unit)
    ids = [1, 5, 9, 40, 77, 3]
    held = np.array([0.7, -0.4, 2.5])  # the tiny model's three layers
    with ablate_everywhere(tiny, unit, np.outer(held, unit)):
        for layer, state in enumerate(block_outputs(tiny, ids)):
            assert np.allclose(state @ unit, held[layer], atol=1e-4)
    plain = block_outputs(tiny, ids)[1]
    target = -1.3 * unit
    with add_at_layer(tiny, target, 1, replaced=unit):
        moved = block_outputs(tiny, ids)[1]
    assert np.allclose(moved, plain - (plain @ unit)[:, None] * unit + target, atol=1e-5)  # h - (h.r) r + (m.r) r


def test_a_basis_is_ablated_as_a_whole(tiny):
    basis = np.linalg.qr(np.random.default_rng(4).normal(size=(32, 3)))[0].T
    with ablate_everywhere(tiny, basis):
        for state in block_outputs(tiny, [1, 8, 8, 120, 200, 31, 60]):
            assert np.abs(state @ basis.T).max() / np.linalg.norm(state, axis=-1).max() < 1e-6


def test_bad_method_settings_fail_with_one_line():
    settings = {"methods": ["mean_diff", "cone"], "rdo": {"steps": 10, "layer": None},
                "cone": {"k": 2, "steps": 10, "layer": None}}  # fmt: skip
    check_methods(settings)
    check_basis_size("cone", 32, d_model=32)
    with pytest.raises(UserError, match=r"unknown method 'mean_dif' \(known: mean_diff, projected, pca, ace, rdo"):
        check_methods({**settings, "methods": ["mean_dif"]})
    with pytest.raises(UserError, match=r"directions.cone.k: 0"):
        check_methods({**settings, "cone": {**settings["cone"], "k": 0}})
    with pytest.raises(UserError, match=r"directions.cone.k: 33; a cone needs 1 <= k <= the model's width \(32\)"):
        check_basis_size("cone", 33, d_model=32)
    with pytest.raises(UserError, match=r"directions.rdo.steps: 0"):
        check_methods({**settings, "methods": ["mean_diff", "rdo"], "rdo": {"steps": 0, "layer": None}})
    assert list(METHODS)[0] == "mean_diff"


# A model whose refusal lives in a plane: refusal tokens A and B read directions a and b; half the harmful prompts
# end in a token carrying a, half in one carrying b, the harmless ones in tokens carrying neither. The blocks are
# nearly silent, so the last position's residual stream is its token's embedding.
A_DIR, B_DIR, COMMON = 0, 1, 5
REFUSAL_IDS = [18, 19]
HARMFUL_A, HARMFUL_B, HARMLESS_ENDS = [10, 11], [12, 13], [14, 15, 16, 17]


def planted_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=20, hidden_size=D, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=False)  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    generator = np.random.default_rng(0)
    with torch.no_grad():
        for name, parameter in model.model.layers.named_parameters():
            if "norm" not in name:
                parameter.mul_(0.01)
        embedding = 0.05 * generator.normal(size=(20, D))
        embedding[:, COMMON] += 2.0
        for token in HARMFUL_A:
            embedding[token, A_DIR] += 4.0
        for token in HARMFUL_B:
            embedding[token, B_DIR] += 4.0
        model.model.embed_tokens.weight.copy_(torch.as_tensor(embedding))
        head = 0.1 * generator.normal(size=(20, D))
        head[REFUSAL_IDS[0], A_DIR], head[REFUSAL_IDS[1], B_DIR] = 3.0, 3.0
        model.lm_head.weight.copy_(torch.as_tensor(head))
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def planted_prompts(seed: int, n: int = 12) -> dict:
    rng = np.random.default_rng(seed)
    body = lambda: rng.integers(3, 10, size=3).tolist()  # noqa: E731
    harmful = [body() + [(HARMFUL_A, HARMFUL_B)[i % 2][i // 2 % 2]] for i in range(n)]
    harmless = [body() + [HARMLESS_ENDS[i % 4]] for i in range(n)]
    return {HARMFUL: harmful, HARMLESS: harmless}


def logits_of(model, ids):
    with torch.no_grad():
        return torch.cat([model(input_ids=torch.tensor([row])).logits[:, -1] for row in ids])


def harmful_refusal(model, ids, directions=None):
    from refusal_directions.model.refusal_score import refusal_scores

    if directions is None:
        return refusal_scores(logits_of(model, ids), REFUSAL_IDS).mean()
    with ablate_everywhere(model, directions):
        return refusal_scores(logits_of(model, ids), REFUSAL_IDS).mean()


def objective_of(model, weights=(1.0, 1.0)):
    return RefusalObjective(model, 0, 4.0, REFUSAL_IDS, 0, torch.device("cpu"), *weights)


def mean_difference(model, prompts):
    def last_states(ids):
        with torch.no_grad():
            return np.stack([model(input_ids=torch.tensor([row]), output_hidden_states=True).hidden_states[1][0, -1]
                             .double().numpy() for row in ids])  # fmt: skip

    return last_states(prompts[HARMFUL]).mean(0) - last_states(prompts[HARMLESS]).mean(0)


def float64_norm(self, hidden_states):
    """LlamaRMSNorm without its cast to float32, so that a float64 model is float64 throughout."""
    variance = hidden_states.pow(2).mean(-1, keepdim=True)
    return self.weight * hidden_states * torch.rsqrt(variance + self.variance_epsilon)


def test_rdo_gradient_equals_finite_differences(monkeypatch):
    from transformers.models.llama import modeling_llama

    monkeypatch.setattr(modeling_llama.LlamaRMSNorm, "forward", float64_norm)
    model = planted_model().double()
    prompts = planted_prompts(0, n=4)
    unchanged = logits_of(model, prompts[HARMLESS])
    objective = objective_of(model, (0.7, 1.3))
    rng = np.random.default_rng(5)
    for k, weights in ((1, [[1.0]]), (2, [[0.3, 0.7], [0.8, 0.2]])):
        raw = torch.nn.Parameter(torch.as_tensor(rng.normal(size=(k, D))))
        weights = torch.as_tensor(weights)

        def loss(values, weights=weights):
            return objective(values, prompts[HARMFUL], prompts[HARMLESS], unchanged, weights)[0]

        loss(raw).backward()
        for _ in range(3):
            step = torch.as_tensor(rng.normal(size=(k, D)))
            epsilon = 1e-6
            with torch.no_grad():
                numeric = (loss(raw + epsilon * step) - loss(raw - epsilon * step)) / (2 * epsilon)
            analytic = (raw.grad * step).sum()
            assert abs(float(numeric - analytic)) <= 1e-3 * abs(float(analytic)), (k, float(numeric), float(analytic))


def test_a_cone_of_two_recovers_the_planted_plane_where_no_single_direction_suffices():
    model = planted_model()
    train, validation = planted_prompts(0, n=16), planted_prompts(1, n=8)
    plane = np.eye(D)[[A_DIR, B_DIR]]
    start = initial_basis(mean_difference(model, train), 2, seed=0)
    unchanged = {"train": logits_of(model, train[HARMLESS]), "validation": logits_of(model, validation[HARMLESS])}
    settings = {"steps": 150, "learning_rate": 0.05, "batch_prompts": 8, "validate_every": 10, "patience": 5,
                "seed": 0}  # fmt: skip
    result = optimize(objective_of(model), start, train, validation, unchanged, settings)
    basis = basis_of(torch.as_tensor(result.basis)).numpy()
    assert principal_angles(basis, plane).max() < 10
    assert harmful_refusal(model, validation[HARMFUL]) > 1  # the model refuses
    assert harmful_refusal(model, validation[HARMFUL], basis) < 0  # the cone's plane removes it
    # any single direction leaves refusal in place: the planted axes, the difference in means, each found row
    for single in (*plane, start[0], *basis, basis.sum(0)):
        assert harmful_refusal(model, validation[HARMFUL], single) > 0
    # rdo (k = 1) from the same start cannot remove it either
    rdo = optimize(objective_of(model), start[:1], train, validation, unchanged, settings)
    assert harmful_refusal(model, validation[HARMFUL], rdo.basis[0]) > 0


def export_method_direction(source, tmp_path, direction):
    """Export ``direction`` (a MethodDirection) from ``source`` as the workflow does; the edited model, loaded
    with plain transformers."""
    import json

    from edited_models import N_LAYERS, spec_of
    from transformers import AutoModelForCausalLM

    from refusal_directions.export.orthogonalization import export_edited_model
    from refusal_directions.stats.method_direction import save_method_direction
    from refusal_directions.workflow.execution import ExecutionSettings

    (tmp_path / "manifest.json").write_text(json.dumps({"n_layers": N_LAYERS, "weights_revision": "sha256:abc"}))
    save_method_direction(str(tmp_path / "direction.safetensors"), direction)
    inputs = {"direction": str(tmp_path / "direction.safetensors"), "manifest": str(tmp_path / "manifest.json")}
    edited = tmp_path / "edited"
    export_edited_model(inputs, {"edited": str(edited)}, spec_of(source), {"dtype": None, "layer": None},
                        ExecutionSettings(device="cpu"))  # fmt: skip
    return AutoModelForCausalLM.from_pretrained(edited, dtype=torch.float32).eval()


def states_and_logits(model, ids):
    captured = []
    modules = [model.get_input_embeddings(), *decoder_layers(model)]
    handles = [module.register_forward_hook(lambda m, i, o: captured.append(o[0] if isinstance(o, tuple) else o))
               for module in modules]  # fmt: skip
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1].double().numpy()
    for handle in handles:
        handle.remove()
    return [state[0].double().numpy() for state in captured], logits


def test_the_exported_basis_edit_equals_the_hook_ablation(biased_tied_model, tmp_path):
    """W <- (I - QQ^T) W for every residual writer, k = 3: nothing left along any basis vector, logits as the hooks'."""
    from edited_models import PROMPTS, spec_of

    from refusal_directions.model.loading import load_model
    from refusal_directions.stats.method_direction import MethodDirection

    basis = np.linalg.qr(np.random.default_rng(6).normal(size=(32, 3)))[0].T
    edited = export_method_direction(biased_tied_model, tmp_path, MethodDirection("cone", basis, 3 * basis[0], 1, -1))
    basis = basis.astype(np.float32).astype(np.float64)  # as saved
    source = load_model(str(biased_tied_model), None, spec_of(biased_tied_model), torch.device("cpu"), torch.float32)
    for ids in PROMPTS:
        states, logits = states_and_logits(edited, ids)
        with ablate_everywhere(source, basis):
            _, ablated = states_and_logits(source, ids)
        for state in states:
            assert np.abs(state @ basis.T).max() / np.linalg.norm(state, axis=-1).max() <= 1e-5
        assert np.abs(logits - ablated).max() / np.abs(ablated).max() <= 1e-4
    assert "span of 3 orthonormal directions" in (tmp_path / "edited" / "README.md").read_text()


def test_an_affine_edit_is_not_exported(biased_tied_model, tmp_path):
    """ace lives in hooks only (README: "Direction methods"): its direction file stops an export with one line."""
    from refusal_directions.stats.method_direction import MethodDirection

    unit = np.eye(32)[0]
    ace = MethodDirection("ace", unit[None], unit, 1, -1, ablation_references=np.outer([2, 1, 3], unit),
                          addition_target=-unit)  # fmt: skip
    with pytest.raises(UserError, match="ace is an affine edit, which is applied by hooks only"):
        export_method_direction(biased_tied_model, tmp_path, ace)


def test_an_interrupted_optimization_resumes_where_it_stopped(tmp_path):
    """The state at each validation is kept: a run stopped after step 4 and run again to step 8 ends where one
    uninterrupted run of 8 steps ends (minibatches and cone samples are drawn per step from the seed)."""
    from refusal_directions.model.resume import ResumeState
    from refusal_directions.workflow.resume_place import ResumePlace

    model = planted_model()
    train, validation = planted_prompts(0, n=16), planted_prompts(1, n=8)
    start = initial_basis(mean_difference(model, train), 2, seed=0)
    unchanged = {"train": logits_of(model, train[HARMLESS]), "validation": logits_of(model, validation[HARMLESS])}
    settings = {"steps": 8, "learning_rate": 0.05, "batch_prompts": 8, "validate_every": 2, "patience": 10, "seed": 0}
    whole = optimize(objective_of(model), start, train, validation, unchanged, settings)
    place = ResumePlace(str(tmp_path / "resume"), "key", "optimize_direction")
    optimize(objective_of(model), start, train, validation, unchanged, {**settings, "steps": 4}, ResumeState(place))
    resumed = optimize(objective_of(model), start, train, validation, unchanged, settings, ResumeState(place))
    np.testing.assert_allclose(resumed.basis, whole.basis, rtol=1e-12)
    assert resumed.history == whole.history and resumed.best_step == whole.best_step


def test_a_cone_wider_than_the_model_stops_before_the_model_loads(tmp_path, monkeypatch):
    import json

    from refusal_directions.selection import direction_optimization

    (tmp_path / "manifest.json").write_text(json.dumps({"d_model": 32}))
    monkeypatch.setattr(direction_optimization.ModelJob, "load", lambda *a, **k: pytest.fail("the model was loaded"))
    with pytest.raises(UserError, match=r"directions.cone.k: 33; a cone needs 1 <= k <= the model's width \(32\)"):
        direction_optimization.optimize_direction({"manifest": str(tmp_path / "manifest.json")}, {}, {}, "cone",
                                                  {"k": 33, "layer": None}, None)  # fmt: skip


def test_the_closed_form_candidates_and_an_affine_direction_file(tmp_path):
    """write_method_candidates against candidate_vector on the layer files' rows; ace's direction file holds
    the reference points of the selected candidate's class means."""
    import json

    from safetensors.numpy import load_file, save_file

    from refusal_directions.stats.directions import write_method_candidates
    from refusal_directions.stats.method_direction import load_method_direction, write_selected_method_direction

    rng = np.random.default_rng(7)
    rows = {"harmful": rng.normal(size=(2, 12, 3, D)) + 1.0, "harmless": rng.normal(size=(2, 12, 3, D))}
    inputs = fake_extraction(tmp_path, rows)
    write_method_candidates(inputs, {"candidates": str(tmp_path / "pca.safetensors")}, "tiny", "pca", {"seed": 3})
    written = load_file(str(tmp_path / "pca.safetensors"))
    train = json.loads((tmp_path / "splits.json").read_text())
    for layer in range(2):
        for position in range(3):
            harmful = rows["harmful"][layer][train["harmful"]["train"]["rows"], position]
            harmless = rows["harmless"][layer][train["harmless"]["train"]["rows"], position]
            np.testing.assert_allclose(written["candidates"][position, layer],
                                       candidate_vector("pca", harmful, harmless, 3), rtol=1e-5)  # fmt: skip
            np.testing.assert_allclose(written["harmless_means"][position, layer], harmless.mean(0), rtol=1e-5)
    direction = written["candidates"][1, 0] * 2
    save_file(
        {"direction": direction, "unit": direction / np.linalg.norm(direction)},
        str(tmp_path / "sel.st"),
        metadata={"refusal_directions": json.dumps({"layer": 0, "position": -2, "method": "refusal_score"})},
    )
    inputs = {"selected": str(tmp_path / "sel.st"), "candidates": str(tmp_path / "pca.safetensors")}
    write_selected_method_direction(inputs, {"direction": str(tmp_path / "ace.safetensors")}, "ace")
    ace = load_method_direction(str(tmp_path / "ace.safetensors"))
    unit = ace.basis[0]
    assert ace.layer == 0 and ace.position == -2 and ace.k == 1 and ace.affine
    np.testing.assert_allclose(ace.ablation_references @ unit, written["harmless_means"][1] @ unit, rtol=1e-5)
    assert ace.ablation_references.shape == (2, D)  # every layer's reference
    assert np.isclose(ace.addition_target @ unit, written["harmful_means"][1, 0] @ unit, rtol=1e-5)
    assert np.allclose(ace.addition, ace.addition_target)


def fake_extraction(folder, rows):
    """Layer files with every post-instruction position (``rows[set][layer]``: [n, positions, d]), their
    manifest and a splits file: what the candidate steps read."""
    import json

    import h5py

    from refusal_directions.model.activations import POSITIONS_GROUP
    from refusal_directions.workflow.integrity import file_sha256

    names = []
    for layer in range(len(rows["harmful"])):
        path = folder / f"layer_{layer:02d}.h5"
        with h5py.File(path, "w") as handle:
            group = handle.create_group(POSITIONS_GROUP)
            group.attrs["tokens"] = ["a", "b", "c"]
            for name, values in rows.items():
                handle[name] = values[layer][:, -1].astype(np.float32)
                group[name] = values[layer].astype(np.float32)
        names.append(path.name)
    n = len(rows["harmful"][0])
    split = {"train": {"rows": list(range(0, 8))}, "validation": {"rows": [8, 9]}, "test": {"rows": [10, 11]}}
    (folder / "splits.json").write_text(json.dumps({"harmful": split, "harmless": split}))
    manifest = {"layer_files": names, "sha256": {name: file_sha256(folder / name) for name in names}, "n": n}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return {"manifest": str(folder / "manifest.json"), "splits": str(folder / "splits.json")}


def test_the_pareto_front_keeps_the_methods_no_other_beats_on_both_axes():
    import pandas as pd

    from refusal_directions.report.method_figures import pareto_front

    table = pd.DataFrame({"method": ["a", "b", "c", "d", "e"], "effect": [-0.5, -0.3, -0.6, -0.2, None],
                          "cost": [0.2, 0.1, 0.5, 0.3, 0.0]})  # fmt: skip
    assert pareto_front(table, "effect", "cost") == ["b", "a", "c"]  # d is beaten by b; e was not measured
