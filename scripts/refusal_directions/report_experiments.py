"""The report's sections on behaviour (Experiment 1), interventions (Experiment 2) and the selected direction,
from their tables. Every rate and every difference is stated with its interval; a scope with too few
refusals gets no interval statements at all."""

from __future__ import annotations

import math

import pandas as pd

from .behaviour import RESPONSES, SCORES
from .intervals import wilson_interval

# Below this many refusals on harmful prompts without intervention, a reduction cannot be measured.
MIN_BASELINE_REFUSALS = 5


def _pct(value: float) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.0%}"


def number_text(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _baseline_harmful_refusals(sweep: pd.DataFrame) -> int:
    """Harmful prompts refused without intervention in the sweep: its rate times its prompt count."""
    first = sweep.iloc[0]
    return round(first["refusal_baseline_harmful"] * first["n_harmful"])


def _rate(refused: int, n: int, level: float) -> str:
    """'k/n = p% (CI a-b%)' with Wilson's interval."""
    low, high = wilson_interval(refused, n, level)
    return f"{refused}/{n} = {_pct(refused / n if n else math.nan)} ({level:.0%} CI {_pct(low)}-{_pct(high)})"


def _with_ci(row, prefix: str, fmt=_pct) -> str:
    return f"{fmt(row[prefix])} [{fmt(row[f'{prefix}_ci_low'])}, {fmt(row[f'{prefix}_ci_high'])}]"


def _signed(value: float, fmt) -> str:
    return ("+" if value >= 0 else "") + fmt(value)


def _change(row, prefix: str, fmt=_pct) -> str:
    """A change with its interval, and whether the interval excludes no change."""
    value, low, high = row[prefix], row[f"{prefix}_ci_low"], row[f"{prefix}_ci_high"]
    moved = "" if not (math.isfinite(low) and math.isfinite(high)) else (" (no change within the interval)"
                                                                         if low <= 0 <= high else "")  # fmt: skip
    return f"{_signed(value, fmt)} [{_signed(low, fmt)}, {_signed(high, fmt)}]{moved}"


def _points(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{100 * value:.0f} pp"


def _picked(n_layers: int) -> str:
    """The caveat of a layer picked for its largest change: its interval is not adjusted for the choice."""
    return "" if n_layers == 1 else (f"The layer with the largest change among the {n_layers} swept (its interval "
                                     "is not adjusted for that choice): ")  # fmt: skip


def refusal_counts(refusals: pd.DataFrame, column: str = "refused") -> dict[str, tuple[int, int]]:
    return {name: (int(part[column].sum()), len(part)) for name, part in refusals.groupby("set", sort=False)}


def disagreement_lines(labels: pd.DataFrame, limit: int = 5) -> list[str]:
    """Where the response text and the refusal score disagree, counted and the first few listed."""
    if "agreement" not in labels:
        return []
    counts = labels["agreement"].value_counts()
    split = [labels[labels["agreement"] == kind] for kind in ("text only", "score only")]
    lines = [
        f"The two judges disagree on {sum(len(part) for part in split)} of {len(labels)} responses: "
        f"{counts.get('text only', 0)} refused by the text only (the score was not positive), "
        f"{counts.get('score only', 0)} by the refusal score only (a soft refusal, or an answer that only started "
        "like a refusal); counted as refusals either way."
    ]
    for part in split:
        for row in part.head(limit).itertuples():
            lines.append(f"- {row.agreement}: `{row.id}`{f' ({row.condition})' if 'condition' in labels else ''}, "
                         f"score {row.refusal_score:.2f}, text evidence {row.evidence or 'none'!r}")  # fmt: skip
    return lines


def _auroc_line(part: pd.DataFrame) -> str:
    target, scope = part["target"].iloc[0], part["scope"].iloc[0]
    reason = part["reason"].fillna("").iloc[0]
    where = f"**{scope}, {target}:**"
    if part["auroc"].isna().all() or reason:
        return f"- {where} {reason}: no statement about the AUROC or its interval."
    best = part.loc[part["auroc"].idxmax()]
    above, below = int((part["auroc_ci_low"] > 0.5).sum()), int((part["auroc_ci_high"] < 0.5).sum())
    line = (
        f"- {where} highest AUROC {number_text(best['auroc'])} at layer {int(best['layer'])} "
        f"(CI {number_text(best['auroc_ci_low'])}-{number_text(best['auroc_ci_high'])}, "
        f"{int(best['n_refused'])} refusals among {int(best['n'])}); the interval lies "
        f"above chance in {above}/{len(part)} layers and below it in {below}/{len(part)}; correlation r "
        f"{number_text(best['r'])} (CI {number_text(best['r_ci_low'])}-{number_text(best['r_ci_high'])})."
    )
    if scope == "all prompts":
        line += (" Over harmful and harmless prompts together this mostly restates the harmful/harmless separation "
                 "the direction was fitted for (on the train split), not a link to refusal.")  # fmt: skip
    return line


def behaviour_section(refusals: pd.DataFrame, auroc: pd.DataFrame, levels: pd.DataFrame, level: float) -> list[str]:
    counts, text, score = (refusal_counts(refusals, column) for column in ("refused", "refused_text", "refused_score"))
    judge = refusals["judge"].iloc[0]
    lines = [
        "## Behaviour (Experiment 1): does the projection predict refusal?",
        "",
        f"All numbers here come from the test split: prompts the directions were not fitted on. The model answered "
        f"{len(refusals)} of them (greedy decoding). A response counts as a refusal when the {judge} judge finds one "
        "in its text or the prompt's refusal score is positive:",
        "",
        *[
            f"- {name}: {_rate(*counts[name], level)} (text: {text[name][0]}, refusal score: {score[name][0]})"
            for name in counts
        ],  # fmt: skip
        "",
        *disagreement_lines(refusals),
        "",
        f"Per layer, the AUROC of the projection on the direction for predicting refusal ({RESPONSES}: the responses "
        f"above; {SCORES}: every test prompt):",
        "",
    ]
    lines += [_auroc_line(part) for _, part in auroc.groupby(["target", "scope"], sort=False)]
    harmful_refused, harmful_n = counts.get("harmful", (0, 0))
    if harmful_refused < MIN_BASELINE_REFUSALS:
        lines.append(
            f"- With {harmful_refused} refusal(s) among {harmful_n} harmful prompts this model hardly refuses: there "
            "is almost no refusal for the projection to predict."
        )
    if not levels.empty:
        strongest = levels.groupby("layer")["mean_projection"].agg(lambda v: v.max() - v.min()).idxmax()
        part = levels[levels["layer"] == strongest]
        by_level = ", ".join(f"{row.level}: {row.mean_projection:.2f} (n={row.n})" for row in part.itertuples())
        lines.append(f"- **By harm level (Experiment 1a), layer {strongest}:** mean projection {by_level}.")
    lines += ["", "![AUROC by layer](behaviour/auroc_by_layer.png)", ""]
    return lines


def interventions_section(sweep: pd.DataFrame, level: float) -> list[str]:
    first = sweep.iloc[0]
    n_harmful, n_harmless = int(first["n_harmful"]), int(first["n_harmless"])
    has_control = "refusal_control_ablation_all" in sweep
    columns = ["ablation_all", "ablation_layer", "random_ablation_all"] + (["control_ablation_all"] * has_control)
    columns += ["addition", "random_addition"] + (["control_addition"] * has_control)
    headers = {
        "ablation_all": "Ablation, all layers", "ablation_layer": "Ablation, this layer",
        "random_ablation_all": "Random ablation", "control_ablation_all": "Control ablation", "addition": "Addition",
        "random_addition": "Random addition", "control_addition": "Control addition",
    }  # fmt: skip
    lines = [
        "## Interventions (Experiment 2): does removing or adding the direction change behaviour?",
        "",
        f"On test-split prompts, without intervention the model refuses "
        f"{_with_ci(first, 'refusal_baseline_harmful')} of {n_harmful} harmful and "
        f"{_with_ci(first, 'refusal_baseline_harmless')} of {n_harmless} harmless prompts. Refusal rates per layer of "
        f"the direction, with {level:.0%} Wilson intervals (ablations on harmful prompts, additions on harmless ones; "
        "the controls are a random direction and the control contrast's direction, both of the same norm):",
        "",
        "| Layer | " + " | ".join(headers[c] for c in columns) + " | KL ablation | KL addition |",
        "|---:|" + "---:|" * (len(columns) + 2),
    ]
    for _, row in sweep.iterrows():
        cells = [_with_ci(row, f"refusal_{c}") for c in columns]
        lines.append(f"| {int(row['layer'])} | " + " | ".join(cells) + f" | {row['kl_ablation_all']:.3g} "
                     f"| {row['kl_addition']:.3g} |")  # fmt: skip
    lines += ["", "KL: mean next-token KL divergence on harmless prompts (nats).", ""]
    baseline_refusals = _baseline_harmful_refusals(sweep)
    if baseline_refusals < MIN_BASELINE_REFUSALS:
        lines.append(
            f"The model refuses {baseline_refusals} of {n_harmful} harmful prompts "
            "without intervention, so ablation has almost no refusal to remove: these runs cannot show that the "
            "direction mediates refusal, only what the interventions cost (KL) and how they move the refusal score."
        )
    else:
        best = sweep.loc[sweep["change_ablation_all"].idxmin()]
        lines.append(
            f"{_picked(len(sweep))}Ablating layer {int(best['layer'])}'s direction everywhere changes the harmful "
            "refusal rate by "
            f"{_change(best, 'change_ablation_all', _points)} (the random direction: "
            f"{_change(best, 'change_random_ablation_all', _points)}"
            + (
                f"; the control direction: {_change(best, 'change_control_ablation_all', _points)}"
                if has_control
                else ""
            )
            + f"); against the random direction on the same prompts: "
            f"{_change(best, 'ablation_all_vs_random_ablation_all', _points)}."
        )
    induced = sweep.loc[sweep["change_addition"].idxmax()]
    lines.append(
        f"{_picked(len(sweep))}Adding layer {int(induced['layer'])}'s direction changes the harmless refusal "
        "rate by "
        f"{_change(induced, 'change_addition', _points)} (random vector: "
        f"{_change(induced, 'change_random_addition', _points)}"
        + (f"; control vector: {_change(induced, 'change_control_addition', _points)}" if has_control else "")
        + f"), and the mean refusal score by {_change(induced, 'score_change_addition', number_text)}."
    )
    lines += ["", "![Interventions](interventions/sweep.png)", ""]
    return lines


def selection_section(selected: dict, evaluation: pd.DataFrame, labels: pd.DataFrame, level: float) -> list[str]:
    """The selected direction: how it was chosen (validation split) and what it does (test split)."""
    rows = evaluation.set_index("condition")
    where = (f"layer {selected['layer']} (relative depth {selected['relative_depth']:.2f}), post-instruction position "
             f"{selected['position']} ({selected['token']!r})")  # fmt: skip
    lines = [
        "## The selected direction",
        "",
        f"Which direction is *the* refusal direction of this model: the difference in means (train split) at {where}, "
        f"chosen by the {selected['method']} method ({selected['criterion']}) among {selected['n_candidates']} "
        f"candidates scored on the validation split ({selected['n_validation']['harmful']} + "
        f"{selected['n_validation']['harmless']} prompts); {selected['n_passed']} passed every filter (a candidate "
        f"is dropped for {'; '.join(selected['filters'])}). Its scores: bypass "
        f"{number_text(selected['bypass'])} (no intervention: {number_text(selected['baseline_harmful_score'])}), "
        f"induce {number_text(selected['induce'])} "
        f"(no intervention: {number_text(selected['baseline_harmless_score'])}), KL {selected['kl']:.3g}.",
        "",
    ]
    if not selected["passed_filters"]:
        lines += [
            f"**No candidate passed every filter** ({selected['fallback_reason']}). The direction above is only the "
            f"best candidate by that criterion among {selected['fallback_pool']}: treat it as a candidate, not as a "
            "refusal direction.",
            "",
        ]
    lines += [
        f"Evaluated on the test split ({int(rows.loc['baseline harmful', 'n'])} harmful and "
        f"{int(rows.loc['baseline harmless', 'n'])} harmless prompts), with {level:.0%} intervals:",
        "",
        "| Condition | Prompts | Refusal rate | by text | by refusal score | Mean refusal score | Change in rate "
        "| Change in score | KL (harmless) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for condition, row in rows.iterrows():
        change = "change_rate" in row and math.isfinite(row.get("change_rate", math.nan))
        lines.append(
            f"| {condition} | {row['set']} | {_with_ci(row, 'refusal_rate')} | {_pct(row['refusal_rate_text'])} "
            f"| {_pct(row['refusal_rate_score'])} | {_with_ci(row, 'mean_refusal_score', number_text)} "
            f"| {_change(row, 'change_rate', _points) if change else ''} "
            f"| {_change(row, 'change_score', number_text) if change else ''} | {number_text(row['mean_kl'], 3)} |"
        )
    lines += ["", *selection_findings(rows), "", *disagreement_lines(labels), "",
              "![Selection](selection/selection.png)", ""]  # fmt: skip
    return lines


def selection_findings(rows: pd.DataFrame) -> list[str]:
    """What moved and by how much, and what did not, against the controls on the same prompts."""
    findings = []
    for intervention, baseline in (("ablation", "baseline harmful"), ("addition", "baseline harmless")):
        row = rows.loc[intervention]
        base = rows.loc[baseline]
        refused = round(base["refusal_rate"] * base["n"])
        score, rate = _change(row, "change_score", number_text), _change(row, "change_rate", _points)
        text = (
            f"- **{intervention.capitalize()}** moves the mean refusal score by {score} and the refusal rate by {rate}"
        )
        controls = [f"{kind} direction {_change(row, f'vs_{kind}_score', number_text)}"
                    for kind in ("random", "control")
                    if f"vs_{kind}_score" in row and math.isfinite(row[f"vs_{kind}_score"])]  # fmt: skip
        if controls:
            text += "; its score change beyond the " + ", beyond the ".join(controls)
        findings.append(text + ".")
        if intervention == "ablation" and refused < MIN_BASELINE_REFUSALS:
            findings.append(
                f"- Without intervention only {refused} of {int(base['n'])} harmful test prompts are refused: ablation "
                "has almost no refusal to remove, so its rate cannot show that the direction mediates refusal; the "
                "refusal score shows how far it moves the model's first token instead."
            )
    return findings


def behavioural_evidence(auroc: pd.DataFrame | None, sweep: pd.DataFrame | None, selected: dict | None) -> str:
    """One sentence on whether the behaviour experiments connect the direction to refusal."""
    if auroc is None and sweep is None and selected is None:
        return ("The behaviour, intervention and selection experiments were not run (config: behaviour, "
                "interventions, selection).")  # fmt: skip
    findings = []
    if auroc is not None:
        harmful = auroc[(auroc["scope"] == "harmful prompts") & (auroc["target"] == SCORES)]
        reason = harmful["reason"].fillna("").iloc[0]
        if reason:
            findings.append(
                f"whether the projection predicts refusal among harmful test prompts cannot be tested ({reason})"
            )
        elif (harmful["auroc_ci_low"] > 0.5).any():
            layers = int((harmful["auroc_ci_low"] > 0.5).sum())
            findings.append(f"the projection predicts the refusal score's sign among harmful test prompts above "
                            f"chance in {layers} layers")  # fmt: skip
        else:
            findings.append("the projection does not predict refusal among harmful test prompts beyond chance")
    if sweep is not None:
        if _baseline_harmful_refusals(sweep) < MIN_BASELINE_REFUSALS:
            findings.append("too few refusals at baseline for ablation to show a causal effect on the refusal rate")
        else:
            best = sweep.loc[sweep["ablation_all_vs_random_ablation_all"].idxmin()]
            change = _change(best, "ablation_all_vs_random_ablation_all", _points)
            findings.append(f"ablating layer {int(best['layer'])}'s direction changes the refusal rate by {change} "
                            f"against a random direction (the largest of {len(sweep)} layers; the interval is not "
                            "adjusted for that choice)")  # fmt: skip
    if selected is not None:
        findings.append(
            f"the selected direction is layer {selected['layer']}'s"
            + ("" if selected["passed_filters"] else " (a fallback: no candidate met the selection's criteria)")
        )
    return "Behavioural evidence: " + "; ".join(findings) + "."
