"""The whole DAG on the tiny model in a temporary folder (conftest.tiny_run): every rule runs, every file of the
output contract is checked, and settings that must rerun nothing rerun nothing."""

import json
import pickle
import re

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml
from safetensors.numpy import load_file

from refusal_directions.interventions.conditions import BYPASS, CAPABILITY, CONDITIONS, EDITED, EVALUATION

from conftest import (
    REPO,
    TINY_RUN_SAMPLES,
    copy_run,
    planned_jobs,
    run_workflow,
    scipy_layer_reference,
)

CONTRACT_COLUMNS = [
    "layer",
    "magnitude",
    "cohens_d",
    "t_stat",
    "p_value",
    "log10_p",
    "mean_proj_harmful",
    "mean_proj_harmless",
    "valid",
]
STATISTICS_COLUMNS = (
    "welch_t, welch_log10_p, cohens_d_heldout, log10_p_heldout, d_inflation, null_d_mean, null_d_p99, p_perm, "
    "d_ci_low, d_ci_high, direction_stability, p_holm, valid, valid_seed_rule, control_d, d_minus_control, "
    "control_cosine"
).split(", ")
H5_ATTRS = {"model_id", "weights_revision", "layer", "layer_convention", "dtype", "prompt_set_hash"}
N_SAMPLES, N_TRAIN, N_VALIDATION, N_TEST = TINY_RUN_SAMPLES, 10, 2, 8  # the reference's proportions 128 / 32 / 100
JUDGED = ("behaviour", "interventions", "evaluation", "edited")


def defined_rules() -> set[str]:
    """Every rule and checkpoint of the workflow (those that use another rule again included), read from the
    Snakefile and the rule files."""
    return {m[1] or m[2] for path in [REPO / "Snakefile", *(REPO / "rules").glob("*.smk")]
            for m in re.finditer(r"^(?:(?:rule|checkpoint) (\w+):|use rule \w+ as (\w+) with:)", path.read_text(),
                                 re.M)}  # fmt: skip


