"""The figures: direction magnitude and effect sizes by layer, the behaviour AUROCs, the intervention sweep,
the selection's candidate scores and the selected direction's effect against its cost."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .capability_texts import LABELS, ON_DISTRIBUTION  # noqa: E402
from .conditions import (  # noqa: E402
    ABLATION_AT_LAYER,
    CONDITIONS,
    CONTROL,
    DIRECTION,
    EDITED_WEIGHTS,
    HARMFUL,
    HARMLESS,
    RANDOM,
    Condition,
    baseline_of,
)
from .jsonio import read_json  # noqa: E402

MAGNITUDE_COLOUR = "tab:blue"
IN_SAMPLE_COLOUR = "tab:red"
HELDOUT_COLOUR = "tab:purple"
NULL_COLOUR = "grey"
CONTROL_COLOUR = "tab:green"


def _effect_panel(axis, table: pd.DataFrame, d_min: float, ci_level: float) -> None:
    layers = table["layer"]
    axis.plot(layers, table["cohens_d"], "o-", color=IN_SAMPLE_COLOUR, markersize=3, label="in-sample d")
    axis.plot(layers, table["cohens_d_heldout"], "o-", color=HELDOUT_COLOUR, markersize=4, label="held-out d")
    axis.fill_between(
        layers,
        table["d_heldout_ci_low"],
        table["d_heldout_ci_high"],
        color=HELDOUT_COLOUR,
        alpha=0.2,
        label=f"held-out d, {ci_level:.0%} bootstrap CI",
    )
    axis.plot(layers, table["null_d_p99"], ":", color=NULL_COLOUR, label="permutation null, 99th pct")
    if table["control_d"].notna().any():
        axis.plot(layers, table["control_d_heldout"], "s--", color=CONTROL_COLOUR, markersize=3,
                  label="control contrast, held-out d")  # fmt: skip
    invalid = table[~table["valid"].astype(bool)]
    axis.scatter(invalid["layer"], invalid["cohens_d_heldout"], marker="x", color="black", zorder=3, label="not valid")
    axis.axhline(d_min, color="black", linestyle="--", linewidth=0.8, label=f"d_min = {d_min:g}")
    axis.set(xlabel="layer", ylabel="Cohen's d", title="Effect size of the projection")
    axis.legend(fontsize=7)


def direction_analysis_figure(table: pd.DataFrame, title: str, d_min: float, ci_level: float):
    """Three panels: magnitude per layer; effect sizes per layer (in-sample, held-out with its CI, the
    permutation null's 99th percentile, the control contrast); magnitude and held-out d together."""
    layers = table["layer"]
    figure, (ax_mag, ax_d, ax_both) = plt.subplots(1, 3, figsize=(17, 4.8))

    ax_mag.plot(layers, table["magnitude"], "o-", color=MAGNITUDE_COLOUR, label="harmful - harmless")
    if table["control_d"].notna().any():
        ax_mag.plot(layers, table["control_magnitude"], "s--", color=CONTROL_COLOUR, markersize=3, label="control")
    ax_mag.set(xlabel="layer", ylabel="||difference in means||", title="Direction magnitude")
    ax_mag.legend(fontsize=7)

    _effect_panel(ax_d, table, d_min, ci_level)

    ax_both.plot(layers, table["magnitude"], "o-", color=MAGNITUDE_COLOUR)
    ax_both.set_xlabel("layer")
    ax_both.set_ylabel("magnitude", color=MAGNITUDE_COLOUR)
    twin = ax_both.twinx()
    twin.plot(layers, table["cohens_d_heldout"], "s--", color=HELDOUT_COLOUR)
    twin.set_ylabel("held-out Cohen's d", color=HELDOUT_COLOUR)
    ax_both.set_title("Magnitude and held-out effect size")

    for axis in (ax_mag, ax_d, ax_both):
        axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def auroc_figure(table: pd.DataFrame, title: str, ci_level: float):
    """AUROC of the projection for predicting refusal, by layer, on test-split prompts: one panel per target
    (the responses judged, the refusal score's sign), one line per scope, with bootstrap intervals; a flagged
    scope is drawn without its interval and with its reason."""
    targets = list(dict.fromkeys(table["target"]))
    figure, axes = plt.subplots(1, len(targets), figsize=(8 * len(targets), 4.5), squeeze=False)
    for axis, target in zip(axes[0], targets, strict=True):
        for (scope, part), colour in zip(table[table["target"] == target].groupby("scope", sort=False),
                                         ("tab:red", "tab:blue"), strict=False):  # fmt: skip
            reason = part["reason"].fillna("").iloc[0]
            if part["auroc"].notna().any():
                axis.plot(part["layer"], part["auroc"], "o-", color=colour, markersize=3,
                          label=f"{scope} ({reason})" if reason else scope)  # fmt: skip
                if not reason:
                    axis.fill_between(part["layer"], part["auroc_ci_low"], part["auroc_ci_high"], color=colour,
                                      alpha=0.2, label=f"{scope}, {ci_level:.0%} bootstrap CI")  # fmt: skip
            else:
                axis.text(0.5, 0.1 if colour == "tab:blue" else 0.2, f"{scope}: {reason}", transform=axis.transAxes,
                          ha="center", color=colour)  # fmt: skip
        axis.axhline(0.5, color="grey", linestyle="--", linewidth=1, label="chance")
        axis.set(xlabel="layer", ylabel="AUROC (projection -> refusal)", ylim=(0, 1), title=f"{title}: {target}")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def _rate_line(axis, table: pd.DataFrame, column: str, style: str, label: str, **kwargs) -> None:
    """A refusal rate by layer with its Wilson interval as a band (nothing when the condition did not run)."""
    if column not in table:
        return
    (line,) = axis.plot(table["layer"], table[column], style, label=label, **kwargs)
    axis.fill_between(table["layer"], table[f"{column}_ci_low"], table[f"{column}_ci_high"], color=line.get_color(),
                      alpha=0.12)  # fmt: skip


# How each kind of vector is drawn: the direction solid, its controls dashed in their own colours.
VECTOR_STYLES = {DIRECTION: ("o-", None), RANDOM: ("x--", "grey"), CONTROL: ("d--", CONTROL_COLOUR)}
ONE_LAYER_STYLE = "s-"


EDITED_STYLE = "*-"


def _style(condition: Condition) -> tuple[str, str | None]:
    style, colour = VECTOR_STYLES[condition.vector]
    special = {ABLATION_AT_LAYER: ONE_LAYER_STYLE, EDITED_WEIGHTS: EDITED_STYLE}
    return special.get(condition.change, style), colour


def interventions_figure(table: pd.DataFrame, title: str):
    """Refusal rates by layer under each condition of the sweep with their intervals, one panel per prompt
    set (harmful: ablations; harmless: additions) with the rate without intervention, and the next-token KL
    on harmless prompts of every condition that records it."""
    prompt_sets = (HARMFUL, HARMLESS)
    figure, axes = plt.subplots(1, len(prompt_sets) + 1, figsize=(17, 4.5))
    for axis, prompt_set in zip(axes, prompt_sets, strict=False):
        changes = []
        for condition in (c for c in CONDITIONS.values() if c.intervenes and c.prompt_set == prompt_set):
            style, colour = _style(condition)
            _rate_line(axis, table, f"refusal_{condition.name}", style, condition.label, color=colour)
            changes.append(condition.change)
        baseline = baseline_of(prompt_set)
        axis.axhline(
            table[f"refusal_{baseline}"].iloc[0], color="black", linestyle=":", label=CONDITIONS[baseline].label
        )
        what = " / ".join(dict.fromkeys(changes))
        axis.set(xlabel="layer of the direction", ylabel="refusal rate", ylim=(-0.02, 1.02),
                 title=f"{prompt_set.capitalize()} prompts: {what}")  # fmt: skip
    kl_axis = axes[-1]
    for condition in (c for c in CONDITIONS.values() if c.records_kl and f"kl_{c.name}" in table):
        style, colour = _style(condition)
        kl_axis.plot(table["layer"], table[f"kl_{condition.name}"].clip(lower=1e-6), style, color=colour,
                     label=condition.label)  # fmt: skip
    kl_axis.set(xlabel="layer", ylabel="mean KL (nats)", yscale="log", title="Harmless prompts: next-token KL")
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def selection_figure(table: pd.DataFrame, selected: dict, title: str):
    """Bypass, induce and KL of every scored candidate over layer x post-instruction position: filtered
    candidates crossed (a layer that was not scored: a blank column of crosses), the selected one starred."""
    panels = (("bypass", "bypass score (lower: refusal removed)", "viridis"),
              ("induce", "induce score (> 0: refusal added)", "magma"),
              ("kl", "KL on harmless prompts (nats)", "cividis"))  # fmt: skip
    layers, positions = sorted(table["layer"].unique()), sorted(table["position"].unique())
    tokens = table.drop_duplicates("position").set_index("position")["token"]
    figure, axes = plt.subplots(1, 3, figsize=(17, 1.8 + 0.5 * len(positions)), squeeze=False)
    for axis, (column, label, colours) in zip(axes[0], panels, strict=True):
        # a layer left out of the scoring stays a blank column (pivot_table drops columns with no value)
        grid = table.pivot_table(index="position", columns="layer", values=column).reindex(
            index=positions, columns=layers
        )
        image = axis.imshow(grid.to_numpy(), aspect="auto", cmap=colours)
        figure.colorbar(image, ax=axis, label=label)
        dropped = table[table["filtered"]]
        axis.scatter([layers.index(v) for v in dropped["layer"]], [positions.index(v) for v in dropped["position"]],
                     marker="x", color="white", s=12, label="filtered")  # fmt: skip
        axis.scatter([layers.index(selected["layer"])], [positions.index(selected["position"])], marker="*",
                     color="red", s=160, label="selected")  # fmt: skip
        axis.set_xticks(range(len(layers)), layers, fontsize=7)
        axis.set_yticks(range(len(positions)), [f"{p} {tokens[p]!r}" for p in positions], fontsize=7)
        axis.set(xlabel="layer of the candidate", title=label)
    axes[0][0].legend(fontsize=7, loc="upper right")
    figure.suptitle(f"{title}: direction selection ({selected['criterion']})")
    figure.tight_layout()
    return figure


def _errorbar(axis, x: pd.Series, y: pd.Series, condition: Condition) -> None:
    """One condition's point with both intervals (columns ``<x>``/``<y>`` and their ``_ci_low``/``_ci_high``)."""
    style, colour = _style(condition)
    marker_colour = colour or ("tab:red" if condition.prompt_set == HARMFUL else "tab:blue")
    axis.errorbar(
        x.iloc[0], y.iloc[0], fmt=style[0], color=marker_colour, markersize=9 if style[0] == "*" else 6,
        xerr=[[x.iloc[0] - x.iloc[1]], [x.iloc[2] - x.iloc[0]]] if len(x) == 3 else None,
        yerr=[[y.iloc[0] - y.iloc[1]], [y.iloc[2] - y.iloc[0]]], capsize=2, label=condition.label,
    )  # fmt: skip


def capability_figure(capability: pd.DataFrame, evaluation: pd.DataFrame, title: str):
    """Each condition's effect against its cost: the change of the refusal rate against the change of the
    cross-entropy on on-distribution text, and the change of the mean refusal score against the next-token KL
    on harmless prompts (ablations on harmful prompts in red, additions on harmless ones in blue; controls in
    their own colours)."""
    costs = capability[capability["text"] == ON_DISTRIBUTION].set_index("condition")
    effects = evaluation.set_index("condition")
    figure, (rate_axis, score_axis) = plt.subplots(1, 2, figsize=(13, 5))
    for name in (n for n in costs.index if n in effects.index and CONDITIONS[n].intervenes):
        cost, effect, condition = costs.loc[name], effects.loc[name], CONDITIONS[name]
        _errorbar(rate_axis, cost[["change", "change_ci_low", "change_ci_high"]],
                  effect[["change_rate", "change_rate_ci_low", "change_rate_ci_high"]], condition)  # fmt: skip
        if pd.notna(effect["mean_kl"]):
            _errorbar(score_axis, pd.Series([max(effect["mean_kl"], 1e-6)]),
                      effect[["change_score", "change_score_ci_low", "change_score_ci_high"]], condition)  # fmt: skip
    rate_axis.set(xlabel=f"change of cross-entropy, {LABELS[ON_DISTRIBUTION]} (nats/token)",
                  ylabel="change of the refusal rate", title="Refusal rate against cross-entropy")  # fmt: skip
    score_axis.set(xlabel="mean next-token KL, harmless prompts (nats)", xscale="log",
                   ylabel="change of the mean refusal score", title="Refusal score against KL")  # fmt: skip
    for axis in (rate_axis, score_axis):
        axis.axhline(0, color="black", linewidth=0.6)
        axis.grid(alpha=0.3)
    rate_axis.axvline(0, color="black", linewidth=0.6)
    rate_axis.legend(fontsize=7)
    figure.suptitle(f"{title}: effect against cost, test split")
    figure.tight_layout()
    return figure


def write_capability_figure(inputs: dict, outputs: dict, title: str, dpi: int) -> None:
    figure = capability_figure(pd.read_csv(inputs["capability"]), pd.read_csv(inputs["evaluation"]), title)
    figure.savefig(outputs["figure"], dpi=dpi)


def write_direction_figure(inputs: dict, outputs: dict, title: str, d_min: float, ci_level: float, dpi: int) -> None:
    figure = direction_analysis_figure(pd.read_csv(inputs["validation"]), title, d_min, ci_level)
    figure.savefig(outputs["figure"], dpi=dpi)


def write_selection_figure(inputs: dict, outputs: dict, title: str, dpi: int) -> None:
    figure = selection_figure(pd.read_csv(inputs["scores"]), read_json(inputs["summary"]), title)
    figure.savefig(outputs["figure"], dpi=dpi)
