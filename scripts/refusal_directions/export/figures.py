"""The figure of what the selected direction costs: each condition's effect against its cross-entropy and
KL cost."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..data.prompt_sets import HARMFUL  # noqa: E402
from ..interventions.conditions import CONDITIONS, Condition  # noqa: E402
from ..interventions.figures import condition_style  # noqa: E402
from .capability_texts import LABELS, ON_DISTRIBUTION  # noqa: E402


def _errorbar(axis, x: pd.Series, y: pd.Series, condition: Condition) -> None:
    """One condition's point with both intervals (columns ``<x>``/``<y>`` and their ``_ci_low``/``_ci_high``)."""
    style, colour = condition_style(condition)
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
