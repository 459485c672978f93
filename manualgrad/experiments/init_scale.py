"""init-scale: activation std through 10 layers under N(0,1), Xavier and He initialisation.

Var(h_k) = fan_in · Var(W) · E[φ(h_{k-1})²]. With N(0,1) weights the factor is fan_in ≫ 1 and
tanh saturates (|h| ≈ 1, φ' ≈ 0) / ReLU explodes; Xavier (Var(W) = gain²·2/(fan_in+fan_out),
with torch's tanh gain 5/3 that offsets tanh's contraction) keeps tanh's variance; He
(Var(W) = 2/fan_in) compensates ReLU zeroing half its inputs, where plain Xavier (gain 1) halves
the variance at every ReLU layer (on these square layers, Xavier with gain g equals He with g).
The input-layer gradient is measured for a fixed random
output gradient, so it shows the product of the layers' Jacobians alone.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

import manualgrad.nn as nn
from manualgrad.experiments.log import ExperimentLog

CLAIM = "N(0,1) saturates tanh and explodes ReLU; Xavier keeps tanh and He keeps ReLU stable"

# Xavier's gain: torch's recommendation for tanh; plain Glorot (1) for ReLU, the mismatch He fixes.
XAVIER_GAIN = {"tanh": nn.init.calculate_gain("tanh"), "relu": 1.0}
INITS = {
    "normal": lambda w, _: nn.init.normal_(w, 0.0, 1.0),
    "xavier": lambda w, act: nn.init.xavier_normal_(w, gain=XAVIER_GAIN[act]),
    "he": lambda w, act: nn.init.kaiming_normal_(w, nonlinearity=act),
}
ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


def activation_stds(activation: str, init: str, width: int, depth: int, batch: int):
    """Std of each layer's activations, the fraction of last-layer outputs with |h| > 0.99
    (saturated tanh), and the input-layer weight-gradient norm for a N(0, 1/batch²) output
    gradient."""
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
            stds.append(float(h.detach().std()))
    h.backward(torch.randn_like(h) / batch)
    saturated = float((h.detach().abs() > 0.99).float().mean())
    return stds, saturated, float(layers[0].weight.grad.norm())


def run(log: ExperimentLog, quick: bool) -> dict[str, float]:
    """Std per layer for every (activation, init) pair; ratios of last to first layer."""
    width, depth, batch = (128, 10, 256) if quick else (512, 10, 1024)
    figures: dict[str, float] = {}
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
    for axis, activation in zip(axes, ACTIVATIONS, strict=True):
        for init in INITS:
            torch.manual_seed(log.seed)
            stds, saturated, grad_norm = activation_stds(activation, init, width, depth, batch)
            log.curve(f"activation_std/{activation}/{init}", stds)
            log.scalar(f"input_grad_norm/{activation}/{init}", grad_norm, 0)
            figures[f"{activation}_{init}_last_std"] = stds[-1]
            figures[f"{activation}_{init}_input_grad_norm"] = grad_norm
            if activation == "tanh":
                figures[f"tanh_{init}_saturated_fraction"] = saturated
            axis.semilogy(range(1, depth + 1), stds, marker="o", label=init)
        axis.set(title=activation, xlabel="layer", ylabel="activation std")
        axis.legend()
    log.figure("activation_std", figure)
    return figures
