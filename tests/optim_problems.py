"""Small problems for the optimizer tests: scikit-learn's digits (offline) and a manualgrad MLP."""

from __future__ import annotations

from functools import cache

import torch
from sklearn.datasets import load_digits

import manualgrad.nn as mnn

Split = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


@cache
def digits(dtype: torch.dtype = torch.float32) -> Split:
    """(train_x, train_y, val_x, val_y): pixels scaled to [0, 1], a seeded 80/20 split."""
    data = load_digits()
    x = torch.tensor(data.data, dtype=dtype) / 16
    y = torch.tensor(data.target)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    cut = len(y) * 4 // 5
    return x[:cut], y[:cut], x[cut:], y[cut:]


@cache
def zeros_and_ones(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Every 0 and 1 of digits: inputs (N, 64) and float targets in {0, 1}."""
    data = load_digits()
    keep = data.target <= 1
    x = torch.tensor(data.data[keep], dtype=dtype) / 16
    return x, torch.tensor(data.target[keep], dtype=dtype)


def mlp(hidden: int = 32, seed: int = 0, dtype: torch.dtype = torch.float32) -> mnn.Sequential:
    """64 → hidden → 10 with a tanh, from manualgrad layers."""
    torch.manual_seed(seed)
    return mnn.Sequential(mnn.Linear(64, hidden), mnn.Tanh(), mnn.Linear(hidden, 10)).to(dtype)


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows whose arg-max logit is the label."""
    with torch.no_grad():
        return (model(x).argmax(dim=1) == y).double().mean().item()
