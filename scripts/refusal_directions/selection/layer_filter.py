"""The selection's layer filter: candidates from the last (1 - max_layer_fraction) of the layers are never
selected (Arditi et al.), so they are scored only when asked (selection.score_all_layers). Standard library
only: the workflow definition sizes the scoring job from it."""

from __future__ import annotations


def selectable_layers(n_layers: int, max_layer_fraction: float) -> int:
    """How many of the first layers the filter keeps: a candidate at layer >= this is dropped."""
    return int(n_layers * max_layer_fraction)


def scored_layers(n_layers: int, scoring: dict) -> list[int]:
    """Every ``layer_stride``-th layer; without ``score_all_layers``, those the filter keeps (the first one
    at least). ``max_candidates`` may thin them further (candidate_scores.candidate_layers)."""
    strided = list(range(0, n_layers, scoring["layer_stride"]))
    if scoring["score_all_layers"]:
        return strided
    limit = selectable_layers(n_layers, scoring["max_layer_fraction"])
    return [layer for layer in strided if layer < limit] or strided[:1]
