"""Bad input: one clear line naming the file or key, and no half-written output."""

import pytest

from conftest import build_tiny_model, run_workflow, tiny_config, write_lines

pytestmark = pytest.mark.slow


def output_text(result):
    return result.stdout + result.stderr


def test_mistyped_config_key(tmp_path, tiny_model):
    result = run_workflow(tmp_path, tiny_config(tmp_path, tiny_model, alhpa=0.05), "-n", check=False)
    assert result.returncode != 0
    assert "invalid config: unknown config key 'alhpa' (did you mean 'alpha'?)" in output_text(result)


def test_missing_text_column(tmp_path, tiny_model):
    config = tiny_config(tmp_path, tiny_model)
    path = write_lines(tmp_path / "data" / "harmful.csv", ["prompt"] + [f"request {i}" for i in range(20)])
    config["datasets"]["harmful"] = {"source": path}
    result = run_workflow(tmp_path, config, check=False)
    assert result.returncode != 0
    assert "error: " in output_text(
        result
    ) and "harmful.csv has no text column 'text' (columns: prompt)" in output_text(result)
    assert not (tmp_path / "results" / "datasets" / "harmful.jsonl").exists()


def test_too_few_prompts(tmp_path, tiny_model):
    result = run_workflow(tmp_path, tiny_config(tmp_path, tiny_model, n_samples=50), check=False)
    assert result.returncode != 0
    assert "n_samples = 50 but dataset 'harmful' has only 20 usable prompts" in output_text(result)
    assert not list((tmp_path / "results" / "prompts").glob("*.jsonl"))


def test_model_without_chat_template(tmp_path):
    model = build_tiny_model(tmp_path / "plain", n_layers=1, chat_template=False)
    result = run_workflow(tmp_path, tiny_config(tmp_path, model), check=False)
    assert result.returncode != 0
    assert "has no chat template; set prompt_format: raw" in output_text(result)
    assert not (tmp_path / "results" / "tiny" / "activations").exists()


def test_unreachable_hub_dataset_names_the_offline_default(tmp_path, tiny_model):
    config = tiny_config(tmp_path, tiny_model)
    config["datasets"]["harmful"] = {"source": "hf://no-such-org/no-such-dataset"}
    result = run_workflow(tmp_path, config, check=False)
    assert result.returncode != 0
    assert "cannot load Hub dataset 'no-such-org/no-such-dataset'" in output_text(result)
    assert "make run" in output_text(result)
    assert not (tmp_path / "results" / "datasets" / "harmful.jsonl").exists()
