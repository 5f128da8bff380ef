"""The selection's figure: every candidate's scores over layer and position, the selected one marked."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..workflow.jsonio import read_json  # noqa: E402


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


def write_selection_figure(inputs: dict, outputs: dict, title: str, dpi: int) -> None:
    figure = selection_figure(pd.read_csv(inputs["scores"]), read_json(inputs["summary"]), title)
    figure.savefig(outputs["figure"], dpi=dpi)
