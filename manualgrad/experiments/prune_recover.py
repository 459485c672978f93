"""prune-recover: magnitude pruning costs accuracy; a few epochs of masked backprop recover it.

``manualgrad.prune.global_unstructured`` zeroes the fraction p of all weights with the smallest
|w| (one ranking over every layer). Zeroing wᵢ changes the loss by ≈ −gᵢwᵢ + ½Hᵢᵢwᵢ², small for
small |wᵢ| at a minimum — but not nothing, and at 80–90 % the removed weights add up. The masks
then stay in place during fine-tuning: w = w_orig ⊙ mask, so ∂L/∂w_orig = ∂L/∂w ⊙ mask is exactly
0 for pruned entries and the surviving weights re-learn to compensate.
"""

from __future__ import annotations

import copy

import matplotlib.pyplot as plt
import torch

from manualgrad import prune
from manualgrad.experiments import common
from manualgrad.experiments.log import ExperimentLog
from manualgrad.optim import Adam
from manualgrad.train.data import DataSplit
from manualgrad.train.model import build_mlp

CLAIM = "pruning 50/80/90% of weights drops accuracy; a few masked epochs recover it"

AMOUNTS = (0.5, 0.8, 0.9)
RECOVERY_LR = 1e-2  # pruning moves the net far from its minimum: fine-tune with a larger step


def linear_weights(model: torch.nn.Module) -> list[tuple[torch.nn.Module, str]]:
    """``(module, "weight")`` for every Linear layer."""
    return [(m, "weight") for m in model.modules() if isinstance(m, torch.nn.Linear)]


def weight_sparsity(model: torch.nn.Module) -> float:
    """Fraction of exactly-zero entries of the Linear weights (pruned ones: orig ⊙ mask), from
    :func:`manualgrad.prune.sparsity_report`."""
    report = prune.sparsity_report(model)
    sizes = {
        f"{name}.weight": module.weight.numel()
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
    }
    return sum(report[key] * size for key, size in sizes.items()) / sum(sizes.values())


def prune_and_recover(
    dense: torch.nn.Module, data: DataSplit, amount: float, epochs: int, seed: int
):
    """Prune a copy of ``dense`` by ``amount``; its accuracy right after pruning, the history of
    the masked fine-tuning, and the weight sparsity at the end."""
    model = copy.deepcopy(dense)
    prune.global_unstructured(linear_weights(model), amount=amount)
    pruned_accuracy = common.accuracy(model, data.x_val, data.y_val)
    history = common.train(
        model, data, Adam(model.parameters(), lr=RECOVERY_LR), epochs, 64, seed=seed
    )
    return pruned_accuracy, history, weight_sparsity(model)


def run(log: ExperimentLog, quick: bool) -> dict[str, float]:
    """Train a dense MLP, then prune each amount and fine-tune with the masks."""
    data = common.digits(log.seed)
    train_epochs, recover_epochs = (10, 3) if quick else (30, 5)
    torch.manual_seed(log.seed)
    dense = build_mlp(data.num_features, (128, 64), data.num_classes, "relu", "he")
    history = common.train(dense, data, Adam(dense.parameters(), lr=1e-3), train_epochs, 64)
    log.curve("dense/val_accuracy", history.val_accuracy)
    dense_accuracy = history.val_accuracy[-1]
    figures = {"dense_val_accuracy": dense_accuracy}
    rows = ["| pruned | after pruning | after recovery | sparsity |", "|---|---|---|---|"]
    figure, (bar_axis, curve_axis) = plt.subplots(1, 2, figsize=(11, 3.8))
    for i, amount in enumerate(AMOUNTS):
        pruned, recovery, sparsity = prune_and_recover(
            dense, data, amount, recover_epochs, log.seed
        )
        percent = round(100 * amount)
        log.curve(f"recovery_val_accuracy/{percent}", [pruned, *recovery.val_accuracy])
        figures[f"pruned_{percent}_val_accuracy"] = pruned
        figures[f"recovered_{percent}_val_accuracy"] = recovery.val_accuracy[-1]
        figures[f"recovered_{percent}_sparsity"] = sparsity
        rows.append(
            f"| {percent}% | {pruned:.3f} | {recovery.val_accuracy[-1]:.3f} | {sparsity:.3f} |"
        )
        bar_axis.bar(
            [i - 0.2, i + 0.2],
            [pruned, recovery.val_accuracy[-1]],
            width=0.4,
            color=["tab:red", "tab:green"],
            label=["pruned", "recovered"] if i == 0 else None,
        )
        curve_axis.plot([pruned, *recovery.val_accuracy], marker="o", label=f"{percent}% pruned")
    log.text("prune_table", f"dense val accuracy {dense_accuracy:.3f}\n\n" + "\n".join(rows))
    bar_axis.axhline(dense_accuracy, color="black", linestyle="--", label="dense")
    bar_axis.set(
        xticks=range(len(AMOUNTS)),
        xticklabels=[f"{round(100 * a)}%" for a in AMOUNTS],
        ylabel="val accuracy",
        title="Magnitude pruning",
    )
    curve_axis.set(xlabel="fine-tuning epoch", ylabel="val accuracy", title="Recovery with masks")
    for axis in (bar_axis, curve_axis):
        axis.legend()
    log.figure("prune_recover", figure)
    return figures
