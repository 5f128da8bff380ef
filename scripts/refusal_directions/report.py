"""The per-model Markdown report; every number in it comes from the result tables."""

from __future__ import annotations

import math
from itertools import pairwise
from pathlib import Path

import pandas as pd

from .jsonio import read_json
from .report_experiments import (
    behaviour_section,
    behavioural_evidence,
    interventions_section,
    number_text,
    selection_section,
)


def format_p(log10_p: float) -> str:
    """A p-value in scientific notation from its log10, exact where the double would underflow."""
    if log10_p is None or not math.isfinite(log10_p):
        return "n/a"
    exponent = math.floor(log10_p)
    mantissa = 10 ** (log10_p - exponent)
    if mantissa >= 9.995:
        mantissa, exponent = 1.0, exponent + 1
    return f"{mantissa:.2f}e{exponent:+03d}"


def _range(values: pd.Series) -> str:
    return f"{number_text(values.min())} to {number_text(values.max())}"


def bands(n_layers: int) -> list[tuple[str, range]]:
    """Early, middle and late thirds of the depth."""
    cuts = [0, round(n_layers / 3), round(2 * n_layers / 3), n_layers]
    names = ("Early", "Middle", "Late")
    return [(name, range(cuts[i], cuts[i + 1])) for i, name in enumerate(names) if cuts[i] < cuts[i + 1]]


def _has_control(table: pd.DataFrame) -> bool:
    return bool(table["control_d"].notna().any())


def _clearly_beats_control(table: pd.DataFrame) -> pd.Series:
    """Layers whose held-out effect exceeds the control's beyond sampling error: the control's held-out d
    lies below the lower end of the main held-out d's bootstrap interval."""
    return table["control_d_heldout"] < table["d_heldout_ci_low"]


def _band_lines(table: pd.DataFrame, n_layers: int) -> list[str]:
    lines = []
    for name, layers in bands(n_layers):
        part = table[table["layer"].isin(layers)]
        line = (
            f"- **{name} layers ({layers.start}-{layers.stop - 1}):** in-sample d {_range(part['cohens_d'])}, "
            f"held-out d {_range(part['cohens_d_heldout'])} "
            f"(in-sample inflation {number_text(part['d_inflation'].mean())} "
            f"on average); {int(part['valid_seed_rule'].sum())}/{len(part)} pass the seed rule, "
            f"{int(part['valid'].sum())}/{len(part)} survive the held-out and permutation tests."
        )
        if _has_control(table):
            beats = int(_clearly_beats_control(part).sum())
            line += (
                f" The control contrast reaches held-out d {_range(part['control_d_heldout'])}; the harmful/harmless "
                f"effect exceeds it beyond its interval in {beats}/{len(part)} layers (difference "
                f"{_range(part['d_heldout_minus_control'])})."
            )
        lines.append(line)
    return lines


def _trend_sentence(table: pd.DataFrame) -> str:
    finite = [value for value in table["cohens_d_heldout"] if math.isfinite(value)]
    if len(finite) < 3:
        return "Too few layers with a defined effect size to describe a trend."
    peak = int(table.loc[table["cohens_d_heldout"].abs().idxmax(), "layer"])
    rising = sum(b > a for a, b in pairwise(finite))
    return (
        f"Held-out d rises from one layer to the next in {rising} of {len(finite) - 1} steps and peaks at layer "
        f"{peak} ({peak / len(table):.0%} of the depth); the magnitude of the difference in means grows from "
        f"{number_text(table['magnitude'].iloc[0])} at layer 0 "
        f"to {number_text(table['magnitude'].iloc[-1])} at the last layer."
    )


def _what_it_separates(table: pd.DataFrame, valid: int, evidence: str) -> str:
    text = (
        "The direction separates harmful from harmless requests in the residual stream: a statement about what the "
        "model represents (the topic or harmfulness of the request), not about what it does. Only behavioural and "
        f"causal evidence can make it a refusal direction. {evidence}"
    )
    if not _has_control(table) or valid == 0:
        return text
    survivors = table[table["valid"]]
    beats = survivors[_clearly_beats_control(survivors)]["layer"].astype(int).tolist()
    where = f" (layers {_layer_list(beats)})" if beats else ""
    return text + (
        f" Of the {valid} valid layers, {len(beats)}{where} separate harmful from harmless more strongly than the "
        "control contrast (the same harmless requests as imperatives vs questions) separates mere wording, beyond the "
        "bootstrap interval; in the others it is not clearly larger than the effect of a mere change of wording."
    )


