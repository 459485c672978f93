r"""hinge-vs-ce: binary hinge (SVM) vs logistic vs squared loss for a linear classifier.

With labels y ∈ {−1, +1}, score f = wᵀx + b and margin m = y·f, the three losses and their
gradients ∂l/∂f are

    hinge     max(0, 1 − m)        −y·1[m < 1]       zero once a point is beyond the margin
    logistic  log(1 + e^{−m})      −y·σ(−m)          never zero, but decays like e^{−m}
    squared   (f − y)² = (1 − m)²  −2y·(1 − m)       grows again for m > 1

so the hinge solution (with λ·½‖w‖², a soft-margin SVM) is decided only by the points with
m ≤ 1 — the support vectors — and the squared loss is pulled by points that are *too* correct:
a far cluster of correctly labelled points drags its boundary into the other class, while the
hinge ignores it and the logistic loss barely notices.
"""

from __future__ import annotations

from collections.abc import Callable

import matplotlib.pyplot as plt
import torch
from torch import Tensor

import manualgrad.nn as nn
import manualgrad.nn.functional as F
from manualgrad.experiments import common
from manualgrad.experiments.log import ExperimentLog
from manualgrad.optim import Adam, lr_scheduler
from manualgrad.regularization import l2_penalty

CLAIM = (
    "hinge is set by a few support vectors and, like logistic, ignores far correct points; "
    "squared loss is dragged by them"
)

LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "hinge": F.hinge_loss,
    "logistic": lambda f, y: F.binary_cross_entropy_with_logits(f, (y + 1) / 2),
    "squared": F.mse_loss,
}
WEIGHT_DECAY = 3e-2
SUPPORT = 1.05  # a training point with margin below this counts as a support vector


def fit_linear(loss_fn, x: Tensor, y: Tensor, steps: int, seed: int) -> nn.Linear:
    """Full-batch Adam, lr cosine-annealed to 0 (so the non-smooth hinge settles), on
    loss(f, y) + λ·½‖w‖² for a linear score f = wᵀx + b, y ∈ {−1, +1}."""
    torch.manual_seed(seed)
    model = nn.Linear(x.shape[1], 1)
    optimizer = Adam(model.parameters(), lr=0.05)
    schedule = lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(x).squeeze(1), y) + WEIGHT_DECAY * l2_penalty(model.weight)
        loss.backward()
        optimizer.step()
        schedule.step()
    return model


def margins(model: nn.Linear, x: Tensor, y: Tensor) -> Tensor:
    """Functional margins m = y·f(x)."""
    with torch.no_grad():
        return y * model(x).squeeze(1)


def noisy_blobs(
    seed: int, n: int = 200, outliers: int = 40
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Two overlapping Gaussian classes in 2-d (centres (±1, 0), σ = 0.8) for training plus
    ``outliers`` far, correctly labelled +1 points at (6, 6) ± 0.5; a clean test set from the
    two Gaussians. Returns x_train, y_train, x_test, y_test."""
    generator = torch.Generator().manual_seed(seed)

    def blobs(count: int) -> tuple[Tensor, Tensor]:
        y = torch.where(torch.rand(count, generator=generator) < 0.5, -1.0, 1.0)
        x = 0.8 * torch.randn(count, 2, generator=generator)
        x[:, 0] += y
        return x, y

    x_train, y_train = blobs(n)
    far = torch.tensor([6.0, 6.0]) + 0.5 * torch.randn(outliers, 2, generator=generator)
    x_test, y_test = blobs(1000)
    return torch.cat([x_train, far]), torch.cat([y_train, torch.ones(outliers)]), x_test, y_test


def digits_figures(log: ExperimentLog, steps: int, axis) -> dict[str, float]:
    """Fit each loss on digits 0 vs 1; val accuracy, the smallest geometric margin
    min yᵢf(xᵢ)/‖w‖ over the training set, and the hinge's fraction of support vectors."""
    data = common.digit_pair(0, 1, seed=log.seed)
    y_train, y_val = 2.0 * data.y_train - 1, 2.0 * data.y_val - 1
    figures = {}
    for name, loss_fn in LOSSES.items():
        model = fit_linear(loss_fn, data.x_train, y_train, steps, log.seed)
        train_margins = margins(model, data.x_train, y_train)
        geometric = train_margins / model.weight.detach().norm()
        log.histogram(f"digits_geometric_margin/{name}", geometric)
        figures[f"digits_{name}_val_accuracy"] = float(
            (margins(model, data.x_val, y_val) > 0).float().mean()
        )
        figures[f"digits_{name}_min_geometric_margin"] = float(geometric.min())
        if name == "hinge":
            support = float((train_margins < SUPPORT).float().mean())
            figures["digits_hinge_support_vector_fraction"] = support
        line = axis.hist(geometric.numpy(), bins=40, histtype="step", label=name)[2][0]
        axis.axvline(float(geometric.min()), color=line.get_edgecolor(), linestyle=":")
    axis.set(
        xlabel="geometric margin y·f/‖w‖ (dotted: smallest)",
        ylabel="training points",
        title="Digits 0 vs 1",
    )
    axis.legend()
    return figures


def blob_figures(log: ExperimentLog, steps: int, axis) -> dict[str, float]:
    """Fit each loss on the noisy 2-d set with far outliers; test accuracy, and the boundaries
    drawn (with the hinge's margins f = ±1 dashed)."""
    x, y, x_test, y_test = noisy_blobs(log.seed)
    axis.scatter(x[:, 0].numpy(), x[:, 1].numpy(), c=y.numpy(), cmap="coolwarm", s=8, alpha=0.6)
    grid = torch.linspace(-4, 8, 2).numpy()
    figures = {}
    for name, loss_fn in LOSSES.items():
        model = fit_linear(loss_fn, x, y, steps, log.seed)
        figures[f"blobs_{name}_test_accuracy"] = float(
            (margins(model, x_test, y_test) > 0).float().mean()
        )
        (w1, w2), b = model.weight.detach()[0].tolist(), float(model.bias.detach())
        line = axis.plot(grid, -(w1 * grid + b) / w2, label=f"{name}: f = 0")[0]
        if name == "hinge":
            for level in (-1.0, 1.0):
                axis.plot(
                    grid, (level - w1 * grid - b) / w2, linestyle="--", color=line.get_color()
                )
    axis.set(xlim=(-4, 8), ylim=(-4, 8), title="Noisy 2-d set with far +1 outliers")
    axis.legend(fontsize=8)
    return figures


def run(log: ExperimentLog, quick: bool) -> dict[str, float]:
    """Margins on digits 0 vs 1; decision boundaries on the noisy 2-d set."""
    steps = 200 if quick else 600
    figure, (digits_axis, blob_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    figures = digits_figures(log, steps, digits_axis)
    figures.update(blob_figures(log, steps, blob_axis))
    log.figure("hinge_vs_ce", figure)
    return figures
