"""The per-model report rendered from result tables written here (in the registry's condition names): what it
states, and that a missing value never shows as "nan"."""

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from refusal_directions.behaviour.analysis import RESPONSES, SCORES, refusal_rates
from refusal_directions.interventions.conditions import BASELINES, CONDITIONS, EVALUATION, SWEEP, control_kind, label
from refusal_directions.judging.agreement import agreement_table, disagreement_table, rate_table
from refusal_directions.report.render import write_report

LEVEL = 0.95
N_LAYERS = 3
SELECTED_LAYER = 1


def _interval(prefix: str, value: float, half: float = 0.1) -> dict:
    return {prefix: value, f"{prefix}_ci_low": value - half, f"{prefix}_ci_high": value + half}


def _summary() -> dict:
    strongest = {"layer": 2, "relative_depth": 2 / N_LAYERS}
    return {
        "model": {"id": "org/tiny", "weights_revision": "abc"},
        "dtype": "float32",
        "n_layers": N_LAYERS,
        "n_harmful": 10,
        "n_harmless": 10,
        "n_sampled": {"harmful": 20, "harmless": 20},
        "splits": {"train": 10, "validation": 2, "test": 8, "seed": 42},
        "layer_convention": "block outputs",
        "n_valid_layers": 1,
        "valid_seed_rule_layers": [2],
        "strongest_layer": {**strongest, "cohens_d": 1.5},
        "strongest_heldout_layer": {**strongest, "cohens_d_heldout": 1.2},
        "thresholds": {"alpha": 0.01, "d_min": 0.5},
        "statistics": {"n_folds": 5, "n_permutations": 100, "n_bootstrap": 100, "ci_level": LEVEL},
        "smallest_attainable_p_holm": 0.03,
        "n_control": {},
    }


def _validation() -> pd.DataFrame:
    """Layer 0 with undefined statistics (zero variance), and no control contrast: its columns are empty."""
    rows = []
    for layer in range(N_LAYERS):
        d = math.nan if layer == 0 else 0.5 * layer
        rows.append(
            {
                "layer": layer,
                "magnitude": 0.0 if layer == 0 else float(layer),
                "cohens_d": d,
                "cohens_d_heldout": d,
                "d_heldout_ci_low": d - 0.2,
                "d_heldout_ci_high": d + 0.2,
                "d_inflation": 0.0 if layer else math.nan,
                "t_stat": 10 * d,
                "log10_p": -5.0 * layer if layer else math.nan,
                "p_perm": 0.01 if layer else math.nan,
                "p_holm": 0.03 if layer else math.nan,
                "valid": layer == 2,
                "valid_seed_rule": layer == 2,
                "control_d": math.nan,
                "control_d_heldout": math.nan,
                "d_heldout_minus_control": math.nan,
                "reason": "zero variance" if layer == 0 else "",
            }
        )
    return pd.DataFrame(rows)


def _refusals() -> pd.DataFrame:
    """Six harmful and six harmless responses; two refused by the refusal score only, so the text judge left
    their evidence empty."""
    agreement = ["both"] * 3 + ["score only"] * 2 + ["neither"] * 7
    return pd.DataFrame(
        {
            "set": ["harmful"] * 6 + ["harmless"] * 6,
            "id": [f"p{i}" for i in range(12)],
            "refused": [kind != "neither" for kind in agreement],
            "refused_text": [kind == "both" for kind in agreement],
            "refused_score": [kind in ("both", "score only") for kind in agreement],
            "refusal_score": [1.0] * 5 + [-1.0] * 7,
            "agreement": agreement,
            "evidence": ["I cannot"] * 3 + [""] * 9,
            "primary": "text_or_score",
            "text": [f"prompt {i}" for i in range(12)],
            "response": ["I cannot"] * 3 + ["Sure | fine"] * 2 + ["Sure"] * 7,
            "refused_substring": [kind == "both" for kind in agreement],
            "refused_llm": [kind != "neither" for kind in agreement[:-1]] + [True],
            "refused_text_or_score": [kind != "neither" for kind in agreement],
        }
    )


