"""The figure of the direction methods: each method's effect on refusal against its cost in cross-entropy,
with intervals on both axes, and the methods no other beats on both (the Pareto front)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..export.capability_texts import LABELS, ON_DISTRIBUTION  # noqa: E402


def pareto_front(table: pd.DataFrame, effect: str, cost: str) -> list[str]:
    """The methods that no other method beats on both axes (a lower, i.e. stronger, change of the refusal rate
    and a lower cost), ordered by cost."""
    rows = table.dropna(subset=[effect, cost])
    front = [
        row.method for row in rows.itertuples()
        if not any((other[effect] <= getattr(row, effect)) and (other[cost] <= getattr(row, cost))
                   and (other[effect], other[cost]) != (getattr(row, effect), getattr(row, cost))
                   for _, other in rows.iterrows())
    ]  # fmt: skip
    return list(rows.set_index("method").loc[front].sort_values(cost).index)


def methods_figure(table: pd.DataFrame, title: str):
    """Change of the harmful prompts' refusal rate under ablation against the change of cross-entropy, one
    point per method with both intervals; the Pareto front joined by a line."""
    effect, cost = "bypass_change", "cross_entropy_change"
    figure, axis = plt.subplots(figsize=(7, 5))
    for index, row in enumerate(table.itertuples()):
        x, y = getattr(row, cost), getattr(row, effect)
        xerr = None if pd.isna(x) else [[x - getattr(row, f"{cost}_ci_low")], [getattr(row, f"{cost}_ci_high") - x]]
        yerr = [[y - getattr(row, f"{effect}_ci_low")], [getattr(row, f"{effect}_ci_high") - y]]
        axis.errorbar(0 if pd.isna(x) else x, y, xerr=xerr, yerr=yerr, fmt="o", capsize=3, color=f"C{index}",
                      label=f"{row.method} ({row.label}, k = {row.k})")  # fmt: skip
    front = table.set_index("method").loc[pareto_front(table, effect, cost)]
    if len(front) > 1:
        axis.plot(front[cost], front[effect], color="grey", linestyle="--", linewidth=1, label="Pareto front")
    axis.axhline(0, color="black", linewidth=0.6)
    axis.axvline(0, color="black", linewidth=0.6)
    measured = table[cost].notna().any()
    axis.set(xlabel=f"change of cross-entropy under ablation, {LABELS[ON_DISTRIBUTION]} (nats/token)"
             + ("" if measured else ": not measured (capability.enabled is false)"),
             ylabel="change of the harmful refusal rate under ablation",
             title=f"{title}: direction methods, test split")  # fmt: skip
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def plot_methods(inputs: dict, outputs: dict, title: str, dpi: int) -> None:
    methods_figure(pd.read_csv(inputs["table"]), title).savefig(outputs["figure"], dpi=dpi)
