"""Cross-model comparison: each model's strongest layer and its effect size against relative depth."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..workflow.jsonio import read_json  # noqa: E402

COLUMNS = [
    "model",
    "model_id",
    "n_layers",
    "strongest_layer",
    "relative_depth",
    "peak_cohens_d",
    "peak_heldout_layer",
    "peak_cohens_d_heldout",
    "n_valid_layers",
    "n_valid_seed_rule",
    "selected_layer",
    "selected_relative_depth",
    "selected_position",
    "selection_passed_filters",
]


def comparison_table(summaries: list[dict], selected: list[dict | None]) -> pd.DataFrame:
    """One row per model, in config order; relative depth = layer / number of layers, of the strongest
    layer and, when the selection ran, of the selected direction."""
    rows = []
    for summary, chosen in zip(summaries, selected, strict=True):
        chosen = chosen or {}
        strongest = summary["strongest_layer"] or {}
        heldout = summary["strongest_heldout_layer"] or {}
        rows.append(
            {
                "model": summary["model"]["slug"],
                "model_id": summary["model"]["id"],
                "n_layers": summary["n_layers"],
                "strongest_layer": strongest.get("layer"),
                "relative_depth": strongest.get("relative_depth"),
                "peak_cohens_d": strongest.get("cohens_d"),
                "peak_heldout_layer": heldout.get("layer"),
                "peak_cohens_d_heldout": heldout.get("cohens_d_heldout"),
                "n_valid_layers": summary["n_valid_layers"],
                "n_valid_seed_rule": len(summary["valid_seed_rule_layers"]),
                "selected_layer": chosen.get("layer"),
                "selected_relative_depth": chosen.get("relative_depth"),
                "selected_position": chosen.get("position"),
                "selection_passed_filters": chosen.get("passed_filters"),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def depth_figure(tables: dict[str, pd.DataFrame]):
    """Cohen's d of every layer against its relative depth (layer / L), one colour per model: in-sample
    (dashed) and held-out (solid)."""
    figure, axis = plt.subplots(figsize=(8, 5))
    for model, table in tables.items():
        depth = table["layer"] / len(table)
        (line,) = axis.plot(depth, table["cohens_d_heldout"], "o-", markersize=3, label=f"{model} (held-out)")
        axis.plot(depth, table["cohens_d"], "--", color=line.get_color(), alpha=0.6, label=f"{model} (in-sample)")
    axis.set(xlabel="relative depth (layer / number of layers)", ylabel="Cohen's d", title="Effect size by depth")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def write_comparison(inputs: dict, outputs: dict, models: list[str], dpi: int) -> None:
    """results/comparison/: the cross-model ``table`` and ``figure``, from each model's ``summaries`` and
    ``validations`` and its ``selected`` direction (empty when the selection did not run)."""
    summaries = [read_json(path) for path in inputs["summaries"]]
    chosen = [read_json(path) for path in inputs["selected"]] or [None] * len(summaries)
    comparison_table(summaries, chosen).to_csv(outputs["table"], index=False)
    tables = {model: pd.read_csv(path) for model, path in zip(models, inputs["validations"], strict=True)}
    depth_figure(tables).savefig(outputs["figure"], dpi=dpi)