def executed_rules(workdir) -> set[str]:
    """The rules of the jobs that the run executed, from the log Snakemake keeps of it (its first)."""
    log = min((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    return set(re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):$", log.read_text(), re.M))


def test_every_rule_ran(tiny_run):
    workdir, _ = tiny_run
    assert executed_rules(workdir) == defined_rules() and "convert_model" in defined_rules()


def test_prompt_files(tiny_run):
    _, out = tiny_run
    for name in ("harmful", "harmless"):
        rows = [json.loads(line) for line in (out / "prompts" / f"{name}.jsonl").read_text().splitlines()]
        assert len(rows) == N_SAMPLES
        for row in rows:
            assert set(row) == {"id", "text", "source", "formatted"} | ({"level"} if name == "harmful" else set())
            assert row["formatted"].endswith("<|im_start|>assistant\n") and row["text"] in row["formatted"]


def test_one_hdf5_file_and_one_stats_job_per_layer(tiny_run):
    workdir, out = tiny_run
    files = sorted(p.name for p in (out / "activations").glob("layer_*.h5"))
    assert files == ["layer_00.h5", "layer_01.h5", "layer_02.h5"]
    assert len(list((workdir / "results" / "logs" / "layer_stats" / "tiny").glob("*.log"))) == 3
    for layer, name in enumerate(files):
        with h5py.File(out / "activations" / name) as handle:
            assert H5_ATTRS <= set(handle.attrs)
            assert handle.attrs["layer"] == layer and handle.attrs["dtype"] == "float32"
            for dataset in ("harmful", "harmless"):
                assert handle[dataset].shape == (N_SAMPLES, 32) and handle[dataset].dtype == np.float32


def train_rows(workdir, name):
    return json.loads((workdir / "results" / "splits.json").read_text())[name]["train"]["rows"]


def test_splits_are_disjoint_seeded_and_shared_by_aligned_sets(tiny_run):
    workdir, _ = tiny_run
    splits = json.loads((workdir / "results" / "splits.json").read_text())
    for name, parts in splits.items():
        rows = [parts[split]["rows"] for split in ("train", "validation", "test")]
        assert [len(r) for r in rows] == [N_TRAIN, N_VALIDATION, N_TEST]
        assert sorted(sum(rows, [])) == list(range(N_SAMPLES))
        assert parts["train"]["ids"][0].startswith(f"{name}-")
    assert splits["imperatives"]["test"]["rows"] == splits["questions"]["test"]["rows"]  # pairs stay together


def test_validation_table_recomputed_from_hdf5_with_scipy(tiny_run):
    workdir, out = tiny_run
    table = pd.read_csv(out / "validation_results.csv")
    assert list(table.columns[: len(CONTRACT_COLUMNS)]) == CONTRACT_COLUMNS
    harmful_rows, harmless_rows = train_rows(workdir, "harmful"), train_rows(workdir, "harmless")
    for row in table.itertuples():
        with h5py.File(out / "activations" / f"layer_{row.layer:02d}.h5") as handle:
            reference = scipy_layer_reference(
                handle["harmful"][...][harmful_rows], handle["harmless"][...][harmless_rows]
            )
        for column, expected in reference.items():
            assert getattr(row, column) == pytest.approx(expected, rel=1e-6), column
        assert row.log10_p == pytest.approx(np.log10(reference["p_value"]), rel=1e-6)
        assert row.valid_seed_rule == (reference["p_value"] < 0.01 and abs(row.cohens_d) > 0.5)


def test_statistics_columns_for_every_layer(tiny_run):
    _, out = tiny_run
    table = pd.read_csv(out / "validation_results.csv")
    missing = [column for column in STATISTICS_COLUMNS if column not in table]
    assert not missing
    assert table[STATISTICS_COLUMNS].notna().all().all()
    for p_column in ("p_value", "p_perm", "p_holm", "p_heldout"):
        assert not (table[p_column] == 0).any(), p_column
    assert ((table["p_holm"] >= table["p_perm"]) & (table["p_holm"] <= 1)).all()
    assert (table["d_ci_low"] <= table["d_ci_high"]).all()
    expected = (table["cohens_d_heldout"] > 0.5) & (table["p_holm"] < 0.01)
    assert (table["valid"] == expected).all()
    np.testing.assert_allclose(table["d_minus_control"], table["cohens_d"] - table["control_d"], rtol=1e-12)


def test_control_sets_share_the_extraction(tiny_run):
    _, out = tiny_run
    with h5py.File(out / "activations" / "layer_01.h5") as handle:
        assert set(handle) == {"harmful", "harmless", "imperatives", "questions"}
        np.testing.assert_array_equal(handle["imperatives"][...], handle["harmless"][...])
    assert "Control contrast" in (out / "report.md").read_text()


def test_layer_json_top10_summary(tiny_run):
    _, out = tiny_run
    table = pd.read_csv(out / "validation_results.csv")
    layer = json.loads((out / "layers" / "layer_01.json").read_text())
    assert layer["layer"] == 1 and layer["cohens_d"] == pytest.approx(table.loc[1, "cohens_d"])
    top = pd.read_csv(out / "top10_layers.csv")
    assert list(top.columns) == list(table.columns)
    assert top["cohens_d"].abs().tolist() == sorted(table["cohens_d"].abs(), reverse=True)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_harmful"] == summary["n_harmless"] == N_TRAIN and summary["n_layers"] == 3
    assert summary["splits"] == {"train": N_TRAIN, "validation": N_VALIDATION, "test": N_TEST, "seed": 42,
                                 "statistics_on": "train"}  # fmt: skip
    assert summary["valid_layers"] == table.loc[table["valid"], "layer"].tolist()
    assert summary["valid_seed_rule_layers"] == table.loc[table["valid_seed_rule"], "layer"].tolist()
    best = table.loc[table["cohens_d"].abs().idxmax()]
    assert summary["strongest_layer"]["layer"] == best["layer"]
    assert summary["thresholds"] == {"alpha": 0.01, "d_min": 0.5}
    assert summary["statistics"]["n_permutations"] == 10000 and summary["control"] == {
        "a": "imperatives",
        "b": "questions",
    }
    assert {"torch", "transformers", "numpy"} <= set(summary["package_versions"])
    assert len(summary["config_hash"]) == 16


def test_direction_files(tiny_run):
    _, out = tiny_run
    table = pd.read_csv(out / "validation_results.csv")
    tensors = load_file(out / "directions.safetensors")
    assert tensors["unit_directions"].shape == tensors["mean_differences"].shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(tensors["unit_directions"], axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(tensors["mean_differences"], axis=1), table["magnitude"], rtol=1e-5)
    with open(out / "validated_directions.pkl", "rb") as handle:
        validated = pickle.load(handle)
    assert sorted(validated) == table.loc[table["valid"], "layer"].tolist()
    for layer, vector in validated.items():
        np.testing.assert_array_equal(vector, tensors["unit_directions"][layer])


def test_figure_and_report(tiny_run):
    _, out = tiny_run
    assert (out / "direction_analysis.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    for heading in ("## Summary", "## Method", "### Top 10 layers", "## Figure", "## Layer patterns", "## Limitations"):
        assert heading in report
    summary = json.loads((out / "summary.json").read_text())
    assert f"{summary['n_valid_layers']} of 3 layers" in report
    assert "0.00e+00" not in report


def test_rerun_is_a_no_op_and_execution_settings_rerun_nothing(tiny_run, tmp_path):
    """Execution settings are resources, never params (config/README.md): with all of them changed, a dry run
    of the finished run has nothing to do."""
    run = copy_run(tiny_run[0], tmp_path / "run")
    config = yaml.safe_load((run / "config.yaml").read_text())
    config.update(batch_size=2, max_batch_tokens=64, prefix_cache="off", device="cpu", device_map="auto")
    result = run_workflow(run, config, "-n")
    assert "Nothing to be done" in result.stdout + result.stderr, result.stdout[-3000:]


def test_behaviour_branch(tiny_run):
    _, out = tiny_run
    workdir = out.parents[1]
    responses = [json.loads(line) for line in (out / "behaviour" / "responses.jsonl").read_text().splitlines()]
    assert len(responses) == 12 and {r["set"] for r in responses} == {"harmful", "harmless"}
    splits = json.loads((workdir / "results" / "splits.json").read_text())
    assert all(r["row"] in splits[r["set"]]["test"]["rows"] for r in responses)  # never a training prompt
    assert all({"id", "row", "text", "response"} <= set(r) for r in responses)
    refusals = pd.read_csv(out / "behaviour" / "refusals.csv")
    assert len(refusals) == 12
    assert {"refused", "refused_text", "refused_score", "refusal_score", "agreement", "evidence"} <= set(refusals)
    assert (refusals["refused"] == refusals["refused_text"] | refusals["refused_score"]).all()
    auroc = pd.read_csv(out / "behaviour" / "auroc_by_layer.csv")
    assert len(auroc) == 12 and set(auroc["scope"]) == {"all prompts", "harmful prompts"}
    assert set(auroc["target"]) == {"response refused", "refusal score > 0"}
    scores = pd.read_csv(out / "activations" / "refusal_scores.csv")
    for (target, scope), part in auroc.groupby(["target", "scope"]):
        members = ["harmful"] if scope == "harmful prompts" else ["harmful", "harmless"]
        if target == "response refused":
            refused = refusals.loc[refusals["set"].isin(members), "refused"]
        else:
            test = [(name, row) for name in members for row in splits[name]["test"]["rows"]]
            refused = scores.set_index(["set", "row"]).loc[test, "refusal_score"] > 0
            assert (part["n"] == len(test)).all()
        assert part["auroc"].isna().all() == (refused.all() or not refused.any())
    levels = pd.read_csv(out / "behaviour" / "projection_by_level.csv")
    assert set(levels["level"]) == {"low", "medium", "high"} and len(levels) == 9  # 3 layers x 3 levels
    assert (out / "behaviour" / "auroc_by_layer.png").read_bytes()[:4] == b"\x89PNG"
    assert "## Behaviour (Experiment 1)" in (out / "report.md").read_text()


def test_interventions_branch(tiny_run):
    _, out = tiny_run
    sweep = pd.read_csv(out / "interventions" / "sweep.csv")
    assert sweep["layer"].tolist() == [0, 2]
    for column in ("refusal_ablation_all", "refusal_ablation_layer", "refusal_random_ablation_all", "refusal_addition",
                   "refusal_random_addition", "kl_ablation_all", "kl_random_ablation_all", "kl_addition"):  # fmt: skip
        assert sweep[column].notna().all(), column
    assert (sweep["kl_ablation_all"] >= 0).all() and (sweep["n_harmful"] == 4).all()
    for column in ("refusal_control_ablation_all", "refusal_control_addition", "change_ablation_all_ci_low",
                   "ablation_all_vs_random_ablation_all", "kl_control_ablation_all"):  # fmt: skip
        assert sweep[column].notna().all(), column
    generations = (out / "interventions" / "generations.jsonl").read_text().splitlines()
    assert len(generations) == 8 + 2 * 7 * 4  # baselines, then 7 conditions x 4 prompts per layer
    assert all("refusal_score" in json.loads(line) for line in generations)
    assert (out / "interventions" / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert "## Interventions (Experiment 2)" in (out / "report.md").read_text()


def test_refusal_scores_are_the_log_odds_of_the_refusal_tokens(tiny_run):
    """Recomputed by hand from the plain model's logits on the whole formatted string, batch 1."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, out = tiny_run
    manifest = json.loads((out / "activations" / "manifest.json").read_text())
    model_dir = manifest["model_id"]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    tokens = manifest["refusal_token_ids"]
    assert tokens and manifest["refusal_tokens"] == [tokenizer.decode([t]) for t in tokens]
    scores = pd.read_csv(out / "activations" / "refusal_scores.csv").set_index(["set", "row"])["refusal_score"]
    for name in ("harmful", "harmless"):
        prompts = [json.loads(line) for line in (out / "prompts" / f"{name}.jsonl").read_text().splitlines()]
        for row in (0, 7):
            ids = tokenizer(prompts[row]["formatted"], add_special_tokens=False, return_tensors="pt")
            with torch.no_grad():
                probabilities = model(**ids).logits[0, -1].double().softmax(-1)
            p = float(probabilities[tokens].sum())
            assert scores[(name, row)] == pytest.approx(np.log(p) - np.log(1 - p), abs=2e-5)


def test_selection_and_its_evaluation(tiny_run):
    workdir, out = tiny_run
    scores = pd.read_csv(out / "selection" / "scores.csv")
    assert len(scores) == 3 and scores["selected"].sum() == 1  # 3 layers x the last position
    # layer 2 is in the last fifth of the 3 layers (>= int(0.8 * 3)): never selectable, so not scored
    assert scores["scored"].tolist() == [True, True, False] and scores["bypass"].isna().tolist() == [False, False, True]
    assert {"layer", "position", "bypass", "induce", "kl", "cosmic_score", "filtered", "why"} <= set(scores)
    selected = json.loads((out / "selection" / "selected_direction.json").read_text())
    chosen = scores[scores["selected"]].iloc[0]
    assert (selected["layer"], selected["position"]) == (chosen["layer"], chosen["position"])
    assert selected["split"] == "validation" and selected["n_validation"] == {"harmful": 2, "harmless": 2}
    direction = load_file(out / "selection" / "selected_direction.safetensors")["direction"]
    differences = load_file(out / "directions.safetensors")["mean_differences"]
    np.testing.assert_allclose(direction, differences[chosen["layer"]], rtol=1e-6)
    evaluation = pd.read_csv(out / "selection" / "evaluation.csv").set_index("condition").drop(EDITED)
    assert evaluation.index.tolist() == list(EVALUATION)
    assert evaluation["refusal_rate_ci_low"].notna().all() and evaluation.loc["ablation_all", "vs_random_score"] == (
        pytest.approx(
            evaluation.loc["ablation_all", "mean_refusal_score"]
            - evaluation.loc["random_ablation_all", "mean_refusal_score"]
        )
    )
    # every condition but the baselines records the next-token KL on harmless prompts, addition included
    assert evaluation["mean_kl"].notna().tolist() == [CONDITIONS[name].records_kl for name in EVALUATION]
    labels = pd.read_csv(out / "selection" / "evaluation_labels.csv")
    splits = json.loads((workdir / "results" / "splits.json").read_text())
    assert all(row in splits[name]["test"]["rows"] for name, row in zip(labels["set"], labels["row"], strict=True))
    assert "## The selected direction" in (out / "report.md").read_text()


def test_the_edited_model_is_checked_evaluated_and_costed(tiny_run):
    """The export branch and the capability branch on the tiny model: the check passed, the edited model is a
    row of the evaluation (its responses are the hook ablation's), and its cross-entropy is the ablation's."""
    _, out = tiny_run
    check = json.loads((out / "edited_check.json").read_text())
    assert check["passed"] and check["identical_continuations"] == 1.0 and check["max_residual_component"] <= 1e-5
    evaluation = pd.read_csv(out / "selection" / "evaluation.csv").set_index("condition")
    assert evaluation.index.tolist() == [*EVALUATION, EDITED]
    for column in ("refusal_rate", "mean_refusal_score", "mean_kl"):
        assert evaluation.loc[EDITED, column] == pytest.approx(evaluation.loc[BYPASS, column], rel=1e-3, abs=1e-6)
    capability = pd.read_csv(out / "capability.csv").set_index(["text", "condition"])
    assert capability.index.get_level_values("condition").unique().tolist() == list(CAPABILITY)
    assert capability.loc[("generic", "baseline"), "n_tokens"] == 80
    for text in ("on_distribution", "generic"):
        difference = capability.loc[(text, EDITED), "cross_entropy"] - capability.loc[(text, BYPASS), "cross_entropy"]
        assert abs(difference) <= 1e-4
    report = (out / "report.md").read_text()
    assert "## The edited model" in report and "## What it costs" in report and "(capability.png)" in report
    assert (out / "capability.png").stat().st_size > 10_000


# The same capability steps of every other direction method, and the comparison that reads them.
METHOD_CAPABILITY = {"measure_method_capability", "measure_method_edited_capability", "summarize_method_capability",
                     "compare_methods", "plot_methods"}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda c: c["capability"].update(n_tokens=40),
         {"measure_capability", "measure_edited_capability", "summarize_capability", "plot_capability", "write_report",
          "all", *METHOD_CAPABILITY}),
        (lambda c: c["capability"]["texts"].update(source=c["datasets"]["harmless"]["source"]),
         {"download_capability_texts", "measure_capability", "measure_edited_capability", "summarize_capability",
          "plot_capability", "write_report", "all", *METHOD_CAPABILITY}),
    ],
    ids=["n_tokens", "texts"],
)  # fmt: skip
def test_generic_text_settings_rerun_the_capability_jobs_only(tiny_run, tmp_path, change, expected):
    """config/README.md's rows for the generic text, on the tiny run that has one (the shipped default, which
    test_reruns.py uses, has none); with its direction methods, their capability steps and the comparison too."""
    workdir, _ = tiny_run
    run = copy_run(workdir, tmp_path / "run")
    config = yaml.safe_load((run / "config.yaml").read_text())
    change(config)
    assert {job["rule"] for job in planned_jobs(run_workflow(run, config, "-n"))} == expected


def test_the_llm_judge_judges_every_response_file_and_the_judges_agreement_is_reported(tiny_run):
    _, out = tiny_run
    label_tables = {"behaviour": out / "behaviour" / "refusals.csv", "interventions": out / "interventions" /
                    "labels.csv", "evaluation": out / "selection" / "evaluation_labels.csv"}  # fmt: skip
    judged = {source: pd.read_csv(out / "judgements" / source / "llm.csv") for source in JUDGED}
    for source, path in label_tables.items():
        labels = pd.read_csv(path)
        assert {"refused_substring", "refused_score", "refused_llm", "llm_log_odds"} <= set(labels)
        verdicts = pd.concat([judged[s] for s in JUDGED if s == source or (source, s) == ("evaluation", "edited")])
        assert labels["refused_llm"].tolist() == verdicts["refused"].tolist()
        assert (labels["refused"] == labels["refused_text"] | labels["refused_score"]).all()  # primary: text_or_score
    agreement = pd.read_csv(out / "judges" / "agreement.csv")
    assert set(agreement["scope"]) == {*label_tables, "all"} and len(agreement) == 3 * 4
    pooled = agreement[agreement["scope"] == "all"]
    counts = pooled[["both_refused", "only_a_refused", "only_b_refused", "neither_refused"]].sum(axis=1)
    assert (counts == sum(len(pd.read_csv(path)) for path in label_tables.values())).all()
    rates = pd.read_csv(out / "judges" / "rates.csv")
    assert set(rates["judge"]) == {"substring", "refusal_score", "llm", "text_or_score"}
    assert (rates.loc[rates["primary"], "judge"] == "text_or_score").all()
    judging = (out / "report.md").read_text().split("## Judging refusal")[1].split("\n## ")[0]
    assert "use the **text_or_score** judge" in judging and "a demonstration of the machinery, not evidence" in judging
    assert "| substring | refusal_score |" in judging


@pytest.mark.slow
@pytest.mark.parametrize(
    "change, judged_again",
    [
        (lambda c: c["refusal"].update(primary="llm"), False),
        (lambda c: c.update(n_bootstrap=200), False),
        (lambda c: c["refusal"].update(substrings=["I cannot"]), False),
        (lambda c: c["refusal"]["llm"].update(format="conversation"), True),
    ],
    ids=["primary", "n_bootstrap", "substrings", "llm-format"],
)  # fmt: skip
def test_a_response_is_judged_again_only_when_a_judge_setting_changes(tiny_run, tmp_path, change, judged_again):
    """A statistics, threshold or primary-judge change relabels and retabulates, and the llm judge's jobs stay
    done; a change to the llm judge reruns them all (config/README.md's rows for refusal)."""
    workdir, _ = tiny_run
    run = copy_run(workdir, tmp_path / "run")
    config = yaml.safe_load((run / "config.yaml").read_text())
    change(config)
    planned = [job["rule"] for job in planned_jobs(run_workflow(run, config, "-n"))]
    assert planned.count("judge_responses") == (len(JUDGED) if judged_again else 0)
    assert "judge_agreement" in planned and not {"generate_responses", "run_interventions"} & set(planned)


def test_the_direction_methods_side_by_side(tiny_run):
    """comparison.csv (one row per configured method, read from each method's own files), the figure and the
    report section; the projected direction is orthogonal to the harmless mean; the cone's basis orthonormal."""
    from refusal_directions.stats.method_direction import load_method_direction

    _, out = tiny_run
    table = pd.read_csv(out / "methods" / "comparison.csv")
    assert list(table["method"]) == ["mean_diff", "projected", "cone"] and list(table["k"]) == [1, 1, 2]
    assert table["edited_check_passed"].all() and (table["seconds"] > 0).all()
    mean_diff = table.iloc[0]
    assert mean_diff["cosine_with_mean_diff"] == pytest.approx(1, abs=1e-6)
    assert mean_diff[["vs_mean_diff_bypass", "vs_mean_diff_induce", "vs_mean_diff_cross_entropy"]].eq(0).all()
    selected = json.loads((out / "selection" / "selected_direction.json").read_text())
    assert (mean_diff["layer"], mean_diff["position"]) == (selected["layer"], selected["position"])
    for row in table.iloc[1:].itertuples():
        folder = out / "methods" / row.method
        evaluation = pd.read_csv(folder / "evaluation.csv").set_index("condition")
        assert row.bypass_rate == pytest.approx(evaluation.loc[BYPASS, "refusal_rate"])
        assert row.kl == pytest.approx(evaluation.loc[BYPASS, "mean_kl"])
        labels, reference = (pd.read_csv(path) for path in (folder / "evaluation_labels.csv",
                                                             out / "selection" / "evaluation_labels.csv"))  # fmt: skip
        mine, theirs = (part[part["condition"] == BYPASS].set_index("row")["refused"] for part in (labels, reference))
        assert row.vs_mean_diff_bypass == pytest.approx((mine.astype(float) - theirs.loc[mine.index]).mean())
        assert json.loads((folder / "edited_check.json").read_text())["direction"]["method"] == row.method
        losses = (pd.read_csv(base / "capability" / "losses.csv") for base in (folder, out))
        ablated = [part[(part["condition"] == BYPASS) & (part["text"] == "on_distribution")] for part in losses]
        mine, theirs = (part["loss_sum"].sum() / part["n_tokens"].sum() for part in ablated)
        assert row.vs_mean_diff_cross_entropy == pytest.approx(mine - theirs)
    projected = load_method_direction(out / "methods" / "projected" / "direction.safetensors")
    candidates = load_file(out / "methods" / "projected" / "candidates.safetensors")
    harmless = candidates["harmless_means"][len(candidates["candidates"]) + projected.position, projected.layer]
    assert abs(projected.basis[0] @ harmless) / np.linalg.norm(harmless) < 1e-5
    cone = load_method_direction(out / "methods" / "cone" / "direction.safetensors")
    np.testing.assert_allclose(cone.basis @ cone.basis.T, np.eye(2), atol=1e-6)
    history = pd.read_csv(out / "methods" / "cone" / "optimization.csv")
    assert history["step"].max() <= 4 and history["validation"].sum() >= 1
    assert (out / "methods" / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    report = (out / "report.md").read_text()
    assert "## Direction methods" in report and "![Direction methods](methods/comparison.png)" in report
    assert "**projected**" in report and "**cone**" in report


def test_adding_a_method_reruns_only_its_jobs_the_comparison_and_the_report(tiny_run, tmp_path):
    """config/README.md's row for directions.methods; the order of the list is not data."""
    run = copy_run(tiny_run[0], tmp_path / "run")
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["directions"]["methods"] = list(reversed(config["directions"]["methods"]))
    result = run_workflow(run, config, "-n")
    assert "Nothing to be done" in result.stdout + result.stderr, result.stdout[-3000:]
    config["directions"]["methods"].append("rdo")
    jobs = planned_jobs(run_workflow(run, config, "-n"))
    assert {job["wildcards"].get("method") for job in jobs if "method" in job["wildcards"]} == {"rdo"}
    assert {job["rule"] for job in jobs} == {
        "optimize_direction", "evaluate_method", "judge_method_responses", "summarize_method_evaluation",
        "orthogonalize_method", "check_method_edit", "measure_method_capability", "measure_method_edited_capability",
        "summarize_method_capability", "compare_methods", "plot_methods", "write_report", "all",
    }  # fmt: skip
    config["directions"]["methods"].remove("rdo")
    config["directions"]["cone"]["k"] = 3
    jobs = planned_jobs(run_workflow(run, config, "-n"))
    assert {job["wildcards"].get("method") for job in jobs if "method" in job["wildcards"]} == {"cone"}
    assert "optimize_direction" in {job["rule"] for job in jobs}


def test_every_safetensors_output_has_the_mode_of_a_new_file(tiny_run):
    """safetensors writes 0600 whatever the umask: the directions, candidates, null distributions, the converted
    and the edited models' weights are given the mode every other output has, readable by the group."""
    from refusal_directions.workflow.permissions import umask

    workdir, _ = tiny_run
    written = [path for path in (workdir / "results").rglob("*.safetensors") if "resume" not in path.parts]
    assert len(written) > 10 and any("edited" in path.parts for path in written)
    assert {oct(path.stat().st_mode & 0o777) for path in written} == {oct(0o666 & ~umask())}
