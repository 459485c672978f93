"""Convergence sanity: every optimizer, at its usual learning rate, trains a manualgrad MLP on
digits to ≥ 90% validation accuracy within a small full-batch budget."""

from __future__ import annotations

import pytest
from optim_problems import accuracy, digits, mlp
from optim_registry import OPTIMIZERS

import manualgrad.nn.functional as F
from manualgrad.optim import LBFGS

BUDGETS = [
    *[pytest.param(info.ours, info.usual, 60, id=info.name) for info in OPTIMIZERS],
    pytest.param(LBFGS, {"line_search_fn": "strong_wolfe"}, 5, id="LBFGS"),
]


@pytest.mark.parametrize(("cls", "kwargs", "steps"), BUDGETS)
def test_reaches_90_percent_on_digits(cls, kwargs, steps):
    train_x, train_y, val_x, val_y = digits()
    model = mlp(hidden=32)
    optimizer = cls(model.parameters(), **kwargs)

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(train_x), train_y)
        loss.backward()
        return loss

    for _ in range(steps):
        optimizer.step(closure)
    assert accuracy(model, val_x, val_y) >= 0.9
