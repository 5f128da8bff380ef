"""The report's sections on behaviour (Experiment 1) and interventions (Experiment 2), from their tables."""

from __future__ import annotations

import math

import pandas as pd

# Below this many refusals on harmful prompts without intervention, a reduction cannot be measured.
MIN_BASELINE_REFUSALS = 5


def _pct(value: float) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.0%}"


def _num(value: float) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.2f}"


def refusal_counts(refusals: pd.DataFrame) -> dict[str, tuple[int, int]]:
    return {name: (int(part["refused"].sum()), len(part)) for name, part in refusals.groupby("set", sort=False)}


def behaviour_section(refusals: pd.DataFrame, auroc: pd.DataFrame, levels: pd.DataFrame) -> list[str]:
    counts = refusal_counts(refusals)
    judge = refusals["judge"].iloc[0]
    harmful_refused, harmful_n = counts.get("harmful", (0, 0))
    lines = [
        "## Behaviour (Experiment 1): does the projection predict refusal?",
        "",
        f"The model answered {len(refusals)} prompts (greedy decoding); the {judge} judge counts "
        + ", ".join(f"{refused}/{n} {name} responses as refusals" for name, (refused, n) in counts.items())
        + ".",
        "",
    ]
    for scope, part in auroc.groupby("scope", sort=False):
        if part["auroc"].isna().all():
            lines.append(f"- **{scope}:** {part['reason'].iloc[0]}: AUROC undefined at every layer.")
            continue
        best = part.loc[part["auroc"].idxmax()]
        above = int((part["auroc_ci_low"] > 0.5).sum())
        line = (
            f"- **{scope}:** highest AUROC {_num(best['auroc'])} at layer {int(best['layer'])} "
            f"(CI {_num(best['auroc_ci_low'])} to {_num(best['auroc_ci_high'])}, {int(best['n_refused'])} refusals "
            f"among {int(best['n'])}); the interval lies above chance in {above}/{len(part)} layers."
        )
        if isinstance(best["reason"], str) and best["reason"]:
            line += f" Not a finding: {best['reason']} for a reliable AUROC or interval."
        lines.append(line)
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


def interventions_section(sweep: pd.DataFrame) -> list[str]:
    first = sweep.iloc[0]
    baseline_harmful, baseline_harmless = first["refusal_baseline_harmful"], first["refusal_baseline_harmless"]
    n_harmful, n_harmless = int(first["n_harmful"]), int(first["n_harmless"])
    lines = [
        "## Interventions (Experiment 2): does removing or adding the direction change behaviour?",
        "",
        f"Without intervention the model refuses {_pct(baseline_harmful)} of {n_harmful} harmful and "
        f"{_pct(baseline_harmless)} of {n_harmless} harmless prompts. Per layer of the direction:",
        "",
        "| Layer | Ablation, all layers | Ablation, this layer | Random ablation | Addition | Random addition "
        "| KL ablation | KL random ablation | KL addition |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in sweep.itertuples():
        lines.append(
            f"| {row.layer} | {_pct(row.refusal_ablation_all)} | {_pct(row.refusal_ablation_layer)} "
            f"| {_pct(row.refusal_random_ablation_all)} | {_pct(row.refusal_addition)} "
            f"| {_pct(row.refusal_random_addition)} | {row.kl_ablation_all:.3g} | {row.kl_random_ablation_all:.3g} "
            f"| {row.kl_addition:.3g} |"
        )
    lines += ["", "Refusal rates: ablation on harmful prompts, addition on harmless prompts; KL: mean next-token KL on "
              "harmless prompts (nats).", ""]  # fmt: skip
    if baseline_harmful * n_harmful < MIN_BASELINE_REFUSALS:
        lines.append(
            f"The model refuses {round(baseline_harmful * n_harmful)} of {n_harmful} harmful prompts without "
            "intervention, so ablation has almost no refusal to remove: these runs cannot show that the direction "
            "mediates refusal, only that the interventions run and what they cost (KL)."
        )
    else:
        best = sweep.loc[sweep["refusal_ablation_all"].idxmin()]
        lines.append(
            f"Ablating layer {int(best['layer'])}'s direction everywhere lowers the harmful refusal rate from "
            f"{_pct(baseline_harmful)} to {_pct(best['refusal_ablation_all'])} (random direction: "
            f"{_pct(best['refusal_random_ablation_all'])})."
        )
    induced = sweep.loc[sweep["refusal_addition"].idxmax()]
    lines.append(
        f"Adding layer {int(induced['layer'])}'s direction makes the model refuse {_pct(induced['refusal_addition'])} "
        f"of harmless prompts (random vector of the same norm: {_pct(induced['refusal_random_addition'])}; "
        f"no intervention: {_pct(baseline_harmless)})."
    )
    lines += ["", "![Interventions](interventions/sweep.png)", ""]
    return lines


def behavioural_evidence(auroc: pd.DataFrame | None, sweep: pd.DataFrame | None) -> str:
    """One sentence on whether the behaviour experiments connect the direction to refusal."""
    if auroc is None and sweep is None:
        return "The behaviour and intervention experiments were not run (config: behaviour, interventions)."
    findings = []
    if auroc is not None:
        harmful = auroc[auroc["scope"] == "harmful prompts"]
        reason = harmful["reason"].fillna("").iloc[0]
        if reason:
            findings.append(f"whether the projection predicts refusal cannot be tested here ({reason})")
        elif (harmful["auroc_ci_low"] > 0.5).any():
            findings.append("the projection predicts refusal among harmful prompts above chance in some layers")
        else:
            findings.append("the projection does not predict refusal among harmful prompts beyond chance")
    if sweep is not None:
        first = sweep.iloc[0]
        if first["refusal_baseline_harmful"] * first["n_harmful"] < MIN_BASELINE_REFUSALS:
            findings.append("too few refusals at baseline for ablation to show a causal effect")
        else:
            effect = (sweep["refusal_random_ablation_all"] - sweep["refusal_ablation_all"]).max()
            findings.append(f"ablation lowers the refusal rate by up to {_pct(effect)} more than a random direction")
        induced = (sweep["refusal_addition"] - sweep["refusal_random_addition"]).max()
        if induced > 0:
            findings.append(
                f"adding it raises refusals of harmless prompts by up to {_pct(induced)} over a random vector"
            )
        else:
            findings.append("adding it makes the model refuse harmless prompts no more often than a random vector does")
    return "Behavioural evidence: " + "; ".join(findings) + "."
