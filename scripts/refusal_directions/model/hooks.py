"""Forward hooks on the residual stream of a loaded model: the modules that write into it, and the two
interventions the conditions are made of (interventions/condition_hooks.py turns a condition into these).

- Directional ablation everywhere (Arditi et al. 2024): x <- x - (x . r) r on the embedding output and
  on every attention and MLP output, so the residual stream never carries the direction r (unit). With a
  basis Q of k orthonormal rows, x <- x - Q^T Q x (the whole subspace). Affine concept editing (Marshall et
  al. 2024) holds the component at a reference point's instead of zero, h <- h - Q^T Q (h - mu_l), with each
  layer's own reference o_l = Q^T Q mu_l: the embedding output gets o_0 and block l's output o_l - o_(l-1), so
  the residual stream after block l has o_l in the subspace (and o_(l-1) inside the block).
- Directional ablation at one layer: the same projection on the output of decoder block l only.
- Activation addition: x <- x + v on the output of decoder block l, at every position; the affine addition
  first removes the subspace's component there (x <- x - Q^T Q x + v: the projection moved to v's).
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


def orthonormal_basis(vectors: np.ndarray) -> np.ndarray:
    """Orthonormal rows spanning the rows of ``vectors`` [k, d] (one vector [d]: its unit vector, [1, d]);
    the first row keeps the first vector's sense."""
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim == 1:
        return (vectors / np.linalg.norm(vectors))[None]
    q, r = np.linalg.qr(vectors.T)
    return (q * np.sign(np.diag(r))).T


