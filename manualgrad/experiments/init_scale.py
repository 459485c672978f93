"""init-scale: activation std through 10 layers under N(0,1), Xavier and He initialisation.

Var(h_k) = fan_in · Var(W) · E[φ(h_{k-1})²]. With N(0,1) weights the factor is fan_in ≫ 1 and
tanh saturates / ReLU explodes; Xavier (Var(W) = 2/(fan_in+fan_out)) keeps tanh's variance; He
(Var(W) = 2/fan_in) compensates ReLU zeroing half its inputs, where Xavier halves the variance
at every ReLU layer.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

import manualgrad.nn as nn
from manualgrad.experiments.log import ExperimentLog

CLAIM = "N(0,1) saturates tanh and explodes ReLU; Xavier keeps tanh and He keeps ReLU stable"

INITS = {
    "normal": lambda w, _: nn.init.normal_(w, 0.0, 1.0),
    "xavier": lambda w, _: nn.init.xavier_normal_(w),
    "he": lambda w, act: nn.init.kaiming_normal_(w, nonlinearity=act),
}
ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


def activation_stds(activation: str, init: str, width: int, depth: int, batch: int):
    """Std of each layer's activations and the input-layer gradient norm, for one config."""
    layers = []
    for _ in range(depth):
        linear = nn.Linear(width, width, bias=False)
        INITS[init](linear.weight, activation)
        layers += [linear, ACTIVATIONS[activation]()]
    x = torch.randn(batch, width)
    stds = []
    h = x
    for layer in layers:
        h = layer(h)
        if not isinstance(layer, nn.Linear):
            stds.append(float(h.std()))
    h.pow(2).mean().backward()
    return stds, float(layers[0].weight.grad.norm())


def run(log: ExperimentLog, quick: bool) -> dict[str, float]:
    """Std per layer for every (activation, init) pair; ratios of last to first layer."""
    width, depth, batch = (128, 10, 256) if quick else (512, 10, 1024)
    figures: dict[str, float] = {}
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
    for axis, activation in zip(axes, ACTIVATIONS, strict=True):
        for init in INITS:
            torch.manual_seed(log.seed)
            stds, grad_norm = activation_stds(activation, init, width, depth, batch)
            log.curve(f"activation_std/{activation}/{init}", stds)
            log.scalar(f"input_grad_norm/{activation}/{init}", grad_norm, 0)
            figures[f"{activation}_{init}_last_std"] = stds[-1]
            figures[f"{activation}_{init}_input_grad_norm"] = grad_norm
            axis.semilogy(range(1, depth + 1), stds, marker="o", label=init)
        axis.set(title=activation, xlabel="layer", ylabel="activation std")
        axis.legend()
    log.figure("activation_std", figure)
    return figures
