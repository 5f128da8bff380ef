"""The per-model Markdown report; every number in it comes from the result tables."""

from __future__ import annotations

import math
from itertools import pairwise

import pandas as pd


def format_p(log10_p: float) -> str:
    """A p-value in scientific notation from its log10, exact where the double would underflow."""
    if log10_p is None or not math.isfinite(log10_p):
        return "n/a"
    exponent = math.floor(log10_p)
    mantissa = 10 ** (log10_p - exponent)
    if mantissa >= 9.995:
        mantissa, exponent = 1.0, exponent + 1
    return f"{mantissa:.2f}e{exponent:+03d}"


def _num(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def bands(n_layers: int) -> list[tuple[str, range]]:
    """Early, middle and late thirds of the depth."""
    cuts = [0, round(n_layers / 3), round(2 * n_layers / 3), n_layers]
    names = ("Early", "Middle", "Late")
    return [(name, range(cuts[i], cuts[i + 1])) for i, name in enumerate(names) if cuts[i] < cuts[i + 1]]


def _band_lines(table: pd.DataFrame, n_layers: int) -> list[str]:
    lines = []
    for name, layers in bands(n_layers):
        part = table[table["layer"].isin(layers)]
        d, magnitude = part["cohens_d"], part["magnitude"]
        lines.append(
            f"- **{name} layers ({layers.start}-{layers.stop - 1}):** Cohen's d {_num(d.min())} to {_num(d.max())}"
            f" (mean {_num(d.mean())}), magnitude {_num(magnitude.min())} to {_num(magnitude.max())};"
            f" {int(part['valid'].sum())}/{len(part)} layers valid."
        )
    return lines


def _trend_sentence(table: pd.DataFrame) -> str:
    d = table["cohens_d"].to_numpy()
    finite = [value for value in d if math.isfinite(value)]
    if len(finite) < 3:
        return "Too few layers with a defined effect size to describe a trend."
    peak = int(table.loc[table["cohens_d"].abs().idxmax(), "layer"])
    rising = sum(b > a for a, b in pairwise(finite))
    return (
        f"Cohen's d rises from one layer to the next in {rising} of {len(finite) - 1} steps and peaks at layer {peak} "
        f"({peak / len(table):.0%} of the depth); magnitude grows from {_num(table['magnitude'].iloc[0])} at layer 0 "
        f"to {_num(table['magnitude'].iloc[-1])} at the last layer."
    )


def _strongest_phrase(strongest: dict | None, n_layers: int) -> str:
    if not strongest:
        return "undefined (no layer has a defined effect size)"
    return (
        f"layer {strongest['layer']} of {n_layers} (relative depth {strongest['relative_depth']:.2f}), "
        f"Cohen's d = {strongest['cohens_d']:.2f}"
    )


def top_table_markdown(top: pd.DataFrame) -> list[str]:
    lines = ["| Layer | Magnitude | Cohen's d | t | p-value | Valid |", "|---:|---:|---:|---:|---:|:---:|"]
    for _, row in top.iterrows():
        lines.append(
            f"| {int(row['layer'])} | {_num(row['magnitude'])} | {_num(row['cohens_d'])} | {_num(row['t_stat'], 1)} "
            f"| {format_p(row['log10_p'])} | {'yes' if row['valid'] else 'no'} |"
        )
    return lines


def render(summary: dict, table: pd.DataFrame, top: pd.DataFrame, datasets: dict, seed: int) -> str:
    model = summary["model"]
    n_layers = summary["n_layers"]
    strongest = summary["strongest_layer"]
    alpha, d_min = summary["thresholds"]["alpha"], summary["thresholds"]["d_min"]
    sources = {name: spec["source"] for name, spec in datasets.items()}
    headline = f"The strongest layer is {_strongest_phrase(strongest, n_layers)}."
    undefined = table[table["reason"].fillna("") != ""]
    lines = [
        f"# Difference-in-means directions in {model['id']}: Experiment 0",
        "",
        f"Model `{model['id']}` (weights `{model['weights_revision']}`, computed in {summary['dtype']}), "
        f"{summary['n_harmful']} harmful and {summary['n_harmless']} harmless prompts, {n_layers} layers.",
        "",
        "## Summary",
        "",
        f"{summary['n_valid_layers']} of {n_layers} layers pass the validity rule (p < {alpha:g} and |d| > {d_min:g}). "
        + headline,
        "",
        "The direction separates the harmful from the harmless prompts in the model's residual stream. That is a "
        "statement about representation, not behaviour: this experiment does not show that the model refuses, nor "
        "that this direction causes refusal.",
        "",
        "## Method",
        "",
        f"- **Harmful prompts:** {summary['n_harmful']} sampled (seed {seed}) from `{sources['harmful']}`.",
        f"- **Harmless prompts:** {summary['n_harmless']} sampled (seed {seed}) from `{sources['harmless']}`.",
        "- Each prompt is one user turn formatted with the model's chat template; the exact strings are in "
        "`prompts/*.jsonl`.",
        f"- **Layer convention:** {summary['layer_convention']}.",
        "- For each layer l: d_l = mean(harmful) - mean(harmless); unit direction d_l / ||d_l||; every prompt is "
        "projected on it; Student's independent-samples t-test and Cohen's d (pooled SD) on the two sets of "
        f"projections; valid if p < {alpha:g} and |d| > {d_min:g}.",
        "",
        "## Results",
        "",
        f"- **Valid layers:** {summary['n_valid_layers']}/{n_layers}",
        f"- **Strongest layer:** {_strongest_phrase(strongest, n_layers)}",
        "",
        "### Top 10 layers by |Cohen's d|",
        "",
        *top_table_markdown(top),
        "",
        "p-values come from their exact log10 (see `log10_p`), so values below the double range are shown, not 0.",
        "",
        "## Figure",
        "",
        "![Direction analysis](direction_analysis.png)",
        "",
        "Left: magnitude of the difference in means per layer. Middle: Cohen's d of the projections per layer "
        "(crosses mark layers that are not valid). Right: both on twin axes.",
        "",
        "## Layer patterns",
        "",
        *_band_lines(table, n_layers),
        "",
        _trend_sentence(table),
        "",
    ]
    if not undefined.empty:
        lines += [f"- Layer {int(r['layer'])}: {r['reason']}." for _, r in undefined.iterrows()] + [""]
    lines += [
        "## Limitations",
        "",
        f"- One model, {summary['n_harmful']} + {summary['n_harmless']} prompts.",
        "- The validity rule is evaluated on the same prompts that define the direction, so it is optimistic: "
        "with many dimensions and few prompts, even random labels can separate in-sample.",
        "- Correlation only: no behavioural or causal test is part of this experiment.",
        "",
        "## Files",
        "",
        "- `validation_results.csv`: every layer's statistics",
        "- `top10_layers.csv`: the ten layers with the largest |d|",
        "- `summary.json`: run summary, thresholds, package versions, config hash",
        "- `directions.safetensors`: unit directions and raw differences in means, one row per layer",
        "- `validated_directions.pkl`: valid layer -> unit direction (numpy), for readers of the seed's file",
        "- `direction_analysis.png`: the figure above",
        "",
    ]
    return "\n".join(lines)
