"""A small training loop and data helpers shared by the experiments.

Deliberately plainer than :mod:`manualgrad.train` (no checkpoints, no TensorBoard): each
experiment needs the bare loop of the lecture — forward, loss, backprop, update — with a hook.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

import manualgrad.nn.functional as F
from manualgrad.train.data import DataSplit, load_dataset


@dataclass
class History:
    """Per-epoch training loss and validation accuracy/loss."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)


@functools.lru_cache(maxsize=4)
def _load_digits(seed: int, val_fraction: float) -> DataSplit:
    return load_dataset("digits", seed=seed, val_fraction=val_fraction)


def digits(seed: int = 0, val_fraction: float = 0.25, train_size: int | None = None) -> DataSplit:
    """scikit-learn's digits, standardised; optionally only the first ``train_size`` samples.

    Loaded once per (seed, fraction) and handed out as a fresh :class:`DataSplit` whose tensors
    are shared: reassign its fields freely, never modify the tensors in place."""
    data = dataclasses.replace(_load_digits(seed, val_fraction))
    if train_size is not None:
        data.x_train, data.y_train = data.x_train[:train_size], data.y_train[:train_size]
    return data


def digit_pair(first: int = 0, second: int = 1, seed: int = 0) -> DataSplit:
    """Binary digits ``first`` vs ``second`` with labels 0/1."""
    data = digits(seed)
    for part in ("train", "val"):
        x, y = getattr(data, f"x_{part}"), getattr(data, f"y_{part}")
        keep = (y == first) | (y == second)
        setattr(data, f"x_{part}", x[keep])
        setattr(data, f"y_{part}", (y[keep] == second).long())
    data.num_classes = 2
    return data


def accuracy(model: torch.nn.Module, x: Tensor, y: Tensor) -> float:
    """Fraction of ``x`` classified as ``y`` (argmax of the outputs)."""
    with torch.no_grad():
        return float((model(x).argmax(-1) == y).float().mean())


def train(
    model: torch.nn.Module,
    data: DataSplit,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    batch_size: int | None = None,
    loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
    penalty: Callable[[], Tensor] | None = None,
    after_step: Callable[[], None] | None = None,
    after_epoch: Callable[[History], None] | None = None,
    seed: int = 0,
) -> History:
    """Mini-batch training (``batch_size=None``: full batch); returns the history.

    ``after_step()`` runs after every optimizer step (the gradients are still in ``.grad``),
    ``after_epoch(history)`` after every epoch's evaluation."""
    history = History()
    generator = torch.Generator().manual_seed(seed)
    n = data.x_train.shape[0]
    size = batch_size or n
    for _ in range(epochs):
        model.train()
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, size):
            batch = order[start : start + size]
            optimizer.zero_grad()
            loss = loss_fn(model(data.x_train[batch]), data.y_train[batch])
            objective = loss if penalty is None else loss + penalty()
            objective.backward()
            optimizer.step()
            if after_step is not None:
                after_step()
            total += loss.item() * batch.numel()
        model.eval()
        history.train_loss.append(total / n)
        with torch.no_grad():
            history.val_loss.append(float(loss_fn(model(data.x_val), data.y_val)))
        history.val_accuracy.append(accuracy(model, data.x_val, data.y_val))
        if after_epoch is not None:
            after_epoch(history)
    return history
