"""linear-collapse: with a linear activation a deep net is one affine layer and cannot fit XOR.

With φ(z) = 2z, layer k computes h_k = 2(W_k h_{k-1} + b_k), so five layers compose to
h_5 = A x + c with A = 2⁵ W_5 ⋯ W_1 — one matrix. An affine map cannot separate XOR; the same
five layers with ReLU can.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

import manualgrad.nn as nn
import manualgrad.nn.functional as F
from manualgrad.experiments.log import ExperimentLog
from manualgrad.optim import Adam

CLAIM = "5 layers with φ(z)=2z equal one affine layer (to 1e-6) and cannot fit XOR; ReLU can"

XOR_INPUTS = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_TARGETS = torch.tensor([[0.0], [1.0], [1.0], [0.0]])


class Double(nn.Module):
    """The lecture's linear activation φ(z) = 2z (derivative 2 everywhere)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Return 2·input."""
        return 2 * input


def deep_net(activation: type[nn.Module], width: int = 8, depth: int = 5) -> nn.Sequential:
    """``depth`` Linear layers with ``activation`` between them, 2 inputs, 1 output."""
    sizes = [2] + [width] * (depth - 1) + [1]
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < depth - 1:
            layers.append(activation())
    return nn.Sequential(*layers)


def collapse(net: nn.Sequential) -> tuple[torch.Tensor, torch.Tensor]:
    """The single affine map (A, c) that a net of Linear and Double layers computes."""
    matrix = torch.eye(2, dtype=torch.float64)
    offset = torch.zeros(2, dtype=torch.float64)
    for layer in net:
        if isinstance(layer, nn.Linear):
            weight, bias = layer.weight.double(), layer.bias.double()
            matrix, offset = weight @ matrix, weight @ offset + bias
        else:
            matrix, offset = 2 * matrix, 2 * offset
    return matrix, offset


def fit_xor(net: nn.Sequential, steps: int) -> list[float]:
    """Full-batch Adam on XOR with MSE; the loss curve."""
    optimizer = Adam(net.parameters(), lr=0.02)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.mse_loss(net(XOR_INPUTS), XOR_TARGETS)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def run(log: ExperimentLog, quick: bool) -> dict[str, float]:
    """Measure the collapse error and the XOR fits of the linear and the ReLU net."""
    linear_net = deep_net(Double).double()
    probe = torch.randn(64, 2, dtype=torch.float64)
    matrix, offset = collapse(linear_net)
    with torch.no_grad():
        collapse_error = float((linear_net(probe) - (probe @ matrix.T + offset)).abs().max())
    steps = 150 if quick else 1500
    curves = {}
    accuracies = {}
    for name, activation in (("linear", Double), ("relu", nn.ReLU)):
        torch.manual_seed(log.seed)
        net = deep_net(activation)
        curves[name] = fit_xor(net, steps)
        log.curve(f"xor_loss/{name}", curves[name])
        with torch.no_grad():
            predictions = (net(XOR_INPUTS) > 0.5).float()
        accuracies[name] = float((predictions == XOR_TARGETS).float().mean())
    figure, axis = plt.subplots(figsize=(5, 3.5))
    for name, curve in curves.items():
        axis.semilogy(curve, label=f"φ = {'2z' if name == 'linear' else 'ReLU'}")
    axis.axhline(0.25, color="grey", linestyle=":", label="best affine fit (0.25)")
    axis.set(xlabel="step", ylabel="MSE on XOR", title="A linear activation collapses depth")
    axis.legend()
    log.figure("xor_loss", figure)
    return {
        "collapse_max_error": collapse_error,
        "linear_final_mse": curves["linear"][-1],
        "linear_xor_accuracy": accuracies["linear"],
        "relu_final_mse": curves["relu"][-1],
        "relu_xor_accuracy": accuracies["relu"],
    }