def _auroc() -> pd.DataFrame:
    """All prompts: one interval above chance, one below; harmful prompts: AUROCs with intervals, flagged (too
    few compliances), and missing correlations."""
    common = {"r": 0.5, "r_ci_low": 0.1, "r_ci_high": 0.8, "n": 12, "n_refused": 5}
    intervals = [(0.9, 0.7, 0.99), (0.2, 0.05, 0.4), (0.5, 0.3, 0.7)]
    rows = []
    for target in (RESPONSES, SCORES):
        for layer, (value, low, high) in enumerate(intervals):
            at_layer = {**common, "target": target, "layer": layer, "auroc_ci_low": low, "auroc_ci_high": high}
            rows.append({**at_layer, "scope": "all prompts", "auroc": value, "reason": ""})
            flagged = {"auroc": 0.8, "r": math.nan, "r_ci_low": math.nan, "reason": "only 1 compliance: too few"}
            rows.append({**at_layer, "scope": "harmful prompts", **flagged})
    return pd.DataFrame(rows)


def _sweep() -> pd.DataFrame:
    """Two layers; the control contrast's conditions ran, and one KL is missing."""
    rows = []
    for layer in (0, 2):
        row = {"layer": layer, "n_harmful": 12, "n_harmless": 12}
        row.update(_interval("refusal_baseline_harmful", 0.75))
        row.update(_interval("refusal_baseline_harmless", 0.0, 0.0))
        for name in (n for n in SWEEP if n not in BASELINES):
            row.update(_interval(f"refusal_{name}", 0.25))
            row.update(_interval(f"change_{name}", -0.5 + 0.1 * layer))
            row.update(_interval(f"score_change_{name}", -1.0))
            row[f"kl_{name}"] = math.nan if layer == 2 else 0.1
        for intervention in ("ablation_all", "addition"):
            for control in CONDITIONS[intervention].controls:
                row.update(_interval(f"{intervention}_vs_{control}", -0.4))
        rows.append(row)
    return pd.DataFrame(rows)


def _evaluation() -> pd.DataFrame:
    """The baselines have no layer, change or KL; the control conditions are missing their comparison."""
    rows = []
    for name in EVALUATION:
        condition = CONDITIONS[name]
        row = {"condition": name, "set": condition.prompt_set, "layer": None, "n": 8, "mean_kl": math.nan}
        for suffix in ("", "_text", "_score"):
            row.update(_interval(f"refusal_rate{suffix}", 0.75 if name == "baseline_harmful" else 0.25))
        row.update(_interval("mean_refusal_score", -2.0))
        if condition.intervenes:
            row.update({"layer": SELECTED_LAYER, "mean_kl": 0.05})
            row.update(_interval("change_rate", -0.5 if name == "ablation_all" else 0.25))
            row.update(_interval("change_score", -1.5 if name == "ablation_all" else 1.25))
        for control in condition.controls:
            kind = control_kind(control)
            row.update(_interval(f"vs_{kind}_rate", -0.25))
            row.update(_interval(f"vs_{kind}_score", math.nan if kind == "control" else -1.0))
        rows.append(row)
    return pd.DataFrame(rows)


def _selected() -> dict:
    return {
        "layer": SELECTED_LAYER,
        "position": -1,
        "token": "(last token)",
        "relative_depth": SELECTED_LAYER / N_LAYERS,
        "method": "refusal_score",
        "criterion": "lowest bypass",
        "passed_filters": True,
        "filters": ["KL > 0.1"],
        "bypass": -3.0,
        "induce": 1.0,
        "kl": 0.05,
        "baseline_harmful_score": 1.0,
        "baseline_harmless_score": -2.0,
        "n_candidates": 3,
        "n_not_scored": 1,
        "prefilter": None,
        "n_passed": 1,
        "n_validation": {"harmful": 2, "harmless": 2},
    }


JUDGES = {"judges": ["substring", "refusal_score", "llm"], "primary": "text_or_score", "llm_model": "tiny-judge",
          "llm_n_params": 135_000_000}  # fmt: skip


