"""zero-init: why weights start random, not zero.

If every hidden unit starts with the same incoming weights, each computes the same activation,
receives the same gradient dL/dW_j = δ_j · x with δ_j identical across j, and takes the same
step: the units stay copies of each other for ever and the layer is as good as one unit. With
all-zero weights it is worse — dL/dh = W₂ᵀ δ = 0, so only the biases ever learn. A random start
breaks the symmetry.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

import manualgrad.nn as nn
from manualgrad.experiments import common
from manualgrad.experiments.log import ExperimentLog
from manualgrad.optim import SGD
from manualgrad.train.model import build_mlp

CLAIM = "identical (zero or constant) initial weights never break symmetry; random init does"

STARTS = {
    "zeros": lambda w: nn.init.zeros_(w),
    "constant": lambda w: nn.init.constant_(w, 0.05),
    "random": lambda w: nn.init.xavier_uniform_(w, gain=nn.init.calculate_gain("tanh")),
}


def unit_spread(layer: nn.Linear) -> float:
    """Largest difference between any hidden unit's incoming weights and unit 0's."""
    weight = layer.weight.detach()
    return float((weight - weight[:1]).abs().max())


def run(log: ExperimentLog, quick: bool) -> dict[str, float]:
    """Train the same tanh MLP on digits from each start; measure unit spread and accuracy."""
    data = common.digits(log.seed)
    epochs = 5 if quick else 40
    figures: dict[str, float] = {}
    figure, axes = plt.subplots(1, len(STARTS), figsize=(11, 3))
    for axis, (name, start) in zip(axes, STARTS.items(), strict=True):
        torch.manual_seed(log.seed)
        model = build_mlp(data.num_features, (32,), data.num_classes, "tanh", "xavier")
        for module in model.modules():
            if isinstance(module, nn.Linear):
                start(module.weight)
        history = common.train(
            model,
            data,
            SGD(model.parameters(), lr=0.1, momentum=0.9),
            epochs,
            batch_size=64,
            seed=log.seed,
        )
        log.curve(f"val_accuracy/{name}", history.val_accuracy)
        figures[f"{name}_hidden_unit_spread"] = unit_spread(model.fc1)
        figures[f"{name}_val_accuracy"] = history.val_accuracy[-1]
        axis.imshow(model.fc1.weight.detach().numpy(), aspect="auto", cmap="coolwarm")
        axis.set(title=f"{name}: first-layer weights", xlabel="input", ylabel="hidden unit")
    log.figure("first_layer_weights", figure)
    return figures
