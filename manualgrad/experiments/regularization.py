r"""regularization: L1 drives weights exactly to zero, L2 only shrinks them.

L2 adds λ·½‖W‖² (gradient λW): each step multiplies W by (1 − ηλ) on top of the data gradient,
a shrinkage proportional to the weight, so no weight ever reaches exactly 0. L1 adds λ‖W‖₁
(subgradient λ·sign W): a constant pull of ηλ towards 0 per step. A subgradient step overshoots
and jitters around 0; the proximal step (:func:`manualgrad.regularization.l1_prox_`,
soft-thresholding w ← sign(w)·max(|w| − ηλ, 0) after each plain SGD step = ISTA) lands on 0
exactly and keeps every weight whose data gradient cannot beat the pull at 0. Sparsity is the
fraction of weight entries that are exactly 0.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from torch import Tensor

from manualgrad.experiments import common
from manualgrad.experiments.log import ExperimentLog
from manualgrad.optim import SGD
from manualgrad.regularization import l1_prox_, l2_penalty
from manualgrad.train.data import DataSplit
from manualgrad.train.model import build_mlp

CLAIM = "L1 (proximal) sets many weights exactly to 0; L2 shrinks all and zeroes none"

LR = 0.1
QUICK_LAMBDAS = (3e-3,)
FULL_LAMBDAS = (1e-3, 3e-3, 1e-2)


def weights(model: torch.nn.Module) -> list[Tensor]:
    """The Linear weight matrices (biases are not regularised)."""
    return [p for name, p in model.named_parameters() if name.endswith("weight")]


def sparsity(model: torch.nn.Module) -> float:
    """Fraction of weight entries that are exactly zero."""
    ws = weights(model)
    return sum(int((w == 0).sum()) for w in ws) / sum(w.numel() for w in ws)


def train_regularised(data: DataSplit, method: str, lam: float, epochs: int, seed: int):
    """Plain SGD on a 64-unit ReLU MLP with no penalty, λ·½‖W‖² in the loss (L2), or a proximal
    L1 step after every update; returns the model and its history."""
    torch.manual_seed(seed)
    model = build_mlp(data.num_features, (64,), data.num_classes, "relu", "he")
    penalty = (lambda: lam * l2_penalty(weights(model))) if method == "l2" else None
    after_step = (lambda: l1_prox_(weights(model), LR * lam)) if method == "l1" else None
    history = common.train(
        model,
        data,
        SGD(model.parameters(), lr=LR),
        epochs,
        batch_size=32,
        penalty=penalty,
        after_step=after_step,
        seed=seed,
    )
    return model, history


def run(log: ExperimentLog, quick: bool) -> dict[str, float]:
    """Sparsity, mean |w| and val accuracy of no penalty, L2 and L1 for each λ."""
    data = common.digits(log.seed)
    epochs = 6 if quick else 30
    lambdas = QUICK_LAMBDAS if quick else FULL_LAMBDAS
    figures: dict[str, float] = {}
    runs = [("none", 0.0)] + [(m, lam) for lam in lambdas for m in ("l2", "l1")]
    figure, (hist_axis, sweep_axis) = plt.subplots(1, 2, figsize=(11, 3.8))
    sweep: dict[str, list[tuple[float, float, float]]] = {"l1": [], "l2": []}
    for method, lam in runs:
        model, history = train_regularised(data, method, lam, epochs, log.seed)
        key = method if method == "none" else f"{method}_{lam:g}"
        flat = torch.cat([w.detach().flatten() for w in weights(model)])
        log.curve(f"val_accuracy/{key}", history.val_accuracy)
        log.histogram(f"weights/{key}", flat)
        figures[f"{key}_sparsity"] = sparsity(model)
        figures[f"{key}_mean_abs_weight"] = float(flat.abs().mean())
        figures[f"{key}_val_accuracy"] = history.val_accuracy[-1]
        if method != "none":
            sweep[method].append((lam, figures[f"{key}_sparsity"], history.val_accuracy[-1]))
        if method == "none" or lam == lambdas[len(lambdas) // 2]:
            hist_axis.hist(
                flat.numpy(), bins=101, range=(-0.6, 0.6), histtype="step", label=key, log=True
            )
    for method, points in sweep.items():
        lams, sparsities, accuracies = zip(*points, strict=True)
        sweep_axis.semilogx(lams, sparsities, marker="o", label=f"{method} sparsity")
        sweep_axis.semilogx(lams, accuracies, marker="s", linestyle="--", label=f"{method} val acc")
    hist_axis.set(xlabel="weight", ylabel="count", title="Weights after training")
    sweep_axis.set(xlabel="λ", title="Sparsity and val accuracy")
    for axis in (hist_axis, sweep_axis):
        axis.legend(fontsize=8)
    log.figure("weights_and_sparsity", figure)
    return figures
