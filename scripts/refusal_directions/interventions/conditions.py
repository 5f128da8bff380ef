"""The conditions the model runs under: one registry, one value per condition.

A condition is its name (the one spelling in every table, figure and report), the prompt set it runs on,
how it changes the model, which vector it uses (the direction, a random direction of the same norm, or the
control contrast's direction rescaled to the same norm), its human label, the condition without intervention
on the same prompts that it is compared with, and the controls an intervention is compared against. Adding a
condition is one entry in ``CONDITIONS``; the runner (condition_runner.py), the summary
(condition_summary.py), the figures and the report read everything else from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.prompt_sets import HARMFUL, HARMLESS

# How a condition changes the model (hooks for the duration of a run).
NO_CHANGE = "none"
ABLATION_EVERYWHERE = "ablation everywhere"
ABLATION_AT_LAYER = "ablation at one layer"
ADDITION_AT_LAYER = "addition at one layer"
# The weights carry the change (the exported edited model, export/orthogonalization.py): no hooks.
EDITED_WEIGHTS = "edited weights"

# Which vector a condition uses.
DIRECTION, RANDOM, CONTROL = "direction", "random", "control"


@dataclass(frozen=True)
class InterventionVectors:
    """The vectors of one run: the direction (added as it is), the unit direction that ablation projects out
    (the direction normalised where none is given), a random direction and the control contrast's direction
    (None when the run has no control contrast), and the layer that addition and one-layer ablation act at.

    A direction method (stats/direction_methods.py) may ablate a ``basis`` of k directions instead of the
    unit direction, with controls of the same dimension (``random_basis``, ``control_basis``), and an affine
    method holds the residual stream's component at each layer's ``ablation_references`` instead of zero and
    moves it to ``addition_target`` instead of adding on top (model/hooks.py)."""

    direction: np.ndarray
    layer: int
    random: np.ndarray | None = None
    control: np.ndarray | None = None
    unit: np.ndarray | None = None
    basis: np.ndarray | None = None
    random_basis: np.ndarray | None = None
    control_basis: np.ndarray | None = None
    ablation_references: np.ndarray | None = None
    addition_target: np.ndarray | None = None

    def vector(self, kind: str, ablation: bool) -> np.ndarray:
        """What a condition of ``kind`` adds, or (``ablation``) the direction(s) whose span it ablates."""
        if not ablation:
            return {DIRECTION: self.direction, RANDOM: self.random, CONTROL: self.control}[kind]
        if kind == DIRECTION:
            return next(v for v in (self.basis, self.unit, self.direction) if v is not None)
        spans = {RANDOM: (self.random_basis, self.random), CONTROL: (self.control_basis, self.control)}[kind]
        return spans[0] if spans[0] is not None else spans[1]


@dataclass(frozen=True)
class Condition:
    name: str
    prompt_set: str
    change: str
    label: str
    vector: str | None = None
    compared_with: str | None = None
    controls: tuple[str, ...] = ()
    # Next-token KL on harmless prompts against no intervention (an ablation's is measured in an extra pass).
    records_kl: bool = False

    @property
    def intervenes(self) -> bool:
        return self.change != NO_CHANGE

    def available(self, vectors: InterventionVectors) -> bool:
        """Whether this run has the vector the condition needs (a control contrast is optional)."""
        return not self.intervenes or vectors.vector(self.vector, ablation=False) is not None


CONDITIONS: dict[str, Condition] = {
    condition.name: condition
    for condition in (
        # No intervention on text that is no prompt set's (the capability measurements).
        Condition("baseline", None, NO_CHANGE, "no intervention"),
        Condition("baseline_harmful", HARMFUL, NO_CHANGE, "no intervention (harmful prompts)"),
        Condition("baseline_harmless", HARMLESS, NO_CHANGE, "no intervention (harmless prompts)"),
        Condition(
            "ablation_all", HARMFUL, ABLATION_EVERYWHERE, "ablation, every layer", DIRECTION, "baseline_harmful",
            ("random_ablation_all", "control_ablation_all"), records_kl=True,
        ),
        Condition(
            "ablation_layer", HARMFUL, ABLATION_AT_LAYER, "ablation, this layer only", DIRECTION, "baseline_harmful"
        ),
        Condition(
            "random_ablation_all", HARMFUL, ABLATION_EVERYWHERE, "random direction ablation", RANDOM,
            "baseline_harmful", records_kl=True,
        ),
        Condition(
            "control_ablation_all", HARMFUL, ABLATION_EVERYWHERE, "control direction ablation", CONTROL,
            "baseline_harmful", records_kl=True,
        ),
        Condition(
            "addition", HARMLESS, ADDITION_AT_LAYER, "activation addition", DIRECTION, "baseline_harmless",
            ("random_addition", "control_addition"), records_kl=True,
        ),
        Condition(
            "random_addition", HARMLESS, ADDITION_AT_LAYER, "random vector addition", RANDOM, "baseline_harmless",
            records_kl=True,
        ),
        Condition(
            "control_addition", HARMLESS, ADDITION_AT_LAYER, "control vector addition", CONTROL, "baseline_harmless",
            records_kl=True,
        ),
        Condition(
            "edited_model", HARMFUL, EDITED_WEIGHTS, "edited model (r orthogonalized out of the weights)", DIRECTION,
            "baseline_harmful", records_kl=True,
        ),
    )
}  # fmt: skip

# The conditions without intervention on a prompt set: every change on those prompts is measured against them.
BASELINES = tuple(name for name, c in CONDITIONS.items() if not c.intervenes and c.prompt_set is not None)
# The interventions whose effect is the question (each compared with its controls on the same prompts).
INTERVENTIONS = tuple(name for name, condition in CONDITIONS.items() if condition.controls)
# Each job's conditions, in the order they run (the baselines first: every KL is measured against them).
# The sweep and the evaluation change the model by hooks; the edited model runs in its check's job.
SWEEP = tuple(
    name for name, c in CONDITIONS.items() if name in BASELINES or c.change not in (NO_CHANGE, EDITED_WEIGHTS)
)
EVALUATION = tuple(name for name in SWEEP if name != "ablation_layer")
EDITED = "edited_model"
# What each intervention of the evaluation, and the edited model, costs in cross-entropy (export/capability.py).
CAPABILITY = ("baseline", *(name for name in EVALUATION if name not in BASELINES), EDITED)
BYPASS, INDUCE = "ablation_all", "addition"


def baseline_of(prompt_set: str) -> str:
    """The condition without intervention on ``prompt_set``."""
    return next(name for name in BASELINES if CONDITIONS[name].prompt_set == prompt_set)


def control_kind(name: str) -> str:
    """What a control condition controls with (``random`` or ``control``): the word in the summary's column
    names ``vs_<kind>_rate``."""
    return CONDITIONS[name].vector


def label(name: str) -> str:
    return CONDITIONS[name].label
