"""Forward hooks on the residual stream of a loaded model: the modules that write into it, and the two
interventions the conditions are made of (interventions/condition_hooks.py turns a condition into these).

- Directional ablation everywhere (Arditi et al. 2024): x <- x - (x . r) r on the embedding output and
  on every attention and MLP output, so the residual stream never carries the direction r (unit).
- Directional ablation at one layer: the same projection on the output of decoder block l only.
- Activation addition: x <- x + v on the output of decoder block l, at every position.
- Per-row interventions (``RowInterventions``): each row of a batch under its own ablation and addition, so that
  several candidate directions share one batch.
Block l's output is where layer l's direction was measured (README: layer convention).
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from ..workflow.errors import UserError
from .loading import decoder_layers


def _hidden(output):
    return output[0] if isinstance(output, tuple) else output


def _replace_hidden(output, hidden):
    return (hidden, *output[1:]) if isinstance(output, tuple) else hidden


def _project_out(unit: torch.Tensor):
    def hook(_module, _inputs, output):
        hidden = _hidden(output)
        direction = unit.to(device=hidden.device, dtype=hidden.dtype)
        return _replace_hidden(output, hidden - (hidden @ direction).unsqueeze(-1) * direction)

    return hook


def _add(vector: torch.Tensor):
    def hook(_module, _inputs, output):
        hidden = _hidden(output)
        return _replace_hidden(output, hidden + vector.to(device=hidden.device, dtype=hidden.dtype))

    return hook


# A block's sub-modules that write into the residual stream, by the names architectures give them.
ATTENTION = ("self_attn", "attn", "attention")
MLP = ("mlp", "feed_forward")


def sublayer(module, names: tuple[str, ...], what: str):
    """The first of ``names`` that ``module`` has: an architecture without any is not supported."""
    for name in names:
        child = getattr(module, name, None)
        if child is not None:
            return child
    raise UserError(f"cannot find the {what} of {type(module).__name__} (looked for {', '.join(names)})")


def block_writers(model) -> list[tuple[torch.nn.Module, torch.nn.Module]]:
    """Each decoder block's attention and MLP: the sub-modules whose outputs it adds to the residual stream."""
    return [(sublayer(block, ATTENTION, "attention"), sublayer(block, MLP, "MLP")) for block in decoder_layers(model)]


def residual_writers(model) -> list[torch.nn.Module]:
    """Every module that writes into the residual stream: the token embedding and each block's attention
    and MLP."""
    return [model.get_input_embeddings(), *(writer for writers in block_writers(model) for writer in writers)]


@contextmanager
def hooks(pairs):
    """Register (module, forward hook) pairs for the duration of the block."""
    handles = [module.register_forward_hook(hook) for module, hook in pairs]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def ablate_everywhere(model, direction: np.ndarray):
    unit = torch.as_tensor(direction / np.linalg.norm(direction), dtype=torch.float32)
    return hooks([(module, _project_out(unit)) for module in residual_writers(model)])


def ablate_at_layer(model, direction: np.ndarray, layer: int):
    unit = torch.as_tensor(direction / np.linalg.norm(direction), dtype=torch.float32)
    return hooks([(decoder_layers(model)[layer], _project_out(unit))])


def add_at_layer(model, vector: np.ndarray, layer: int):
    return hooks([(decoder_layers(model)[layer], _add(torch.as_tensor(vector, dtype=torch.float32)))])


class RowInterventions:
    """Interventions that differ by batch row. Variant v projects ``units[v]`` out of every residual-stream
    writer's output (ablation everywhere; a zero row changes nothing) and adds ``additions[v]`` to the output
    of block ``layers[v]`` (none where the layer is -1), at every position. ``select(variants)`` says which
    variant each row of the next forward runs under. Use as a context manager: the hooks are active inside."""

    def __init__(self, model, units: np.ndarray, additions: np.ndarray, layers: np.ndarray):
        self.units = torch.as_tensor(units, dtype=torch.float32)
        self.additions = torch.as_tensor(additions, dtype=torch.float32)
        self.layers = torch.as_tensor(layers, dtype=torch.long)
        self.rows = torch.zeros(0, dtype=torch.long)
        ablations = [(module, self._project_out) for module in residual_writers(model)]
        blocks = decoder_layers(model)
        additions_at = [(blocks[layer], self._add_at(layer)) for layer in sorted(set(self.layers.tolist()) - {-1})]
        self._hooks = hooks(ablations + additions_at)

    @property
    def n_variants(self) -> int:
        return len(self.units)

    def select(self, variants) -> None:
        self.rows = torch.as_tensor(np.asarray(variants), dtype=torch.long)

    def _project_out(self, _module, _inputs, output):
        hidden = _hidden(output)
        units = self.units[self.rows].to(device=hidden.device, dtype=hidden.dtype).unsqueeze(-1)  # [B, d, 1]
        return _replace_hidden(output, hidden - torch.bmm(hidden, units) * units.transpose(1, 2))

    def _add_at(self, layer: int):
        def hook(_module, _inputs, output):
            hidden = _hidden(output)
            added = self.additions[self.rows] * (self.layers[self.rows] == layer).unsqueeze(-1)
            return _replace_hidden(output, hidden + added.to(device=hidden.device, dtype=hidden.dtype).unsqueeze(1))

        return hook

    def __enter__(self) -> RowInterventions:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)
