"""Convergence sanity: every optimizer, at its entry's usual kwargs, trains a manualgrad MLP on
digits to ≥ 90% validation accuracy within its entry's full-batch budget of steps."""

from __future__ import annotations

import pytest
from optim_problems import accuracy, digits, mlp

import manualgrad.nn.functional as F
from manualgrad.testing.entries import OPTIMIZERS
from manualgrad.testing.optim import closure_for

BUDGETS = [
    pytest.param(info.ours, info.usual, info.budget, id=info.name)
    for info in OPTIMIZERS
    if info.usual is not None
]


@pytest.mark.parametrize(("cls", "kwargs", "steps"), BUDGETS)
def test_reaches_90_percent_on_digits(cls, kwargs, steps):
    train_x, train_y, val_x, val_y = digits()
    model = mlp(hidden=32)
    optimizer = cls(model.parameters(), **kwargs)
    closure = closure_for(
        optimizer, cls.second_order, lambda: F.cross_entropy(model(train_x), train_y)
    )
    for _ in range(steps):
        optimizer.step(closure)
    assert accuracy(model, val_x, val_y) >= 0.9
