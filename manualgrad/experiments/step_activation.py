"""step-activation: the perceptron's threshold unit stops backpropagation; a straight-through
estimator (STE) restores it.

φ(z) = 1[z > 0] is flat on both sides of 0, so φ'(z) = 0 wherever it exists and every gradient
below a step layer is δ_{k-1} = W_kᵀ (δ_k ⊙ φ'(z)) = 0: the first layer never moves, and only the
output layer (which sees the fixed random binary features) learns. The STE keeps the step in the
forward pass but backpropagates as if φ were the clipped identity, φ'(z) := 1[|z| ≤ 1], so the
hidden layer learns features.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from manualgrad.experiments import common
from manualgrad.experiments.log import ExperimentLog
from manualgrad.optim import Adam
from manualgrad.train.data import DataSplit
from manualgrad.train.model import build_mlp

CLAIM = "a step activation passes exactly zero gradient to the layers below; the STE trains them"

MODES = {"step": "step", "ste": "step-ste"}


def train_step_net(activation: str, data: DataSplit, epochs: int, seed: int):
    """Train one 16-unit step MLP; its history, first-layer gradient norm per step, and the
    largest change of any first-layer weight."""
    torch.manual_seed(seed)
    model = build_mlp(data.num_features, (16,), data.num_classes, activation, "xavier")
    first = model.fc1
    start = first.weight.detach().clone()
    grad_norms: list[float] = []
    history = common.train(
        model,
        data,
        Adam(model.parameters(), lr=0.01),
        epochs,
        batch_size=64,
        after_step=lambda: grad_norms.append(float(first.weight.grad.norm())),
        seed=seed,
    )
    return history, grad_norms, float((first.weight.detach() - start).abs().max())


def run(log: ExperimentLog, quick: bool) -> dict[str, float]:
    """Train a 16-unit step MLP on digits with the true (zero) gradient and with the STE."""
    data = common.digits(log.seed)
    epochs = 6 if quick else 40
    figures: dict[str, float] = {}
    figure, (acc_axis, grad_axis) = plt.subplots(1, 2, figsize=(10, 3.5))
    for name, activation in MODES.items():
        history, grad_norms, change = train_step_net(activation, data, epochs, log.seed)
        log.curve(f"val_accuracy/{name}", history.val_accuracy)
        log.curve(f"first_layer_grad_norm/{name}", grad_norms)
        figures[f"{name}_val_accuracy"] = history.val_accuracy[-1]
        figures[f"{name}_first_layer_max_grad_norm"] = max(grad_norms)
        figures[f"{name}_first_layer_weight_change"] = change
        acc_axis.plot(range(1, epochs + 1), history.val_accuracy, marker="o", label=name)
        grad_axis.plot(grad_norms, label=name)
    acc_axis.set(xlabel="epoch", ylabel="val accuracy", title="Digits, 16 step units")
    grad_axis.set(xlabel="step", ylabel="‖dL/dW₁‖", title="Gradient reaching the first layer")
    for axis in (acc_axis, grad_axis):
        axis.legend()
    log.figure("step_vs_ste", figure)
    return figures
