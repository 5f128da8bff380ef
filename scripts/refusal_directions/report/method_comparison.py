"""comparison.csv: the direction methods side by side (README: "Direction methods"), one row per method, every
number read from the method's own evaluation, capability and check files, all made on the same test prompts
and documents:

- where: layer, position, k (directions ablated together), the edit (linear or affine);
- effect: the harmful prompts' refusal rate under ablation everywhere (``bypass_*``) and the harmless prompts'
  under addition (``induce_*``), each with its Wilson interval and its paired change against no intervention;
  the mean next-token KL of the ablation on harmless prompts;
- cost: the change of cross-entropy per token under the ablation (on-distribution text), with its interval;
- the edited model: how the edit exists (``export``: in the weights, or hooks only and why) and whether the
  exported model's check against the hooks passed (empty where nothing was exported);
- against mean_diff: the cosine of the two directions (one direction each), the largest principal angle
  between the method's span and mean_diff's, and paired differences (same prompts, same documents) of the
  bypass and induce refusal rates and of the cross-entropy, with bootstrap intervals;
- ``seconds``: the wall time of the job that found the direction (candidate scoring; the optimization for
  rdo and cone, which start from mean_diff's selected candidate).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..export.capability_summary import per_token
from ..export.capability_texts import ON_DISTRIBUTION
from ..interventions.conditions import BYPASS, INDUCE
from ..stats.direction_methods import AFFINE, MEAN_DIFF, METHODS, principal_angles
from ..stats.intervals import change_columns, interval_columns
from ..stats.method_direction import MethodDirection, load_method_direction
from ..stats.resampling import percentile_interval
from ..workflow.jsonio import read_json

# The effects compared, by the condition that makes each.
EFFECTS = {"bypass": BYPASS, "induce": INDUCE}
BOOTSTRAP_STREAM = 11
# The kinds of file the comparison reads of each method.
KINDS = ("direction", "seconds", "evaluation", "labels", "capability", "losses", "check")
# Which paired differences against mean_diff the report reads, by the column they head.
VERSUS = ("vs_mean_diff_bypass", "vs_mean_diff_induce", "vs_mean_diff_cross_entropy")


def _interval(row: pd.Series, column: str, prefix: str) -> dict:
    return interval_columns(prefix, tuple(row[f"{column}{end}"] for end in ("", "_ci_low", "_ci_high")))


def effect_columns(evaluation: pd.DataFrame) -> dict:
    """The rates under ablation (bypass) and addition (induce), their changes against no intervention and the
    ablation's KL, from a method's evaluation.csv."""
    rows = evaluation.set_index("condition")
    columns = {}
    for effect, condition in EFFECTS.items():
        columns.update(_interval(rows.loc[condition], "refusal_rate", f"{effect}_rate"))
        columns.update(_interval(rows.loc[condition], "change_rate", f"{effect}_change"))
    columns["kl"] = float(rows.loc[BYPASS, "mean_kl"])
    return columns


def cost_columns(capability: pd.DataFrame | None) -> dict:
    """The change of cross-entropy under the ablation, on-distribution text."""
    if capability is None:
        return interval_columns("cross_entropy_change", (math.nan,) * 3)
    row = capability[(capability["condition"] == BYPASS) & (capability["text"] == ON_DISTRIBUTION)].iloc[0]
    return _interval(row, "change", "cross_entropy_change")


def geometry_columns(direction: MethodDirection, reference: MethodDirection) -> dict:
    """The cosine with mean_diff's direction (both one direction; else empty) and the largest principal angle
    between the spans, in degrees."""
    cosine = float(direction.basis[0] @ reference.basis[0]) if direction.k == reference.k == 1 else math.nan
    return {"cosine_with_mean_diff": cosine,
            "angle_with_mean_diff": float(principal_angles(direction.basis, reference.basis).max())}  # fmt: skip


def cross_entropy_difference(losses: pd.DataFrame, reference: pd.DataFrame, intervals: dict) -> tuple:
    """Per-token cross-entropy under the ablation, this method's minus mean_diff's, on the same documents,
    with a paired bootstrap interval over documents."""

    def ablated(table):
        part = table[(table["condition"] == BYPASS) & (table["text"] == ON_DISTRIBUTION)]
        return part.set_index("document")[["loss_sum", "n_tokens"]].astype(float)

    mine, theirs = ablated(losses), ablated(reference)
    documents = mine.index.intersection(theirs.index)
    rng = np.random.default_rng([intervals["seed"], BOOTSTRAP_STREAM])
    draws = rng.integers(0, len(documents), (intervals["n_bootstrap"], len(documents)))
    value, values = per_token(mine.loc[documents, "loss_sum"].to_numpy(), mine.loc[documents, "n_tokens"].to_numpy(),
                              draws)  # fmt: skip
    base, bases = per_token(theirs.loc[documents, "loss_sum"].to_numpy(),
                            theirs.loc[documents, "n_tokens"].to_numpy(), draws)  # fmt: skip
    return value - base, *percentile_interval(values - bases, intervals["level"])


def versus_columns(labels: pd.DataFrame, reference: pd.DataFrame, losses: pd.DataFrame | None,
                   reference_losses: pd.DataFrame | None, intervals: dict) -> dict:  # fmt: skip
    """This method's bypass and induce refusal rates and its cross-entropy minus mean_diff's, paired."""
    columns = {}
    for effect, condition in EFFECTS.items():
        mine, theirs = (table[table["condition"] == condition] for table in (labels, reference))
        columns.update(change_columns(f"vs_mean_diff_{effect}", mine, theirs, "refused", intervals))
    difference = (math.nan,) * 3 if losses is None else cross_entropy_difference(losses, reference_losses, intervals)
    return {**columns, **interval_columns("vs_mean_diff_cross_entropy", difference)}


# Why an affine method's edit is not exported (README: "Direction methods").
HOOKS_ONLY = (
    "hooks only: the affine edit adds constants to the residual stream, at the embedding and at every block's "
    "output, where decoder architectures have no bias to hold them"
)


def export_status(method: str, check: dict | None) -> str:
    """How a method's edit exists: in an exported checkpoint, by hooks only (and why), or not exported."""
    if check is not None:
        return "weights"
    return HOOKS_ONLY if METHODS[method].edit == AFFINE else "not exported (export.enabled is false)"