def write_results(folder, **tables) -> dict[str, str]:
    """Every table the report reads, written under ``folder``; ``tables`` replaces one by its input name."""
    refusals = tables.get("refusals", _refusals())
    frames = {
        "validation": _validation(),
        "refusals": refusals,
        "refusal_rates": refusal_rates(refusals, LEVEL),
        "auroc": _auroc(),
        "levels": pd.DataFrame(columns=["layer", "set", "level", "n", "mean_projection", "sd_projection"]),
        "sweep": _sweep(),
        "evaluation": _evaluation(),
        "evaluation_labels": refusals.assign(condition=["baseline_harmful"] * 6 + ["addition"] * 6),
        **tables,
    }
    frames["top10"] = frames["validation"]
    labels = pd.concat([frames["refusals"].assign(source="behaviour"),
                        frames["evaluation_labels"].assign(source="evaluation")], ignore_index=True)  # fmt: skip
    labels = labels.assign(condition=labels.get("condition"), layer=None)
    intervals = {"n_bootstrap": 50, "ci_level": LEVEL, "seed": 0}
    frames.update(
        agreement=agreement_table(labels, JUDGES["judges"], intervals),
        judge_rates=rate_table(labels, JUDGES["judges"], JUDGES["primary"], LEVEL),
        disagreements=disagreement_table(labels, JUDGES["judges"]),
    )
    inputs = {}
    for name, frame in frames.items():
        inputs[name] = str(folder / f"{name}.csv")
        frame.to_csv(inputs[name], index=False)
    for name, value in (("summary", _summary()), ("selected", _selected())):
        inputs[name] = str(folder / f"{name}.json")
        (folder / f"{name}.json").write_text(json.dumps(value))
    return inputs


def render(folder, **tables) -> str:
    inputs = write_results(folder, **tables)
    datasets = {"harmful": {"source": "harmful.txt"}, "harmless": {"source": "harmless.txt"}}
    write_report(inputs, {"report": str(folder / "report.md")}, datasets, 42, "Tiny", JUDGES)
    return (folder / "report.md").read_text()


def test_the_judges_section_names_the_primary_judge_and_the_judge_model(tmp_path):
    judging = section(render(tmp_path), "Judging refusal")
    assert "use the **text_or_score** judge" in judging
    assert "`tiny-judge` (135M parameters)" in judging and "demonstration of the machinery, not evidence" in judging
    assert "| substring | refusal_score | 24 | 6 | 0 | 4 | 14 |" in judging
    assert "- behaviour: 3" in judging
    assert "| behaviour | prompt 3 | Sure \\| fine | complied | refused | refused |" in judging


def section(report: str, heading: str) -> str:
    return report.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]


def test_no_missing_value_shows_as_nan(tmp_path):
    """Undefined layer statistics, no control contrast, an empty evidence column, missing KL and
    comparisons: each is written as n/a or left out."""
    report = render(tmp_path)
    assert not re.search(r"\bnan\b", report, flags=re.IGNORECASE)
    assert "- score only: `p3`, score 1.00, no text evidence" in report
    assert "- Layer 0: zero variance." in report
    assert "| 0.1 | 0.1 |" in report and "| n/a | n/a |" in report  # the sweep's KL, present and missing


def test_summary_states_what_ablating_and_adding_the_selected_direction_did(tmp_path):
    summary = section(render(tmp_path), "Summary")
    assert "the selected one (layer 1, position -1)" in summary
    assert (
        f"{label('ablation_all').capitalize()}: the refusal rate of harmful test prompts changes by "
        "-50 pp [-60 pp, -40 pp] and their mean refusal score by -1.50 [-1.60, -1.40]."
    ) in summary
    assert (
        f"{label('addition').capitalize()}: the refusal rate of harmless test prompts changes by "
        "+25 pp [+15 pp, +35 pp] and their mean refusal score by +1.25 [+1.15, +1.35]."
    ) in summary


@pytest.mark.parametrize("n_permutations", [100, 10000])
def test_the_summary_says_when_the_permutation_count_leaves_no_layer_a_chance(tmp_path, n_permutations):
    inputs = write_results(tmp_path)
    summary = json.loads(Path(inputs["summary"]).read_text())
    summary["statistics"]["n_permutations"] = n_permutations
    summary["smallest_attainable_p_holm"] = min(1.0, N_LAYERS / (n_permutations + 1))
    Path(inputs["summary"]).write_text(json.dumps(summary))
    datasets = {"harmful": {"source": "harmful.txt"}, "harmless": {"source": "harmless.txt"}}
    write_report(inputs, {"report": str(tmp_path / "report.md")}, datasets, 42, "Tiny", JUDGES)
    text = section((tmp_path / "report.md").read_text(), "Summary")
    warning = "**No layer can be valid with these settings:** 100 permutations over"
    assert (warning in text) == (n_permutations == 100)
    if n_permutations == 100:
        assert f"raise n_permutations above {int(N_LAYERS / 0.01)}" in text


