r"""batch-modes: full-batch, mini-batch and single-sample training; how many samples a gradient
needs; and the batch gradient as the sum of per-sample gradients.

The loss of a batch B is L_B = (1/|B|) Σ_{i∈B} lᵢ, so its gradient is the average of the
per-sample gradients, ∂L_B/∂w = (1/|B|) Σ_{i∈B} ∂lᵢ/∂w — an unbiased estimate of the full
gradient whose error shrinks like 1/√|B| (the samples' gradients are i.i.d. draws). If 100
samples already point the same way as 10 000, a step on 100 is almost as good and 100 times
cheaper; that is why mini-batches win on wall-clock. Full batch: one exact step per epoch.
Single sample: |B| = 1, many noisy steps per epoch, each paying the per-step overhead.

The per-sample gradients come from ``torch.func.vmap(torch.func.grad(loss_of_one_sample))`` run
through manualgrad's own Functions (their ``generate_vmap_rule``); summed, they equal the gradient
of the summed batch loss, Σᵢ ∂lᵢ/∂w = ∂(Σᵢ lᵢ)/∂w, to rounding.
"""

from __future__ import annotations

import copy
import time

import matplotlib.pyplot as plt
import torch
from torch import Tensor

import manualgrad.nn.functional as F
from manualgrad.experiments import common
from manualgrad.experiments.log import ExperimentLog
from manualgrad.optim import SGD
from manualgrad.train.data import DataSplit
from manualgrad.train.model import build_mlp

CLAIM = (
    "smaller batches learn more per epoch, single samples cost most per second; 128 samples give "
    "the full gradient's direction (cos≈0.96); per-sample grads sum to the batch grad"
)

# name: (batch size, None = full batch; SGD learning rate; share of the epoch budget — the
# single-sample mode pays ~n times the per-step overhead, so it runs fewer epochs)
MODES = {"full": (None, 0.5, 1.0), "mini": (32, 0.1, 1.0), "single": (1, 0.005, 0.25)}
BATCH_SIZES = (1, 4, 16, 64, 128, 256, 1024)


def new_model(data: DataSplit, seed: int) -> torch.nn.Module:
    """The MLP every mode trains, from the same initial weights."""
    torch.manual_seed(seed)
    return build_mlp(data.num_features, (32,), data.num_classes, "relu", "he")


def full_loss(model: torch.nn.Module, data: DataSplit) -> float:
    """Mean cross-entropy over the whole training set."""
    with torch.no_grad():
        return float(F.cross_entropy(model(data.x_train), data.y_train))


def train_mode(data: DataSplit, batch_size: int | None, lr: float, epochs: int, seed: int):
    """Train one mode; full training loss after each epoch, and the training seconds (evaluation
    time excluded) at that point. Returns (model, losses, seconds)."""
    model = new_model(data, seed)
    optimizer = SGD(model.parameters(), lr=lr)
    losses, seconds = [full_loss(model, data)], [0.0]
    start = time.perf_counter()
    excluded = 0.0

    def measure(history: common.History) -> None:
        nonlocal excluded
        now = time.perf_counter()
        seconds.append(now - start - excluded)
        losses.append(full_loss(model, data))
        excluded += time.perf_counter() - now

    common.train(model, data, optimizer, epochs, batch_size, after_epoch=measure, seed=seed)
    return model, losses, seconds


def flat_grad(model: torch.nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """∇ of the mean cross-entropy over (x, y), as one vector."""
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()])


def gradient_agreement(model: torch.nn.Module, data: DataSplit, repeats: int, seed: int):
    """For each batch size: mean cosine similarity of random mini-batch gradients to the full
    gradient, and their mean relative error ‖g_B − g‖ / ‖g‖."""
    full = flat_grad(model, data.x_train, data.y_train)
    generator = torch.Generator().manual_seed(seed)
    n = data.x_train.shape[0]
    cosines, errors = {}, {}
    for size in (b for b in BATCH_SIZES if b <= n):
        cos, err = [], []
        for _ in range(repeats):
            batch = torch.randperm(n, generator=generator)[:size]
            g = flat_grad(model, data.x_train[batch], data.y_train[batch])
            cos.append(float(torch.nn.functional.cosine_similarity(g, full, dim=0)))
            err.append(float((g - full).norm() / full.norm()))
        cosines[size], errors[size] = sum(cos) / repeats, sum(err) / repeats
    return cosines, errors