def benchmark_seconds(path: str) -> float:
    """The wall time of a Snakemake benchmark file (the mean over its repeats)."""
    return float(pd.read_csv(path, sep="\t")["s"].mean())


def method_row(method: str, inputs: dict, reference: dict, intervals: dict) -> dict:
    """One method's row; ``inputs``: its files by kind (direction, evaluation, labels, capability, losses,
    check, seconds), ``reference``: mean_diff's direction, labels and losses, loaded."""
    direction = load_method_direction(inputs["direction"])
    capability = pd.read_csv(inputs["capability"]) if "capability" in inputs else None
    losses = pd.read_csv(inputs["losses"]) if "losses" in inputs else None
    labels = pd.read_csv(inputs["labels"])
    check = read_json(inputs["check"]) if "check" in inputs else None
    return {
        "method": method, "label": METHODS[method].label, "edit": METHODS[method].edit, "k": direction.k,
        "layer": direction.layer, "position": direction.position,
        **effect_columns(pd.read_csv(inputs["evaluation"])), **cost_columns(capability),
        "export": export_status(method, check), "edited_check_passed": None if check is None else check["passed"],
        **geometry_columns(direction, reference["direction"]),
        **versus_columns(labels, reference["labels"], losses, reference["losses"], intervals),
        "seconds": benchmark_seconds(inputs["seconds"]),
    }  # fmt: skip


def comparison_table(files: dict[str, dict], intervals: dict) -> pd.DataFrame:
    """One row per method, mean_diff first; ``files``: each method's files by kind."""
    main = files[MEAN_DIFF]
    reference = {"direction": load_method_direction(main["direction"]), "labels": pd.read_csv(main["labels"]),
                 "losses": pd.read_csv(main["losses"]) if "losses" in main else None}  # fmt: skip
    settings = {"n_bootstrap": intervals["n_bootstrap"], "level": intervals["ci_level"], "seed": intervals["seed"]}
    return pd.DataFrame([method_row(method, paths, reference, settings) for method, paths in files.items()])


def compare_methods(inputs: dict, outputs: dict, methods: list[str], intervals: dict) -> None:
    """comparison.csv from every method's files (rules/methods.smk names them ``<kind>_<method>``)."""
    files = {method: {kind.removesuffix(f"_{method}"): path for kind, path in inputs.items()
                      if kind.endswith(f"_{method}") and kind.removesuffix(f"_{method}") in KINDS}
             for method in methods}  # fmt: skip
    comparison_table(files, intervals).to_csv(outputs["table"], index=False)
