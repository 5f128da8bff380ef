"""The figure of Experiment 1: the AUROC of the projection for predicting refusal, by layer."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


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