def _layer_list(layers: list[int]) -> str:
    """Compact runs: [1, 2, 3, 7] -> '1-3, 7'."""
    runs, start = [], None
    for previous, current in pairwise([None, *layers, None]):
        if start is None:
            start = current
        elif current != previous + 1:
            runs.append(f"{start}-{previous}" if previous != start else str(start))
            start = current
    return ", ".join(runs)


def top_table_markdown(top: pd.DataFrame, ci_level: float) -> list[str]:
    lines = [
        f"| Layer | Magnitude | d (in-sample) | d (held-out) | {ci_level:.0%} CI (held-out) | p (perm.) | p (Holm) "
        "| d (control, held-out) | t | p (Student) | Valid | Seed rule |",
        "|---:|---:|---:|---:|:---:|---:|---:|---:|---:|---:|:---:|:---:|",
    ]
    for _, row in top.iterrows():
        lines.append(
            f"| {int(row['layer'])} | {number_text(row['magnitude'])} | {number_text(row['cohens_d'])} "
            f"| {number_text(row['cohens_d_heldout'])} "
            f"| {number_text(row['d_heldout_ci_low'])} to {number_text(row['d_heldout_ci_high'])} "
            f"| {row['p_perm']:.2g} | {row['p_holm']:.2g} | {number_text(row['control_d_heldout'])} "
            f"| {number_text(row['t_stat'], 1)} | {format_p(row['log10_p'])} | {'yes' if row['valid'] else 'no'} "
            f"| {'yes' if row['valid_seed_rule'] else 'no'} |"
        )
    return lines


def _strongest_phrase(strongest: dict | None, n_layers: int, column: str) -> str:
    if not strongest:
        return "undefined (no layer has a defined effect size)"
    return (
        f"layer {strongest['layer']} of {n_layers} (relative depth {strongest['relative_depth']:.2f}), "
        f"d = {strongest[column]:.2f}"
    )


def _profiles(summary: dict, sweep: pd.DataFrame | None, selected: dict | None) -> str:
    """Where the direction separates the classes against where it acts: the largest d is often near the last
    layer, where a direction no longer changes what the model does."""
    strongest = summary["strongest_heldout_layer"]
    if not strongest or (sweep is None and selected is None):
        return ""
    text = (f"Where it separates and where it acts are different questions: the held-out separation peaks at layer "
            f"{strongest['layer']} (relative depth {strongest['relative_depth']:.2f}).")  # fmt: skip
    if sweep is not None:
        strongest_effect = sweep.loc[sweep["score_change_ablation_all"].idxmin()]
        layer, change = int(strongest_effect["layer"]), strongest_effect["score_change_ablation_all"]
        text += (f" Among the swept layers, ablating layer {layer}'s direction moves the harmful prompts' refusal "
                 f"score the most ({change:+.2f}).")  # fmt: skip
    if selected is not None and selected["passed_filters"]:
        text += (f" The answer to \"which direction\" is the selected one (layer {selected['layer']}, position "
                 f"{selected['position']}): chosen on held-out prompts by what its ablation and addition do, not by "
                 "how well it separates.")  # fmt: skip
    elif selected is not None:
        text += (" No candidate met the selection's criteria, so this run names no refusal direction; the best "
                 f"candidate (layer {selected['layer']}, position {selected['position']}) is evaluated below as a "
                 "candidate only.")  # fmt: skip
    return text


