"""What the edit costs (export/capability.py, export/capability_summary.py): the cross-entropy of a
continuation against a direct computation with its prompt masked, the edited model's cross-entropy against the
hook ablation's, the table's means and paired intervals, and the generic text's bad inputs."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from edited_models import export, spec_of

from refusal_directions.data.sources import download_dataset
from refusal_directions.export import capability
from refusal_directions.export.capability import generic_documents, measure_capability, measure_edited_capability
from refusal_directions.export.capability_summary import capability_table
from refusal_directions.export.capability_texts import GENERIC, ON_DISTRIBUTION
from refusal_directions.interventions.conditions import BYPASS, EDITED
from refusal_directions.model.batching import BatchRunner
from refusal_directions.model.forward import ModelRunner
from refusal_directions.model.loading import load_model, load_tokenizer
from refusal_directions.workflow.errors import UserError
from refusal_directions.workflow.execution import ExecutionSettings
from refusal_directions.workflow.jsonio import write_jsonl

from conftest import HARMFUL, HARMLESS

CPU = ExecutionSettings(device="cpu", batch_size=2)


def loaded(folder):
    model = load_model(str(folder), None, spec_of(folder), torch.device("cpu"), torch.float32)
    return model, load_tokenizer(str(folder), None, spec_of(folder))


def test_the_loss_is_the_continuations_cross_entropy_with_the_prompt_masked(biased_tied_model):
    """Batches of two sequences of different lengths (left-padded) against one forward pass per sequence and
    torch's cross_entropy over the continuation's tokens only."""
    model, tokenizer = loaded(biased_tied_model)
    runner = ModelRunner(model, tokenizer, torch.device("cpu"), BatchRunner(2))
    rng = np.random.default_rng(0)
    sequences = [rng.integers(3, model.config.vocab_size, n).tolist() for n in (5, 9, 14, 7, 3)]
    n_scored = [2, 6, 1, 6, 2]
    sums = runner.loss_sums(sequences, n_scored)
    for ids, n, total in zip(sequences, n_scored, sums, strict=True):
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
        prompt = len(ids) - n
        continuation = torch.tensor(ids[prompt:])
        expected = torch.nn.functional.cross_entropy(logits[prompt - 1 : -1], continuation, reduction="sum")
        assert total == pytest.approx(float(expected), rel=1e-5)
        if prompt > 1:  # the prompt's tokens after its first would count otherwise
            with_prompt = torch.nn.functional.cross_entropy(logits[:-1], torch.tensor(ids[1:]), reduction="sum")
            assert abs(total - float(with_prompt)) > 1e-3


@pytest.fixture(scope="module")
def measured(biased_tied_model, tmp_path_factory):
    """Both measurements on the same documents: the hook conditions on the source, the exported edited model."""
    folder = tmp_path_factory.mktemp("capability")
    edited, _ = export(biased_tied_model, folder)
    responses = [{"condition": "baseline_harmless", "id": f"harmless-{i:05d}", "text": text, "response": answer}
                 for i, (text, answer) in enumerate(zip(HARMLESS[:6], HARMFUL[6:12], strict=True))]  # fmt: skip
    write_jsonl(folder / "generations.jsonl", responses)
    write_jsonl(folder / "texts.jsonl", [{"id": f"t{i}", "text": " ".join(HARMLESS[i : i + 4])} for i in range(8)])
    inputs = {"generations": str(folder / "generations.jsonl"), "texts": str(folder / "texts.jsonl"),
              "selected": str(folder / "inputs" / "selected.safetensors"),
              "directions": str(folder / "inputs" / "directions.safetensors"), "edited": str(edited)}  # fmt: skip
    spec, settings = spec_of(biased_tied_model), {"n_tokens": 60}
    measure_capability(inputs, {"losses": str(folder / "losses.csv")}, spec, settings, seed=0, execution=CPU)
    measure_edited_capability(inputs, {"losses": str(folder / "edited.csv")}, spec, settings, execution=CPU)
    return pd.concat([pd.read_csv(folder / "losses.csv"), pd.read_csv(folder / "edited.csv")], ignore_index=True)


def test_the_edited_models_cross_entropy_equals_the_hook_ablations(measured):
    table = capability_table(measured, level=0.95, n_bootstrap=200, seed=0).set_index(["text", "condition"])
    assert set(table.index.get_level_values("text")) == {ON_DISTRIBUTION, GENERIC}
    for text in (ON_DISTRIBUTION, GENERIC):
        edited, ablated = table.loc[(text, EDITED)], table.loc[(text, BYPASS)]
        assert abs(edited["cross_entropy"] - ablated["cross_entropy"]) <= 1e-4
        assert abs(ablated["change"]) > 1e-3  # the edit changes the model: the agreement is not trivial
    assert table.loc[(GENERIC, "baseline"), "n_tokens"] == 60  # capability.n_tokens bounds the generic text
    assert table.loc[(ON_DISTRIBUTION, "baseline"), "n_documents"] == 6
    # no control contrast in this run: the conditions that need it are left out, the rest measured
    assert not any("control" in name for name in table.index.get_level_values("condition"))


def test_the_table_is_losses_over_tokens_with_a_paired_change():
    """Documents of very different difficulty, every one 0.1 nats per token worse under the ablation: the
    paired interval of the change is far narrower than either condition's own interval."""
    rng = np.random.default_rng(1)
    tokens = rng.integers(5, 50, 40)
    per_token = rng.uniform(0.2, 3.0, 40)
    base = pd.DataFrame({"condition": "baseline", "text": ON_DISTRIBUTION, "document": range(40), "n_tokens": tokens,
                         "loss_sum": per_token * tokens})  # fmt: skip
    ablated = base.assign(condition=BYPASS, loss_sum=(per_token + 0.1 + rng.normal(0, 0.01, 40)) * tokens)
    table = capability_table(pd.concat([ablated, base]), level=0.95, n_bootstrap=2000, seed=0).set_index("condition")
    assert table.index.tolist() == ["baseline", BYPASS]  # the registry's order, whatever the files' order
    assert table.loc["baseline", "cross_entropy"] == pytest.approx(base["loss_sum"].sum() / tokens.sum())
    change = table.loc[BYPASS, "cross_entropy"] - table.loc["baseline", "cross_entropy"]
    assert table.loc[BYPASS, "change"] == pytest.approx(change) and 0.09 < change < 0.11
    own = table.loc[BYPASS, "cross_entropy_ci_high"] - table.loc[BYPASS, "cross_entropy_ci_low"]
    paired = table.loc[BYPASS, "change_ci_high"] - table.loc[BYPASS, "change_ci_low"]
    assert table.loc[BYPASS, "change_ci_low"] < change < table.loc[BYPASS, "change_ci_high"] and paired < own / 10
    with pytest.raises(UserError, match="scored other on_distribution documents"):
        capability_table(pd.concat([base, ablated.iloc[1:]]), level=0.95, n_bootstrap=10, seed=0)


