"""Every weight whose output the model adds to the residual stream, found by the names architectures give
their modules: each block's attention output projection and MLP down projection, and in a mixture-of-experts
block every expert's down projection (a list of expert MLPs, or one module holding all experts' down
projections as a 3-D parameter) and the shared expert's. A module of an expert block that this list does not
know stops the export with one line naming it: an edit that skipped it would leave the direction in the
residual stream."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..model.hooks import block_writers, sublayer
from ..workflow.errors import UserError

# The linear layer inside a block's attention and inside its MLP (model.hooks.block_writers) whose output is
# that sub-module's write to the residual stream.
ATTENTION_OUTPUT = ("o_proj", "out_proj", "dense")
MLP_OUTPUT = ("down_proj", "w2", "fc2", "dense_4h_to_h")
# A mixture-of-experts block: its experts, its shared expert(s), and the modules that only route (a router,
# the shared expert's scalar gate), which write nothing to the residual stream.
EXPERTS = "experts"
SHARED_EXPERTS = ("shared_expert", "shared_experts")
ROUTING = ("gate", "router", "shared_expert_gate")
# Fused experts whose down projection is stored [experts, in, out] and applied as x @ W; the others store
# Linear's layout, [experts, out, in], applied as F.linear(x, W[e]).
IN_OUT_EXPERTS = ("GptOssExperts",)


@dataclass(frozen=True)
class ResidualWriter:
    """A weight that writes to the residual stream, the axis of it that indexes the residual stream, and its
    bias (the same axis last), if any."""

    name: str
    weight: torch.Tensor
    output_axis: int
    bias: torch.Tensor | None = None


def _linear(module, names: tuple[str, ...], what: str, model, where: str) -> ResidualWriter:
    linear = sublayer(module, names, what)
    if not isinstance(linear, torch.nn.Linear):
        raise UserError(f"{type(linear).__name__} in {type(model).__name__} is not a linear layer")
    return ResidualWriter(f"{where}.{what}", linear.weight, 0, linear.bias)


def _fused_experts(experts, model, where: str) -> ResidualWriter:
    """The down projections of every expert, stored as one 3-D parameter."""
    for name in MLP_OUTPUT:
        weight = getattr(experts, name, None)
        if isinstance(weight, torch.nn.Parameter) and weight.ndim == 3:
            axis = 2 if type(experts).__name__ in IN_OUT_EXPERTS else 1
            return ResidualWriter(f"{where}.experts.{name}", weight, axis, getattr(experts, f"{name}_bias", None))
    raise UserError(f"{type(model).__name__}: cannot find the down projections of {type(experts).__name__} "
                    f"(looked for a 3-D parameter named {', '.join(MLP_OUTPUT)})")  # fmt: skip


def mlp_writers(mlp, model, where: str) -> list[ResidualWriter]:
    """A dense MLP's down projection, or every expert's and shared expert's of a mixture-of-experts block."""
    experts = getattr(mlp, EXPERTS, None)
    if experts is None:
        return [_linear(mlp, MLP_OUTPUT, "MLP down projection", model, where)]
    unknown = [name for name, _ in mlp.named_children() if name not in (EXPERTS, *SHARED_EXPERTS, *ROUTING)]
    if unknown:
        child = getattr(mlp, unknown[0])
        raise UserError(f"{type(model).__name__}: {type(mlp).__name__} has a module '{unknown[0]}' "
                        f"({type(child).__name__}) whose writes to the residual stream the export does not know; "
                        "an edit without it would leave the direction in the model")  # fmt: skip
    if isinstance(experts, torch.nn.ModuleList):
        writers = [_linear(expert, MLP_OUTPUT, "MLP down projection", model, f"{where}.experts.{index}")
                   for index, expert in enumerate(experts)]  # fmt: skip
    else:
        writers = [_fused_experts(experts, model, where)]
    for name in SHARED_EXPERTS:
        shared = getattr(mlp, name, None)
        if shared is not None:
            writers.append(_linear(shared, MLP_OUTPUT, "MLP down projection", model, f"{where}.{name}"))
    return writers


def residual_writer_weights(model) -> list[ResidualWriter]:
    """Every block's writes to the residual stream (the token embedding is handled apart: its rows)."""
    writers = []
    for index, (attention, mlp) in enumerate(block_writers(model)):
        writers.append(_linear(attention, ATTENTION_OUTPUT, "attention output projection", model, f"block {index}"))
        writers += mlp_writers(mlp, model, f"block {index}")
    return writers