def render(summary: dict, table: pd.DataFrame, top: pd.DataFrame, datasets: dict, sampling_seed: int,
           experiments: dict, title: str) -> str:  # fmt: skip
    """The report; ``experiments`` holds the behaviour tables (refusals, auroc, levels), the intervention
    sweep (sweep) and the selection (selected, evaluation, evaluation_labels) when those
    branches ran; ``title`` is the model's display name."""
    model = summary["model"]
    n_layers = summary["n_layers"]
    alpha, d_min = summary["thresholds"]["alpha"], summary["thresholds"]["d_min"]
    sources = {name: spec["source"] for name, spec in datasets.items()}
    control = summary.get("control")
    settings = summary["statistics"]
    n_valid, n_seed = summary["n_valid_layers"], len(summary["valid_seed_rule_layers"])
    heldout_phrase = _strongest_phrase(summary["strongest_heldout_layer"], n_layers, "cohens_d_heldout")
    in_sample_phrase = _strongest_phrase(summary["strongest_layer"], n_layers, "cohens_d")
    splits = summary["splits"]
    selected = experiments.get("selected")
    lines = [
        f"# Difference-in-means directions in {title}",
        "",
        f"Model `{model['id']}` (weights `{model['weights_revision']}`, computed in {summary['dtype']}), "
        f"{n_layers} layers. Each class's sampled prompts are split (seed {splits['seed']}) into train "
        f"({splits['train']}: the directions and every per-layer statistic below), validation "
        f"({splits['validation']}: the choice of one direction) and test ({splits['test']}: its evaluation and the "
        "behaviour statistics).",
        "",
        "## Summary",
        "",
        f"{n_valid} of {n_layers} layers are valid: their direction, fitted on some prompts, separates held-out "
        f"prompts with d > {d_min:g}, and their effect beats a permutation null after Holm's correction across layers "
        f"(p < {alpha:g}). The seed experiment's in-sample rule (p < {alpha:g} and |d| > {d_min:g} on the prompts that "
        f"built the direction) passes {n_seed} of {n_layers}. Strongest held-out effect: {heldout_phrase}; strongest "
        f"in-sample effect: {in_sample_phrase}.",
        "",
        _what_it_separates(
            table, n_valid, behavioural_evidence(experiments.get("auroc"), experiments.get("sweep"), selected)
        ),
        "",
        _profiles(summary, experiments.get("sweep"), selected),
        "",
        "## Method",
        "",
        f"- **Harmful prompts:** {summary['n_sampled']['harmful']} sampled (seed {sampling_seed}) from "
        f"`{sources['harmful']}`; {summary['n_harmful']} in the train split.",
        f"- **Harmless prompts:** {summary['n_sampled']['harmless']} sampled (seed {sampling_seed}) from "
        f"`{sources['harmless']}`; {summary['n_harmless']} in the train split.",
        "- Each prompt is one user turn formatted with the model's chat template; the exact strings are in "
        "`prompts/*.jsonl`.",
        f"- **Layer convention:** {summary['layer_convention']}.",
        "- **Direction and in-sample statistics:** d_l = mean(harmful) - mean(harmless); every prompt is projected on "
        "d_l / ||d_l||; Student's and Welch's t-tests and Cohen's d (pooled SD) of the two sets of projections.",
        f"- **Held-out effect:** {settings['n_folds']}-fold cross-fitting: each fold is scored on the direction fitted "
        "to the other folds (relative to the midpoint of their two means); Cohen's d, t and p of these out-of-fold "
        "scores. `d_inflation` = in-sample d - held-out d.",
        f"- **Permutation null:** {settings['n_permutations']} random relabellings of the prompts, refitting the "
        "direction each time; p = (1 + #null d >= observed d) / (K + 1), then Holm's step-down correction across "
        f"layers. The smallest attainable Holm-adjusted p here is {summary['smallest_attainable_p_holm']:.2g}.",
        f"- **Bootstrap:** {settings['n_bootstrap']} resamples of the prompts within each group, refitting the "
        f"direction: {settings['ci_level']:.0%} percentile intervals of the in-sample d and of the out-of-bag "
        "(held-out) d, and the mean cosine between the resampled directions (`direction_stability`).",
    ]
    if control:
        lines.append(
            f"- **Control contrast:** `{control['a']}` vs `{control['b']}` ({sources[control['a']]} vs "
            f"{sources[control['b']]}), {summary['n_control'].get('a')} prompts each, through the same extraction and "
            "statistics: requests that differ in form, not in harm. `d_minus_control` = in-sample d - control "
            "in-sample d; `d_heldout_minus_control` likewise for held-out d; `control_cosine` = cosine between the two "
            "directions."
        )
    lines += [
        f"- **Validity:** `valid` = held-out d > {d_min:g} and Holm-adjusted permutation p < {alpha:g}; "
        "`valid_seed_rule` = the seed's in-sample rule, kept for comparison.",
        "",
        "## Results",
        "",
        f"- **Valid layers:** {n_valid}/{n_layers} (seed rule: {n_seed}/{n_layers})",
        f"- **Strongest held-out effect:** {heldout_phrase}",
        f"- **Strongest in-sample effect:** {in_sample_phrase}",
        "",
        "### Top 10 layers by |in-sample Cohen's d|",
        "",
        *top_table_markdown(top, settings["ci_level"]),
        "",
        "Student's p-values come from their exact log10 (`log10_p`), so values below the double range are shown, "
        "not 0.",
        "",
        "## Figure",
        "",
        "![Direction analysis](direction_analysis.png)",
        "",
        "Left: magnitude of the difference in means per layer. Middle: in-sample and held-out Cohen's d with the "
        "held-out d's bootstrap interval, the 99th percentile of the permutation null and the control contrast's "
        "held-out d (crosses: layers that are not valid). Right: magnitude and held-out d on twin axes.",
        "",
        "## Layer patterns",
        "",
        *_band_lines(table, n_layers),
        "",
        _trend_sentence(table),
        "",
    ]
    undefined = table[table["reason"].fillna("") != ""]
    if not undefined.empty:
        lines += [f"- Layer {int(r['layer'])}: {r['reason']}." for _, r in undefined.iterrows()] + [""]
    level = settings["ci_level"]
    if "auroc" in experiments:
        lines += behaviour_section(experiments["refusals"], experiments["auroc"], experiments["levels"], level)
    if "sweep" in experiments:
        lines += interventions_section(experiments["sweep"], level)
    if selected is not None:
        lines += selection_section(selected, experiments["evaluation"], experiments["evaluation_labels"], level)
    lines += [
        "## Limitations",
        "",
        f"- One model, {summary['n_harmful']} + {summary['n_harmless']} prompts; the prompt sets differ in topic as "
        "well as in harm, so the direction may encode topic.",
        "- In-sample statistics are optimistic: with many dimensions and few prompts, even random labels separate "
        "in-sample (see `null_d_mean`); only the held-out and permutation columns support a claim.",
        "- Refusal is judged by the response text (substrings or the configured classifier) and by the refusal score "
        "(the first token's odds of a refusal); either misses some refusals: partial compliance, refusals worded "
        "otherwise, answers that start like a refusal. Both are reported, and their disagreements listed."
        if experiments
        else "- Correlation only: no behavioural or causal test was run.",
        "",
        "## Files",
        "",
        "- `validation_results.csv`: every layer's statistics",
        "- `top10_layers.csv`: the ten layers with the largest |d|",
        "- `summary.json`: run summary, thresholds, package versions, config hash",
        "- `directions.safetensors`: unit directions and raw differences in means, one row per layer",
        "- `validated_directions.pkl`: valid layer -> unit direction (numpy), for readers of the seed's file",
        "- `direction_analysis.png`: the figure above",
        "- `selection/`: candidates (every layer and kept position), their scores, the selected direction "
        "(json + safetensors) and its evaluation",
        "",
    ]
    return "\n".join(lines)


EXPERIMENT_TABLES = ("refusals", "auroc", "levels", "sweep", "evaluation", "evaluation_labels")


def write_report(inputs: dict[str, str], output_md: str, datasets: dict, seed: int, title: str) -> None:
    """report.md from ``inputs``: summary, validation, top10 and, when those branches ran, the behaviour,
    intervention and selection tables."""
    experiments: dict = {name: pd.read_csv(inputs[name]) for name in EXPERIMENT_TABLES if name in inputs}
    if "selected" in inputs:
        experiments["selected"] = read_json(inputs["selected"])
    text = render(
        read_json(inputs["summary"]),
        pd.read_csv(inputs["validation"]),
        pd.read_csv(inputs["top10"]),
        datasets,
        seed,
        experiments,
        title,
    )
    Path(output_md).write_text(text)
