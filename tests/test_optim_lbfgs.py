"""LBFGS follows torch.optim.LBFGS exactly, with and without the strong-Wolfe line search."""

from __future__ import annotations

import io

import pytest
import torch

import manualgrad.optim as optim

LINE_SEARCHES = [None, "strong_wolfe"]


def rosenbrock(x: torch.Tensor) -> torch.Tensor:
    """f(x, y) = (1 − x)² + 100 (y − x²)², minimum 0 at (1, 1)."""
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def least_squares_problem():
    """Two parameter tensors (weight matrix and bias) of a linear least-squares fit."""
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(30, 4, generator=gen, dtype=torch.float64)
    targets = torch.randn(30, 3, generator=gen, dtype=torch.float64)
    weight = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(3, dtype=torch.float64, requires_grad=True)

    def loss(params):
        w, b = params
        return ((inputs @ w.T + b - targets) ** 2).mean()

    return [weight, bias], loss


def closure_for(optimizer, params, loss_fn):
    def closure():
        optimizer.zero_grad()
        loss = loss_fn(params)
        loss.backward()
        return loss

    return closure


def run(cls, params, loss_fn, calls, **kwargs):
    optimizer = cls(params, **kwargs)
    losses = [optimizer.step(closure_for(optimizer, params, loss_fn)).item() for _ in range(calls)]
    return optimizer, losses


def assert_same_run(ours, theirs, ours_params, theirs_params):
    for mine, reference in zip(ours_params, theirs_params, strict=True):
        torch.testing.assert_close(mine, reference, rtol=0, atol=1e-12)
    ours_state = ours.state[ours_params[0]]
    theirs_state = theirs.state[theirs_params[0]]
    assert set(ours_state) == set(theirs_state)
    for key in ("func_evals", "n_iter"):
        assert ours_state[key] == theirs_state[key]


@pytest.mark.parametrize("line_search_fn", LINE_SEARCHES)
def test_rosenbrock_trajectory_matches_torch(line_search_fn):
    lr = 1.0 if line_search_fn else 1e-3
    kwargs = {"lr": lr, "history_size": 10, "max_iter": 10, "line_search_fn": line_search_fn}
    start = torch.tensor([-1.5, 2.0], dtype=torch.float64)
    ours_x = [start.clone().requires_grad_()]
    theirs_x = [start.clone().requires_grad_()]
    ours, ours_losses = run(optim.LBFGS, ours_x, lambda p: rosenbrock(p[0]), 8, **kwargs)
    theirs, theirs_losses = run(
        torch.optim.LBFGS, theirs_x, lambda p: rosenbrock(p[0]), 8, **kwargs
    )
    assert ours_losses == pytest.approx(theirs_losses, rel=1e-12, abs=1e-15)
    assert_same_run(ours, theirs, ours_x, theirs_x)
    if line_search_fn:
        assert (ours_x[0].detach() - 1).abs().max() < 1e-4  # converged to the minimum (1, 1)


@pytest.mark.parametrize("line_search_fn", LINE_SEARCHES)
def test_several_parameters_and_tensor_lr(line_search_fn):
    ours_params, loss_fn = least_squares_problem()
    theirs_params, _ = least_squares_problem()
    kwargs = {"lr": torch.tensor(0.5, dtype=torch.float64), "line_search_fn": line_search_fn}
    ours, _ = run(optim.LBFGS, ours_params, loss_fn, 3, **kwargs)
    theirs, _ = run(torch.optim.LBFGS, theirs_params, loss_fn, 3, **kwargs)
    assert_same_run(ours, theirs, ours_params, theirs_params)


@pytest.mark.parametrize("direction", ["torch->manualgrad", "manualgrad->torch"])
def test_state_dict_interchange(direction):
    classes = [torch.optim.LBFGS, optim.LBFGS]
    if direction == "manualgrad->torch":
        classes.reverse()
    kwargs = {"history_size": 5, "max_iter": 4, "line_search_fn": "strong_wolfe"}
    params, loss_fn = least_squares_problem()
    first, _ = run(classes[0], params, loss_fn, 2, **kwargs)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    second = classes[1](params, **kwargs)
    second.load_state_dict(torch.load(buffer, weights_only=True))
    for _ in range(2):
        second.step(closure_for(second, params, loss_fn))

    reference_params, _ = least_squares_problem()
    reference, _ = run(torch.optim.LBFGS, reference_params, loss_fn, 4, **kwargs)
    assert_same_run(second, reference, params, reference_params)
