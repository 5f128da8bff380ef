"""Config validation: defaults, and one-line errors that name the bad key."""

import copy
from pathlib import Path

import pytest
import yaml

from refusal_directions.config.check import ConfigError, validate_config

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "config" / "schema.yaml"


def default_config():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


@pytest.mark.parametrize("path", sorted((REPO / "config" / "experiments").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    """As Snakemake uses them: the default config, extended by the experiment file."""
    from snakemake.utils import update_config

    validate_config(default_config(), SCHEMA)
    merged = default_config()
    update_config(merged, yaml.safe_load(path.read_text()))
    validate_config(merged, SCHEMA)


def test_defaults_are_filled():
    config = validate_config({"models": [{"slug": "m", "id": "x"}], "datasets": default_config()["datasets"]}, SCHEMA)
    assert config["alpha"] == 0.01 and config["d_min"] == 0.5 and config["n_samples"] == 256
    assert config["models"][0]["dtype"] == "auto" and config["models"][0]["trust_remote_code"] is False
    assert config["datasets"]["harmful"]["text_column"] == "text"


def error_for(mutate):
    config = copy.deepcopy(default_config())
    mutate(config)
    with pytest.raises(ConfigError) as caught:
        validate_config(config, SCHEMA)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_mistyped_top_level_key_is_named_with_a_suggestion():
    message = error_for(lambda c: c.update(alhpa=0.05))
    assert "unknown config key 'alhpa' (did you mean 'alpha'?)" in message


def test_unknown_nested_key_names_its_place():
    message = error_for(lambda c: c["models"][0].update(dtpye="float32"))
    assert "'dtpye' (did you mean 'dtype'?) in 'models[0]'" in message


def test_bad_value_names_the_key():
    assert "config key 'models[0].dtype'" in error_for(lambda c: c["models"][0].update(dtype="bf17"))
    assert "config key 'alpha'" in error_for(lambda c: c.update(alpha=1.5))
    assert "config key 'n_samples'" in error_for(lambda c: c.update(n_samples="many"))


def test_missing_dataset_is_named():
    assert "missing 'harmless'" in error_for(lambda c: c["datasets"].pop("harmless"))


def test_slug_with_path_separator_is_rejected():
    message = error_for(lambda c: c["models"][0].update(slug="org/model"))
    assert "not a valid slug" in message and "models[0].slug" in message


def test_duplicate_slugs_are_rejected():
    message = error_for(lambda c: c["models"].append(dict(c["models"][0])))
    assert "slug 'smollm2-135m-instruct' is used by more than one model" in message


def test_reserved_slug_is_rejected():
    message = error_for(lambda c: c["models"][0].update(slug="comparison"))
    assert "slug 'comparison' is reserved for results/comparison/" in message


def test_a_value_that_is_not_a_mapping_where_a_oneof_branch_has_defaults():
    """snakemake's validate fills defaults before it checks the type: the value still gets its one-line error."""
    message = error_for(lambda c: c.setdefault("refusal", {}).update(classifier=5))
    assert message == "config key 'refusal.classifier': 5 is not valid under any of the given schemas"


def test_exporting_the_selected_direction_needs_the_selection():
    def without_selection(config):
        config["export"] = {"enabled": True, "layer": None}
        config["selection"]["enabled"] = False

    message = error_for(without_selection)
    assert "config key 'export.layer'" in message and "needs selection.enabled: true" in message
    config = default_config()
    config["export"] = {"enabled": True, "layer": 3}
    config["selection"]["enabled"] = config["capability"]["enabled"] = False
    validate_config(config, SCHEMA)  # a configured layer's direction needs no selection
    assert "config key 'export.layer'" in error_for(lambda c: c.update(export={"layer": -1}))


def test_the_capability_cost_needs_the_selection_and_an_existing_text_file():
    message = error_for(lambda c: (c["selection"].update(enabled=False), c["export"].update(layer=3)))
    assert message.startswith("config key 'capability.enabled'") and "needs selection.enabled: true" in message
    message = error_for(lambda c: c["capability"].update(texts={"source": "data/no-such-pile.jsonl"}))
    assert message == "config key 'capability.texts.source': dataset file data/no-such-pile.jsonl does not exist"
    message = error_for(lambda c: c["capability"].update(texts={"source": "data/harmless.txt", "encoding": "utf-9"}))
    assert message == "config key 'capability.texts.encoding': unknown encoding 'utf-9'"
    config = default_config()
    config["capability"]["texts"] = {"source": "hf://tatsu-lab/alpaca", "text_column": "output"}
    # a Hub dataset is checked when it is read
    assert validate_config(config, SCHEMA)["capability"]["texts"]["split"] == "train"


def refusal_error(**settings):
    """The error of the default config with these ``refusal`` settings."""
    return error_for(lambda c: c.setdefault("refusal", {}).update(settings))


def test_judges_and_their_models_are_checked():
    assert "llm needs refusal.llm" in refusal_error(judges=["substring", "llm"])
    assert "classifier needs refusal.classifier" in refusal_error(judges=["classifier"])
    message = refusal_error(judges=["substring"])
    assert message == "config key 'refusal.primary': text_or_score needs refusal_score in refusal.judges"
    message = refusal_error(primary="llm")
    assert message == "config key 'refusal.primary': llm is not in refusal.judges (substring, refusal_score)"
    missing = {"model": {"slug": "j", "id": "/no/such/judge"}}
    message = refusal_error(judges=["substring", "refusal_score", "llm"], llm=missing)
    assert message == "config key 'refusal.llm.model.id': local model folder /no/such/judge does not exist"
    # the classifier's old key says where it went
    message = refusal_error(judge={"model": "m", "refusal_label": "refusal"})
    assert "'judge' (now refusal.classifier, with classifier in refusal.judges) in 'refusal'" in message


def test_the_evaluation_set_is_a_separate_configured_dataset():
    message = error_for(lambda c: c["selection"]["evaluation"].update(harmful_dataset="jbb"))
    assert message.startswith("config key 'selection.evaluation.harmful_dataset': 'jbb' is not a dataset")
    message = error_for(lambda c: c["selection"]["evaluation"].update(harmful_dataset="harmful"))
    assert "'harmful' built the direction" in message
