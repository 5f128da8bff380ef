"""The figure of the per-layer statistics: direction magnitude and effect sizes by layer, with the
permutation null and the control contrast; its colours, which the other stages' figures share."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

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


def write_direction_figure(inputs: dict, outputs: dict, title: str, d_min: float, ci_level: float, dpi: int) -> None:
    figure = direction_analysis_figure(pd.read_csv(inputs["validation"]), title, d_min, ci_level)
    figure.savefig(outputs["figure"], dpi=dpi)
