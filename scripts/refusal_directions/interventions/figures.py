"""The figure of Experiment 2, the intervention sweep, and how each condition is drawn in every figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..data.prompt_sets import HARMFUL, HARMLESS  # noqa: E402
from ..stats.figures import CONTROL_COLOUR  # noqa: E402
from .conditions import (  # noqa: E402
    ABLATION_AT_LAYER,
    CONDITIONS,
    CONTROL,
    DIRECTION,
    EDITED_WEIGHTS,
    RANDOM,
    Condition,
    baseline_of,
)


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


def condition_style(condition: Condition) -> tuple[str, str | None]:
    """The line style and colour a condition is drawn with in every figure (None: matplotlib's next colour)."""
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
            style, colour = condition_style(condition)
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
        style, colour = condition_style(condition)
        kl_axis.plot(table["layer"], table[f"kl_{condition.name}"].clip(lower=1e-6), style, color=colour,
                     label=condition.label)  # fmt: skip
    kl_axis.set(xlabel="layer", ylabel="mean KL (nats)", yscale="log", title="Harmless prompts: next-token KL")
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    return figure
