"""skip-connections: the gradient reaching the first layer of a 20-layer net, plain vs residual.

In a plain stack dL/dh_0 = J_1ᵀ ⋯ J_20ᵀ dL/dh_20, a product of 20 Jacobians that shrinks
geometrically when each has norm < 1 (tanh, sigmoid). A residual block h_k = h_{k-1} + f(h_{k-1})
has Jacobian I + J_f, so the product always contains the identity path and the gradient survives.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

import manualgrad.nn as nn
from manualgrad.experiments.log import ExperimentLog

CLAIM = (
    "the first layer of a 20-layer plain net gets a vanishing gradient; a residual net's survives"
)


class Residual(nn.Module):
    """h ↦ h + f(h): the skip connection."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Add the block's output to its input."""
        return input + self.block(input)


def stack(depth: int, width: int, residual: bool) -> nn.Sequential:
    """``depth`` Linear+Sigmoid blocks, each wrapped in a skip connection if ``residual``."""
    blocks = []
    for _ in range(depth):
        block = nn.Sequential(nn.Linear(width, width), nn.Sigmoid())
        blocks.append(Residual(block) if residual else block)
    return nn.Sequential(*blocks, nn.Linear(width, 1))


def layer_grad_norms(net: nn.Sequential, batch: int, width: int) -> list[float]:
    """Gradient norm of every block's weight for a unit-variance regression batch."""
    x, y = torch.randn(batch, width), torch.randn(batch, 1)
    (net(x) - y).pow(2).mean().backward()
    norms = []
    for module in net.modules():
        if isinstance(module, nn.Linear) and module.out_features == width:
            norms.append(float(module.weight.grad.norm()))
    return norms


def run(log: ExperimentLog, quick: bool) -> dict[str, float]:
    """Gradient norms per layer for the plain and the residual stack."""
    depth, width, batch = (20, 32, 64) if quick else (20, 128, 512)
    figures = {}
    figure, axis = plt.subplots(figsize=(5, 3.5))
    for name, residual in (("plain", False), ("residual", True)):
        torch.manual_seed(log.seed)
        norms = layer_grad_norms(stack(depth, width, residual), batch, width)
        log.curve(f"grad_norm_by_layer/{name}", norms)
        figures[f"{name}_first_layer_grad_norm"] = norms[0]
        figures[f"{name}_last_layer_grad_norm"] = norms[-1]
        axis.semilogy(range(1, depth + 1), norms, marker="o", label=name)
    figures["residual_over_plain_first_layer"] = (
        figures["residual_first_layer_grad_norm"] / figures["plain_first_layer_grad_norm"]
    )
    axis.set(xlabel="layer", ylabel="‖dL/dW‖", title="Gradient reaching each layer (sigmoid)")
    axis.legend()
    log.figure("grad_norm_by_layer", figure)
    return figures