def test_generic_documents_stop_at_the_token_budget(biased_tied_model, tmp_path, monkeypatch):
    _, tokenizer = loaded(biased_tied_model)
    texts = [{"id": "short", "text": "a"}, *({"id": f"d{i}", "text": " ".join(HARMLESS[i : i + 3])} for i in range(5))]
    write_jsonl(tmp_path / "texts.jsonl", texts)
    monkeypatch.setattr(capability, "MAX_DOCUMENT_TOKENS", 6)
    documents = generic_documents(str(tmp_path / "texts.jsonl"), tokenizer, n_tokens=12)
    assert documents.ids[0] == "d0"  # a one-token text has nothing to score
    assert sum(documents.n_scored) == 12 and max(map(len, documents.token_ids)) <= 6
    assert [len(ids) - 1 for ids in documents.token_ids] == documents.n_scored


@pytest.mark.parametrize(
    "content, expected",
    [(b"\n \n", "dataset 'capability.texts' ({path}) holds no usable texts"),
     ("Le café est prêt\n".encode("latin-1"), "{path} is not valid utf-8: byte 0xe9 at line 1")],
    ids=["empty", "not utf-8"],
)  # fmt: skip
def test_bad_generic_text_is_one_error_naming_the_file(tmp_path, content, expected):
    path = tmp_path / "texts.txt"
    path.write_bytes(content)
    with pytest.raises(UserError) as caught:
        download_dataset({}, {"dataset": str(tmp_path / "out.jsonl")}, "capability.texts", {"source": str(path)},
                         "texts")  # fmt: skip
    assert expected.format(path=path) in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "out.jsonl").exists()


def test_the_on_distribution_text_is_the_baselines_responses_after_their_prompts(biased_tied_model, tmp_path):
    from refusal_directions.export.capability import on_distribution_documents
    from refusal_directions.model.job import ModelJob

    records = [{"condition": "baseline_harmless", "id": "a", "text": HARMLESS[0], "response": "Sure, here it is."},
               {"condition": "baseline_harmless", "id": "b", "text": HARMLESS[1], "response": ""},
               {"condition": "addition", "id": "a", "text": HARMLESS[0], "response": "I cannot."}]  # fmt: skip
    write_jsonl(tmp_path / "generations.jsonl", records)
    job = ModelJob.open(spec_of(biased_tied_model), {})
    documents = on_distribution_documents(str(tmp_path / "generations.jsonl"), job)
    prompt = job.prompt_format.encode(HARMLESS[0])
    response = job.tokenizer.encode("Sure, here it is.", add_special_tokens=False)
    assert documents.ids == ["a"] and documents.token_ids == [prompt + response]
    assert documents.n_scored == [len(response)]
    assert json.dumps(documents.token_ids)  # plain ints, ready for the runner
