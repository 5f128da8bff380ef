"""The workflow definition: dry-runs of the shipped configs, lint, formatting, env files."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
HEAVY_RULES = ("convert_model", "extract_activations", "generate_responses", "run_interventions")
MODEL_RULES = ("extract_activations", "generate_responses", "run_interventions")
QWEN = REPO / "config" / "experiments" / "qwen2.5-1.5b-instruct.yaml"


def snakemake(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "snakemake", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("configfile", [None, QWEN], ids=["default", "qwen"])
def test_dry_run(configfile, tmp_path):
    # A fresh folder, so a finished run in the repository cannot hide jobs.
    (tmp_path / "data").symlink_to(REPO / "data")
    extra = ["--configfile", str(configfile)] if configfile else ["--configfile", str(REPO / "config" / "config.yaml")]
    result = snakemake("-n", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path), *extra, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = result.stdout
    assert re.search(r"extract_activations\s+1", jobs)
    assert re.search(r"download_dataset\s+4", jobs)  # harmful, harmless and the two control sets
    if configfile:
        assert "qwen2.5-1.5b-instruct" in jobs and "convert_model" not in jobs


def test_lint_is_clean():
    result = snakemake("--lint")
    assert result.returncode == 0
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_snakefmt_and_ruff():
    files = ["Snakefile", *map(str, sorted((REPO / "rules").glob("*.smk")))]
    assert subprocess.run([sys.executable, "-m", "snakefmt", "--check", *files], cwd=REPO).returncode == 0
    assert subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=REPO).returncode == 0
    assert subprocess.run([sys.executable, "-m", "ruff", "format", "--check", "."], cwd=REPO).returncode == 0


def pins(lines):
    found = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            found[name.strip().lower().replace("_", "-")] = version.strip()
    return found


def test_env_files_agree_with_requirements():
    required = pins((REPO / "requirements.txt").read_text().splitlines())
    for env_file in sorted((REPO / "envs").glob("*.yaml")):
        env = yaml.safe_load(env_file.read_text())
        pip_section = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
        pinned = pins(pip_section)
        assert pinned, env_file
        assert len(pinned) == len(pip_section), f"{env_file.name}: every package must be pinned with =="
        for name, version in pinned.items():
            assert required.get(name) == version, f"{env_file.name}: {name}=={version} vs requirements.txt"


def test_every_rule_has_log_conda_and_heavy_rules_benchmark():
    text = "\n".join(path.read_text() for path in sorted((REPO / "rules").glob("*.smk")))
    rules = re.split(r"\n(?=(?:rule|checkpoint) )", text)
    for block in rules[1:]:
        name = block.split()[1].rstrip(":")
        assert "    log:" in block and "    conda:" in block, name
        if name in HEAVY_RULES:
            assert "    benchmark:" in block, name
        # The jobs that run the model share one resources definition (rules/common.smk).
        assert ("**MODEL_JOB_RESOURCES" in block) == (name in MODEL_RULES), name
        assert "retries:" not in block, name  # out-of-memory is handled in the job; a retry would repeat any error
