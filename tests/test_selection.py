"""Direction selection: the filters and the choice on synthetic scores, and a planted refusal direction found
among decoys by scoring every candidate on a tiny model."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.numpy import save_file

from refusal_directions.model import job as model_job
from refusal_directions.model.loading import decoder_layers, load_model, load_tokenizer
from refusal_directions.model.refusal_score import refusal_scores
from refusal_directions.selection import candidate_scores
from refusal_directions.selection.candidate_scores import candidate_layers, cosmic_layers
from refusal_directions.selection.choice import choose, filters, prefilter_summary
from refusal_directions.workflow.execution import ExecutionSettings

from conftest import HARMFUL, HARMLESS, build_tiny_model

SETTINGS = {"method": "refusal_score", "kl_max": 0.1, "induce_min": 0.0, "max_layer_fraction": 0.8}


def scores(**columns):
    n = len(columns["layer"])
    defaults = {"position": [-1] * n, "token": ["x"] * n, "kl": [0.01] * n, "induce": [1.0] * n, "n_layers": [10] * n,
                "cosmic_score": [1.0] * n, "scored": [True] * n}  # fmt: skip
    return pd.DataFrame({**defaults, **columns})


def test_the_lowest_bypass_among_the_candidates_that_pass_wins():
    table, chosen, fallback, among = choose(
        scores(layer=[1, 3, 5, 8, 9], bypass=[-1.0, -2.0, -9.0, -10.0, np.nan], kl=[0.01, 0.01, 0.5, 0.01, 0.01]),
        SETTINGS,
    )
    assert table.loc[chosen, "layer"] == 3 and fallback == "" and among == "those that passed every filter"
    assert table["why"].tolist() == ["", "", "KL > 0.1", "layer >= 8 (the last 20% of the layers)",
                                     "undefined score; layer >= 8 (the last 20% of the layers)"]  # fmt: skip
    assert table["selected"].sum() == 1


def test_induce_must_be_positive_and_a_fallback_says_why():
    table, chosen, fallback, among = choose(scores(layer=[1, 2], bypass=[-3.0, -1.0], induce=[-0.5, -0.1]), SETTINGS)
    assert table["filtered"].all() and table.loc[chosen, "layer"] == 1
    assert fallback == "2 of 2 fail induce <= 0" and among == "those with a defined score in the allowed layers"
    # every candidate in the last layers: the best defined one, and the report is told so
    table, chosen, _, among = choose(scores(layer=[8, 9], bypass=[-3.0, np.nan], induce=[-0.5, -0.1]), SETTINGS)
    assert table.loc[chosen, "layer"] == 8 and among == "every candidate with a defined score, the last layers included"


def test_cosmic_takes_the_highest_score_and_ignores_induce():
    candidates = scores(
        layer=[1, 2, 3], bypass=[-5.0, 0.0, 0.0], induce=[-1.0, -1.0, -1.0], cosmic_score=[1.0, 1.9, 1.2]
    )
    table, chosen, _, _ = choose(candidates, {**SETTINGS, "method": "cosmic"})
    assert table.loc[chosen, "layer"] == 2 and not table["filtered"].any()
    assert [name for name, _ in filters(candidates, {**SETTINGS, "method": "cosmic"}).values()] == [
        "undefined score",
        "layer >= 8 (the last 20% of the layers)",
        "KL > 0.1",
    ]  # no induce filter to report


def scoring(stride=1, max_candidates=None, score_all=True, fraction=0.8):
    return {"layer_stride": stride, "max_candidates": max_candidates, "score_all_layers": score_all,
            "max_layer_fraction": fraction}  # fmt: skip


def test_candidate_layers_and_cosmic_layers():
    assert candidate_layers(10, 1, scoring()) == (list(range(10)), [])
    assert candidate_layers(10, 1, scoring(3)) == ([0, 3, 6, 9], [])
    assert candidate_layers(30, 5, scoring(1, 20))[0] == [0, 10, 19, 29]  # 4 layers x 5 positions = 20 candidates
    # the layer filter drops layer >= int(10 * 0.8) = 8: those are not scored unless asked
    assert candidate_layers(10, 1, scoring(score_all=False)) == (list(range(8)), [8, 9])
    assert candidate_layers(10, 1, scoring(3, score_all=False)) == ([0, 3, 6], [9])
    assert candidate_layers(30, 5, scoring(1, 20, score_all=False)) == ([0, 8, 15, 23], [
        layer for layer in range(30) if layer not in (0, 8, 15, 23)])  # fmt: skip
    harmful = np.ones((1, 20, 4))
    harmless = np.ones((1, 20, 4))
    harmless[0, 7] = [1.0, -1.0, 1.0, -1.0]  # orthogonal to the harmful mean there
    harmless[0, 3] = [1.0, 1.0, 1.0, -1.0]
    assert cosmic_layers(harmful, harmless) == [3, 7]


# -- a planted refusal direction -----------------------------------------------------------------------


class PlantedRefusal:
    """A tiny model that refuses harmful prompts through one direction: the MLP of block 0 writes
    ``strength`` x r into every position of a prompt that contains 'break' (all harmful prompts do), and the
    LM head reads r into the refusal token's logit. Ablating r everywhere removes the refusal; adding it
    makes harmless prompts refused."""

    def __init__(self, model, tokenizer, strength: float = 6.0):
        self.direction = np.random.default_rng(7).normal(size=model.config.hidden_size)
        self.direction /= np.linalg.norm(self.direction)
        r = torch.tensor(self.direction, dtype=torch.float32)
        self.refusal_token = tokenizer.convert_tokens_to_ids("ĠI") if "ĠI" in tokenizer.get_vocab() else 5
        marker = [tokenizer.convert_tokens_to_ids(t) for t in tokenizer.tokenize(" break")]
        harmful_rows = {}

        def remember_rows(_module, _args, kwargs):
            ids = kwargs["input_ids"]
            harmful_rows["mask"] = torch.stack([(ids == t).any(-1) for t in marker]).all(0)

        def plant(_module, _inputs, output):
            return output + strength * harmful_rows["mask"][:, None, None] * r

        with torch.no_grad():
            model.lm_head.weight[self.refusal_token] = 20.0 * r
        model.register_forward_pre_hook(remember_rows, with_kwargs=True)
        decoder_layers(model)[0].mlp.register_forward_hook(plant)


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    folder = build_tiny_model(tmp_path_factory.mktemp("planted") / "model", n_layers=5)
    spec = {"id": str(folder), "trust_remote_code": False, "prompt_format": "chat", "system_prompt": None,
            "dtype": "float32", "revision": None, "package": None, "gguf_file": None}  # fmt: skip
    tokenizer = load_tokenizer(str(folder), None, spec)
    model = load_model(str(folder), None, spec, torch.device("cpu"), torch.float32)
    planted = PlantedRefusal(model, tokenizer)
    return folder, spec, model, tokenizer, planted


def test_the_planted_model_refuses_harmful_prompts_only(planted_run):
    from refusal_directions.data.chat_format import PromptFormat

    _, _, model, tokenizer, planted = planted_run
    prompt_format = PromptFormat(tokenizer, "chat", None, "tiny")
    with torch.no_grad():
        for texts, sign in ((HARMFUL[:3], 1), (HARMLESS[:3], -1)):
            for text in texts:
                logits = model(input_ids=torch.tensor([prompt_format.encode(text)])).logits[:, -1]
                assert sign * refusal_scores(logits, [planted.refusal_token])[0] > 0


def test_a_planted_direction_is_selected_among_decoys(planted_run, tmp_path, monkeypatch):
    folder, spec, model, tokenizer, planted = planted_run
    n_layers, d_model = 5, model.config.hidden_size
    rng = np.random.default_rng(0)
    candidates = rng.normal(size=(1, n_layers, d_model))
    candidates *= 6.0 / np.linalg.norm(candidates, axis=-1, keepdims=True)  # decoys of the same norm
    candidates[0, 2] = 6.0 * planted.direction
    save_file({"candidates": candidates.astype(np.float32), "harmful_means": rng.normal(size=(1, n_layers, d_model)),
               "harmless_means": rng.normal(size=(1, n_layers, d_model))}, tmp_path / "candidates.safetensors",
              metadata={"refusal_directions": json.dumps({"positions": ["(last token)"]})})  # fmt: skip
    prompt_files = {}
    for name, texts in (("harmful", HARMFUL[:6]), ("harmless", HARMLESS[:6])):
        prompt_files[name] = tmp_path / f"{name}.jsonl"
        prompt_files[name].write_text("".join(json.dumps({"id": f"{name}-{i}", "text": t}) + "\n"
                                              for i, t in enumerate(texts)))  # fmt: skip
    splits = {name: {"validation": {"rows": list(range(6))}} for name in prompt_files}
    (tmp_path / "splits.json").write_text(json.dumps(splits))
    (tmp_path / "manifest.json").write_text(json.dumps({"refusal_token_ids": [planted.refusal_token]}))
    monkeypatch.setattr(model_job, "load_tokenizer", lambda *args: tokenizer)
    monkeypatch.setattr(model_job, "load_job_model", lambda *args: (model, torch.device("cpu")))
    inputs = {"prompts": [str(prompt_files["harmful"]), str(prompt_files["harmless"])],
              "splits": str(tmp_path / "splits.json"), "candidates": str(tmp_path / "candidates.safetensors"),
              "manifest": str(tmp_path / "manifest.json")}  # fmt: skip
    exhaustive = {"layer_stride": 1, "max_candidates": None, "score_all_layers": False, "max_layer_fraction": 0.8,
                  "prefilter": "none"}  # fmt: skip
    for name, scoring in (("scores", exhaustive), ("prefiltered", {**exhaustive, "prefilter": "attribution",
                                                                  "prefilter_top_k": 4})):  # fmt: skip
        candidate_scores.score_candidates(
            inputs=inputs,
            outputs={"scores": str(tmp_path / f"{name}.csv")},
            model=spec,
            scoring=scoring,
            # prefix_cache off: the planted switch reads the whole prompt, so its prefix is not prompt-independent.
            execution=ExecutionSettings(batch_size=4, device="cpu", prefix_cache="off"),
        )
    # the prefilter with top k = every selectable candidate (4 layers) scores exactly what the exhaustive search does
    prefiltered = pd.read_csv(tmp_path / "prefiltered.csv")
    assert prefiltered["bypass_estimate"].notna().tolist() == [True] * 4 + [False]  # layer 4: not selectable
    pd.testing.assert_frame_equal(prefiltered.drop(columns=["bypass_estimate", "induce_estimate"]),
                                  pd.read_csv(tmp_path / "scores.csv"))  # fmt: skip
    # with top k = 2, the two lowest estimated bypass scores are the ones scored exactly
    top2 = {**exhaustive, "prefilter": "attribution", "prefilter_top_k": 2}
    candidate_scores.score_candidates(inputs=inputs, outputs={"scores": str(tmp_path / "top2.csv")}, model=spec,
                                      scoring=top2, execution=ExecutionSettings(batch_size=4, device="cpu",
                                                                                prefix_cache="off"))  # fmt: skip
    top2 = pd.read_csv(tmp_path / "top2.csv")
    assert set(top2.loc[top2["scored"], "layer"]) == set(top2.nsmallest(2, "bypass_estimate")["layer"])
    assert prefilter_summary(choose(top2, SETTINGS)[0])["n_scored"] == 2
    summary = prefilter_summary(choose(prefiltered, SETTINGS)[0])
    assert summary["n_estimated"] == summary["n_scored"] == 4 and -1 <= summary["spearman_bypass"] <= 1
    table, chosen, fallback, _ = choose(pd.read_csv(tmp_path / "scores.csv"), SETTINGS)
    assert table.loc[chosen, "layer"] == 2 and fallback == ""
    planted_row = table.loc[chosen]
    assert planted_row["bypass"] < 0 < planted_row["baseline_harmful_score"]  # ablation removes the refusal
    assert planted_row["induce"] > 0 > planted_row["baseline_harmless_score"]  # addition makes one
    # layer 4 is in the last 20% of the 5 layers: the filter never selects it, so it was not scored
    unscored = table[~table["scored"]]
    assert unscored["layer"].tolist() == [4] and unscored["bypass"].isna().all()
    assert unscored["why"].str.startswith("not scored").all() and not unscored["selected"].any()
    table = table[table["scored"]]
    assert (table.drop(index=chosen)["bypass"] > 0).all()  # ablating a decoy leaves the refusal