def test_conditions_are_named_by_their_registry_labels(tmp_path):
    selected = section(render(tmp_path), "The selected direction")
    rows = [line for line in selected.splitlines() if line.startswith("| ") and not line.startswith("| Condition")]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == [label(name) for name in EVALUATION]
    assert f"- **{label('ablation_all').capitalize()}** moves the mean refusal score by -1.50" in selected
    # the control comparisons come from the registry; the one without a value is left out
    assert f"beyond that of {label('random_ablation_all')}: -1.00 [-1.10, -0.90]." in selected
    assert label("control_ablation_all") not in selected.split("moves the mean refusal score")[1].split("\n")[0]


def test_the_behaviour_section_states_no_interval_for_a_scope_with_too_few_refusals(tmp_path):
    """A flagged scope gets no AUROC or interval statement; an unflagged one counts the layers whose interval
    lies above chance and those below it. The refusal rates are the table's."""
    lines = section(render(tmp_path), "Behaviour").splitlines()
    flagged = next(line for line in lines if line.startswith("- **harmful prompts"))
    assert "too few" in flagged and "no statement" in flagged
    assert "CI" not in flagged and "chance" not in flagged and "0.8" not in flagged
    unflagged = next(line for line in lines if line.startswith("- **all prompts"))
    assert "highest AUROC 0.90 at layer 0" in unflagged
    assert "above chance in 1/3 layers and below it in 1/3" in unflagged
    assert "fitted for (on the train split)" in unflagged
    assert "- harmful: 5/6 = 83% (95% CI 44%-97%) (text: 3, refusal score: 5)" in lines


@pytest.mark.parametrize("n_layers", [1, 2])
def test_an_intervention_layer_picked_for_its_change_carries_the_caveat(tmp_path, n_layers):
    sweep = _sweep().head(n_layers)
    report = section(render(tmp_path, sweep=sweep), "Interventions")
    assert ("not adjusted for that choice" in report) == (n_layers > 1)
    expected = sweep.loc[sweep["change_ablation_all"].idxmin(), "layer"]
    assert f"Ablating layer {expected}'s direction everywhere changes the harmful refusal rate by" in report


def test_an_evaluation_on_a_configured_harmful_dataset_names_it(tmp_path):
    """selection.evaluation.harmful_dataset: the table's caption and the summary name the set, not the split."""
    inputs = write_results(tmp_path)
    datasets = {"harmful": {"source": "harmful.txt"}, "harmless": {"source": "harmless.txt"}}
    write_report(inputs, {"report": str(tmp_path / "report.md")}, datasets, 42, "Tiny", JUDGES, "jailbreakbench")
    report = (tmp_path / "report.md").read_text()
    selected = section(report, "The selected direction")
    assert "Evaluated on 8 harmful prompts of the dataset `jailbreakbench`" in selected
    assert "neither built nor selected the direction" in selected and "Evaluated on the test split" not in selected
    assert "the refusal rate of the harmful prompts of `jailbreakbench` changes by" in section(report, "Summary")


def test_without_the_behaviour_experiment_the_summary_says_what_evidence_there_is(tmp_path):
    """behaviour.enabled false (no behaviour tables): the selected direction's effects, and what did not run."""
    inputs = {key: value for key, value in write_results(tmp_path).items()
              if key not in ("refusals", "refusal_rates", "auroc", "levels", "sweep")}  # fmt: skip
    datasets = {"harmful": {"source": "harmful.txt"}, "harmless": {"source": "harmless.txt"}}
    write_report(inputs, {"report": str(tmp_path / "report.md")}, datasets, 42, "Tiny", JUDGES)
    summary = section((tmp_path / "report.md").read_text(), "Summary")
    assert (
        "Behavioural evidence: the selected direction (layer 1, position -1) changes the refusal rate of harmful "
        "test prompts by -50 pp [-60 pp, -40 pp] under" in summary
    )
    assert "and the refusal rate of harmless test prompts by +25 pp" in summary
    assert "Not run: the behaviour experiment" in summary and "the intervention sweep over layers" in summary
    assert "is layer 1's." not in summary
