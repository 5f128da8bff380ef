"""The per-model figure: direction magnitude and Cohen's d by layer."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

MAGNITUDE_COLOUR = "tab:blue"
EFFECT_COLOUR = "tab:red"


def direction_analysis_figure(table: pd.DataFrame, title: str, d_min: float):
    """Three panels: magnitude per layer, Cohen's d per layer, both on twin axes."""
    layers = table["layer"]
    figure, (ax_mag, ax_d, ax_both) = plt.subplots(1, 3, figsize=(16, 4.5))

    ax_mag.plot(layers, table["magnitude"], "o-", color=MAGNITUDE_COLOUR)
    ax_mag.set(xlabel="layer", ylabel="||mean(harmful) - mean(harmless)||", title="Direction magnitude")

    ax_d.plot(layers, table["cohens_d"], "o-", color=EFFECT_COLOUR, label="Cohen's d (in-sample)")
    invalid = table[~table["valid"].astype(bool)]
    ax_d.scatter(invalid["layer"], invalid["cohens_d"], marker="x", color="black", zorder=3, label="not valid")
    ax_d.axhline(d_min, color="grey", linestyle="--", linewidth=1, label=f"d_min = {d_min:g}")
    ax_d.set(xlabel="layer", ylabel="Cohen's d", title="Effect size of the projection")
    ax_d.legend(fontsize=8)

    ax_both.plot(layers, table["magnitude"], "o-", color=MAGNITUDE_COLOUR)
    ax_both.set_xlabel("layer")
    ax_both.set_ylabel("magnitude", color=MAGNITUDE_COLOUR)
    twin = ax_both.twinx()
    twin.plot(layers, table["cohens_d"], "s--", color=EFFECT_COLOUR)
    twin.set_ylabel("Cohen's d", color=EFFECT_COLOUR)
    ax_both.set_title("Magnitude and effect size")

    for axis in (ax_mag, ax_d, ax_both):
        axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    return figure
