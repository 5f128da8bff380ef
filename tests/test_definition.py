"""The workflow definition: dry-runs of the shipped configs, lint, formatting, env files."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import planned_jobs

REPO = Path(__file__).resolve().parents[1]
MODEL_RULES = (
    "extract_activations",
    "generate_responses",
    "run_interventions",
    "score_candidates",
    "evaluate_direction",
    "orthogonalize_model",
    "check_edited_model",
    "measure_capability",
    "measure_edited_capability",
    "judge_responses",
    "optimize_direction",
)
HEAVY_RULES = ("convert_model", *MODEL_RULES)
QWEN = REPO / "config" / "experiments" / "qwen2.5-1.5b-instruct.yaml"
FAMILY = REPO / "config" / "experiments" / "qwen2.5-family.yaml"


def snakemake(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "snakemake", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("configfile", [None, QWEN, FAMILY], ids=["default", "qwen", "family"])
def test_dry_run(configfile, tmp_path):
    # A fresh folder, so a finished run in the repository cannot hide jobs.
    (tmp_path / "data").symlink_to(REPO / "data")
    extra = ["--configfile", str(configfile)] if configfile else ["--configfile", str(REPO / "config" / "config.yaml")]
    result = snakemake("-n", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path), *extra, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = result.stdout
    assert re.search(rf"extract_activations\s+{7 if configfile == FAMILY else 1}\b", jobs)
    assert re.search(r"download_dataset\s+4", jobs)  # harmful, harmless and the two control sets
    # the splits are proportions of the 256 sampled prompts: the terminal says which sizes they give
    assert "note: splits: 256 prompts per set are split 126 / 32 / 98" in result.stderr
    if configfile:
        assert "qwen2.5-1.5b-instruct" in jobs and "convert_model" not in jobs
    if configfile == QWEN:  # the reference's selection: every layer and post-instruction position, on a GPU
        planned = {job["rule"]: job for job in planned_jobs(result)}
        assert {"score_candidates", "select_direction", "evaluate_direction"} <= set(planned)
        assert (
            planned["score_candidates"]["resources"]["gpu"] == planned["evaluate_direction"]["resources"]["gpu"] == "1"
        )
        # the edited model: sized from the model (1.5B parameters), its disk from the checkpoint's size
        export, check = planned["orthogonalize_model"]["resources"], planned["check_edited_model"]["resources"]
        assert export["gpu"] == check["gpu"] == "1" and export["mem_mb"] == check["mem_mb"] == "8000"
        assert export["disk_mb"] == "7000"
        # the capability cost: the hook conditions and the edited model, each sized from the model
        for rule in ("measure_capability", "measure_edited_capability"):
            resources = planned[rule]["resources"]
            assert resources["gpu"] == "1" and resources["mem_mb"] == "8000" and int(resources["runtime"]) >= 15
        assert {"download_capability_texts", "summarize_capability", "plot_capability"} <= set(planned)
        # every direction method, its jobs sized from the model like mean_diff's
        jobs = planned_jobs(result)
        methods = {job["wildcards"]["method"] for job in jobs if job["rule"] == "evaluate_method"}
        assert methods == {"projected", "pca", "ace", "rdo", "cone"}
        assert {job["wildcards"]["method"] for job in jobs if job["rule"] == "optimize_direction"} == {"rdo", "cone"}
        for rule in ("optimize_direction", "score_method_candidates", "evaluate_method", "check_method_edit"):
            resources = planned[rule]["resources"]
            assert resources["gpu"] == "1" and resources["mem_mb"] == "8000" and int(resources["runtime"]) >= 15, rule
        assert {"compare_methods", "plot_methods"} <= set(planned)


def test_the_jailbreakbench_config_judges_with_a_7b_model_sized_from_its_parameters(tmp_path):
    """Given after the Qwen config: the evaluation reads JailbreakBench's prompts, and judge_responses (one per
    response file) asks for the 7.6B judge's resources, not the 1.5B model's."""
    (tmp_path / "data").symlink_to(REPO / "data")
    overlay = REPO / "config" / "experiments" / "qwen2.5-1.5b-jailbreakbench.yaml"
    result = snakemake("-n", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--configfile",
                       str(QWEN), str(overlay), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result)
    judged = [job for job in jobs if job["rule"] == "judge_responses"]
    sources = sorted(job["wildcards"]["source"] for job in judged)
    assert sources == ["behaviour", "edited", "evaluation", "interventions"]
    model_job = next(job for job in jobs if job["rule"] == "evaluate_direction")["resources"]
    for job in judged:
        assert job["resources"]["gpu"] == "1" and job["resources"]["mem_mb"] == "19000" != model_job["mem_mb"]
    assert re.search(r"rule evaluate_direction:\n    input: [^\n]*prompts/jailbreakbench\.jsonl", result.stdout)


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
        # The jobs that run the model are sized from the model (rules/common.smk: model_job_resources).
        sized = f'**model_job_resources("{name}")' in block and f'threads: model_job_threads("{name}")' in block
        assert sized == (name in MODEL_RULES), name
        assert "retries:" not in block, name  # out-of-memory is handled in the job; a retry would repeat any error


# Import names that differ from the distribution's name in requirements.txt.
DISTRIBUTIONS = {"yaml": "pyyaml", "huggingface_hub": "huggingface-hub", "safetensors": "safetensors"}
STANDARD = set(sys.stdlib_module_names)


def rule_scripts_and_envs():
    """(rule, entry script name, env file) of every rule with a script."""
    text = "\n".join(path.read_text() for path in sorted((REPO / "rules").glob("*.smk")))
    for block in re.split(r"\n(?=(?:rule|checkpoint) )", text)[1:]:
        script = re.search(r'script:\s*"\.\./scripts/(\w+)\.py"', block)
        env = re.search(r'conda:\s*"\.\./envs/([\w.]+)"', block)
        if script:
            yield block.split()[1].rstrip(":"), script.group(1), env.group(1)


def test_every_rule_env_holds_what_its_code_imports():
    """Every third-party module that a rule's entry script and its package modules import (at the top or
    inside a function) is pinned in the rule's conda env."""
    from refusal_directions.workflow.definition import local_modules, module_file

    for rule, script, env_file in rule_scripts_and_envs():
        env = yaml.safe_load((REPO / "envs" / env_file).read_text())
        pinned = set(pins(next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))))
        sources = [(REPO / "scripts" / f"{script}.py").read_text()] + [
            module_file(name).read_text() for name in local_modules(script)
        ]
        imported = set()
        for node in (node for source in sources for node in ast.walk(ast.parse(source))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
        imported -= STANDARD | {"refusal_directions"}
        third_party = {DISTRIBUTIONS.get(name, name.replace("_", "-")) for name in imported}
        assert third_party <= pinned, f"{rule} ({env_file}) misses {sorted(third_party - pinned)}"


def test_the_benchmark_smoke_run_checks_the_lines_the_readme_records():
    """benchmarks/smoke.py runs every benchmark script (CI: make bench-smoke) and checks the lines that
    benchmarks/README.md records for it, by name."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from smoke import SMOKE, missing_lines

    readme = (REPO / "benchmarks" / "README.md").read_text()
    assert set(SMOKE) == {path.name for path in (REPO / "benchmarks").glob("bench_*.py")}
    for script, (_, expected) in SMOKE.items():
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{script}` |"))
        assert all(f"`{prefix}`" in row for prefix in expected), script
    assert missing_lines("ratio a: 1\nratio b: 2", ["ratio a:", "ratio c:"]) == ["ratio c:"]


def test_the_extraction_benchmarks_dag_runs_on_the_default_config(tmp_path):
    """bench_extraction.py's Experiment 0 (the default config, every optional branch off) plans a valid DAG:
    the smoke run skips that DAG (minutes), and a default config with a branch that needs another once made
    `make bench` fail there."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_extraction import experiment0_config

    (tmp_path / "data").symlink_to(REPO / "data")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(experiment0_config()))
    result = snakemake("-n", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--configfile",
                       str(tmp_path / "config.yaml"), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "extract_activations" in result.stdout and "score_candidates" not in result.stdout


@pytest.mark.parametrize("n_permutations", [200, 5000])
def test_a_permutation_count_too_small_for_any_valid_layer_is_said_on_the_terminal(tmp_path, n_permutations):
    (tmp_path / "data").symlink_to(REPO / "data")
    result = snakemake("-n", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--configfile",
                       str(REPO / "config" / "config.yaml"), "--config", f"n_permutations={n_permutations}",
                       cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    notes = [line for line in result.stderr.splitlines() if "smallest Holm-adjusted p" in line]
    if n_permutations == 5000:  # 30 / 5001 < alpha = 0.01
        assert notes == []
    else:
        assert notes == [
            "note: smollm2-135m-instruct: with 200 permutations and 30 layers the smallest Holm-adjusted p is 0.149 "
            ">= alpha = 0.01: no layer can be valid; raise n_permutations above 3000"
        ]


def test_the_tests_readme_names_every_test_module_and_its_tier():
    """tests/README.md has a row per test module, whose tier says whether the module runs in make test (fast),
    in make test-all only (slow: a module-level mark), or both (some tests marked slow)."""
    rows = dict(re.findall(r"^\| `(test_\w+)\.py` \| ([^|]+) \|", (REPO / "tests" / "README.md").read_text(), re.M))
    modules = sorted(path.stem for path in (REPO / "tests").glob("test_*.py"))
    assert sorted(rows) == modules
    for module in modules:
        source = (REPO / "tests" / f"{module}.py").read_text()
        tier = rows[module].strip()
        if re.search(r"^pytestmark = pytest\.mark\.slow$", source, re.M):
            assert tier == "slow", module
        else:
            some_slow = re.search(r"^@pytest\.mark\.slow$", source, re.M) is not None
            assert tier.startswith("fast") and (", " in tier) == some_slow, module


def test_the_direction_methods_overlay_plans_every_method(tmp_path):
    """config/experiments/smollm2-direction-methods.yaml over the default config: each method's jobs, sized."""
    (tmp_path / "data").symlink_to(REPO / "data")
    overlay = REPO / "config" / "experiments" / "smollm2-direction-methods.yaml"
    result = snakemake("-n", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--configfile",
                       str(REPO / "config" / "config.yaml"), str(overlay), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result)
    for rule, methods in (("evaluate_method", {"projected", "pca", "ace", "rdo", "cone"}),
                          ("optimize_direction", {"rdo", "cone"}), ("compute_method_candidates", {"projected", "pca"}),
                          ("score_method_candidates", {"projected", "pca", "ace"}),
                          ("method_direction", {"mean_diff", "projected", "pca", "ace"}),
                          ("check_method_edit", {"projected", "pca", "rdo", "cone"})):  # fmt: skip  # ace: hooks only
        assert {job["wildcards"]["method"] for job in jobs if job["rule"] == rule} == methods, rule
    assert {"compare_methods", "plot_methods"} <= {job["rule"] for job in jobs}