def project_out(hidden: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``hidden`` without its component in the span of the orthonormal rows of ``basis`` [k, d] (differentiable)."""
    if len(basis) == 1:  # one direction: the dot product, as every k = 1 result has been computed
        direction = basis[0]
        return hidden - (hidden @ direction).unsqueeze(-1) * direction
    return hidden - (hidden @ basis.T) @ basis


def _project_out(basis: torch.Tensor, offset: torch.Tensor | None = None):
    def hook(_module, _inputs, output):
        hidden = _hidden(output)
        edited = project_out(hidden, basis.to(device=hidden.device, dtype=hidden.dtype))
        if offset is not None:
            edited = edited + offset.to(device=hidden.device, dtype=hidden.dtype)
        return _replace_hidden(output, edited)

    return hook


def _add(vector: torch.Tensor, replaced: torch.Tensor | None = None):
    def hook(_module, _inputs, output):
        hidden = _hidden(output)
        if replaced is not None:
            hidden = project_out(hidden, replaced.to(device=hidden.device, dtype=hidden.dtype))
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


def _basis_tensor(directions: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(orthonormal_basis(directions), dtype=torch.float32)


def ablate_everywhere(model, directions: np.ndarray, references: np.ndarray | None = None):
    """Ablate the span of ``directions`` (one [d] or k [k, d]) from every residual-stream writer; with
    ``references`` [n_layers, d] (each layer's reference point's component in that span: an affine edit),
    the residual stream holds each layer's instead of zero."""
    basis = _basis_tensor(directions)
    if references is None:
        return ablate_span(model, basis)
    embedding, *writers = residual_writers(model)
    references = torch.as_tensor(references, dtype=torch.float32)
    steps = [(block, _add(references[layer] - references[layer - 1]))
             for layer, block in enumerate(decoder_layers(model)) if layer > 0]  # fmt: skip
    return hooks(
        [(embedding, _project_out(basis, references[0])), *((m, _project_out(basis)) for m in writers), *steps]
    )


def ablate_span(model, basis: torch.Tensor):
    """``ablate_everywhere`` with a tensor basis of orthonormal rows, kept in the autograd graph (the optimized
    directions' gradients flow through it)."""
    return hooks([(module, _project_out(basis)) for module in residual_writers(model)])


def add_vector(model, vector: torch.Tensor, layer: int, replaced: torch.Tensor | None = None):
    """``add_at_layer`` with tensors (a basis of orthonormal rows for ``replaced``), kept in the autograd graph."""
    return hooks([(decoder_layers(model)[layer], _add(vector, replaced))])


def ablate_at_layer(model, directions: np.ndarray, layer: int):
    return hooks([(decoder_layers(model)[layer], _project_out(_basis_tensor(directions)))])


def add_at_layer(model, vector: np.ndarray, layer: int, replaced: np.ndarray | None = None):
    """Add ``vector`` to block ``layer``'s output; with ``replaced`` (directions), the output's component in
    their span is removed first (the affine addition)."""
    basis = None if replaced is None else _basis_tensor(replaced)
    return add_vector(model, torch.as_tensor(vector, dtype=torch.float32), layer, basis)


class RowInterventions:
    """Interventions that differ by batch row. Variant v projects ``units[v]`` out of every residual-stream
    writer's output (ablation everywhere; a zero row changes nothing) and adds ``additions[v]`` to the output
    of block ``layers[v]`` (none where the layer is -1), at every position. The affine edits (README:
    "Direction methods") add two optional arrays: ``references[v]`` [n_layers, d], each layer's reference
    component that the ablation holds (``ablate_everywhere``), and ``replaced[v]``, a unit vector whose
    component block ``layers[v]``'s output loses before the addition. ``select(variants)`` says which variant
    each row of the next forward runs under. Use as a context manager: the hooks are active inside."""

    def __init__(self, model, units: np.ndarray, additions: np.ndarray, layers: np.ndarray,
                 references: np.ndarray | None = None, replaced: np.ndarray | None = None):  # fmt: skip
        self.units = torch.as_tensor(units, dtype=torch.float32)
        self.additions = torch.as_tensor(additions, dtype=torch.float32)
        self.layers = torch.as_tensor(layers, dtype=torch.long)
        self.references = None if references is None else torch.as_tensor(references, dtype=torch.float32)
        self.replaced = None if replaced is None else torch.as_tensor(replaced, dtype=torch.float32)
        self.rows = torch.zeros(0, dtype=torch.long)
        embedding, *writers = residual_writers(model)
        ablations = [(embedding, self._project_out_and_offset), *((module, self._project_out) for module in writers)]
        blocks = decoder_layers(model)
        additions_at = [(blocks[layer], self._add_at(layer)) for layer in sorted(set(self.layers.tolist()) - {-1})]
        held = [] if references is None else [(block, self._reference_step(layer)) for layer, block in
                                              enumerate(blocks) if layer > 0]  # fmt: skip
        self._hooks = hooks(ablations + held + additions_at)

    @property
    def n_variants(self) -> int:
        return len(self.units)

    def select(self, variants) -> None:
        self.rows = torch.as_tensor(np.asarray(variants), dtype=torch.long)

    @staticmethod
    def _without(hidden: torch.Tensor, units: torch.Tensor) -> torch.Tensor:
        """Each row of ``hidden`` [B, T, d] without its component along its row of ``units`` [B, d]."""
        units = units.to(device=hidden.device, dtype=hidden.dtype).unsqueeze(-1)  # [B, d, 1]
        return hidden - torch.bmm(hidden, units) * units.transpose(1, 2)

    def _project_out(self, _module, _inputs, output):
        return _replace_hidden(output, self._without(_hidden(output), self.units[self.rows]))

    def _project_out_and_offset(self, _module, _inputs, output):
        hidden = self._without(_hidden(output), self.units[self.rows])
        if self.references is not None:
            first = self.references[self.rows, 0]
            hidden = hidden + first.to(device=hidden.device, dtype=hidden.dtype).unsqueeze(1)
        return _replace_hidden(output, hidden)

    def _reference_step(self, layer: int):
        """Block ``layer``'s output moves from the previous layer's reference component to its own."""

        def hook(_module, _inputs, output):
            hidden = _hidden(output)
            step = self.references[self.rows, layer] - self.references[self.rows, layer - 1]
            return _replace_hidden(output, hidden + step.to(device=hidden.device, dtype=hidden.dtype).unsqueeze(1))

        return hook

    def _add_at(self, layer: int):
        def hook(_module, _inputs, output):
            hidden = _hidden(output)
            here = (self.layers[self.rows] == layer).unsqueeze(-1)
            if self.replaced is not None:
                hidden = self._without(hidden, self.replaced[self.rows] * here)
            added = self.additions[self.rows] * here
            return _replace_hidden(output, hidden + added.to(device=hidden.device, dtype=hidden.dtype).unsqueeze(1))

        return hook

    def __enter__(self) -> RowInterventions:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)