def per_sample_gap(model: torch.nn.Module, x: Tensor, y: Tensor) -> tuple[float, Tensor]:
    """Max |Σᵢ ∂lᵢ/∂w − ∂(Σᵢ lᵢ)/∂w| in float64, with the per-sample gradients from
    ``vmap(grad(·))``; also returns each sample's gradient norm."""
    model = copy.deepcopy(model).double()
    x = x.double()
    params = {name: p.detach() for name, p in model.named_parameters()}

    def sample_loss(p: dict[str, Tensor], xi: Tensor, yi: Tensor) -> Tensor:
        output = torch.func.functional_call(model, p, (xi.unsqueeze(0),))
        return F.cross_entropy(output, yi.unsqueeze(0))

    per_sample = torch.func.vmap(torch.func.grad(sample_loss), in_dims=(None, 0, 0))(params, x, y)
    model.zero_grad()
    F.cross_entropy(model(x), y, reduction="sum").backward()
    gap = max(
        float((per_sample[name].sum(0) - p.grad).abs().max())
        for name, p in model.named_parameters()
    )
    norms = torch.stack([g.flatten(1).pow(2).sum(1) for g in per_sample.values()]).sum(0).sqrt()
    return gap, norms


def run(log: ExperimentLog, quick: bool) -> dict[str, float]:
    """Train in the three modes, then measure gradient agreement and the per-sample sum."""
    data = common.digits(log.seed, train_size=256 if quick else None)
    budget = 4 if quick else 12
    figures: dict[str, float] = {}
    figure, (epoch_axis, time_axis, cos_axis) = plt.subplots(1, 3, figsize=(14, 3.8))
    trained = {}
    for name, (batch_size, lr, share) in MODES.items():
        epochs = max(1, round(share * budget))
        trained[name], losses, seconds = train_mode(data, batch_size, lr, epochs, log.seed)
        log.curve(f"loss_vs_epoch/{name}", losses)
        for loss, second in zip(losses, seconds, strict=True):
            log.scalar(f"loss_vs_ms/{name}", loss, round(1000 * second))
        figures[f"{name}_loss_after_1_epoch"] = losses[1]
        figures[f"{name}_final_train_loss"] = losses[-1]
        figures[f"{name}_epochs"] = epochs
        figures[f"{name}_seconds_per_epoch"] = seconds[-1] / epochs
        epoch_axis.semilogy(losses, marker="o", label=name)
        time_axis.semilogy(seconds, losses, marker="o", label=name)
    cosines, errors = gradient_agreement(
        new_model(data, log.seed), data, 8 if quick else 32, log.seed
    )
    for size in cosines:
        log.scalar("grad_cosine_vs_batch", cosines[size], size)
        log.scalar("grad_relative_error_vs_batch", errors[size], size)
        figures[f"cosine_batch_{size}"] = cosines[size]
    gap, norms = per_sample_gap(trained["mini"], data.x_train[:64], data.y_train[:64])
    log.histogram("per_sample_grad_norm", norms)
    figures["per_sample_sum_max_error"] = gap
    cos_axis.semilogx(list(cosines), list(cosines.values()), marker="o", label="cosine")
    cos_axis.semilogx(list(errors), list(errors.values()), marker="s", label="relative error")
    epoch_axis.set(xlabel="epoch", ylabel="training loss", title="Per epoch")
    time_axis.set(xlabel="training seconds", ylabel="training loss", title="Per wall-clock")
    cos_axis.set(xlabel="batch size", title="Mini-batch vs full gradient")
    for axis in (epoch_axis, time_axis, cos_axis):
        axis.legend()
    log.figure("batch_modes", figure)
    return figures
