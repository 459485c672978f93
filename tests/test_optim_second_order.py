"""Newton and HessianFree against known optima: exact on quadratics, fast on Rosenbrock and
logistic regression (training the digits MLP is in tests/test_optim_convergence.py, following
the plain-math reference in tests/test_optim_trajectory.py)."""

from __future__ import annotations

import pytest
import torch
from optim_problems import zeros_and_ones

import manualgrad.nn as mnn
import manualgrad.nn.functional as F
from manualgrad.optim import SGD, Adam, HessianFree, Newton


def spd_quadratic(n: int = 20, seed: int = 0):
    """f(x) = ½ xᵀAx − bᵀx with eigenvalues of A in [1, 100]; returns (f, minimizer A⁻¹b)."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    a = q @ torch.diag(torch.logspace(0, 2, n, dtype=torch.float64)) @ q.T
    b = torch.randn(n, generator=gen, dtype=torch.float64)
    return (lambda x: 0.5 * x @ a @ x - b @ x), torch.linalg.solve(a, b)


def start_point(n: int = 20) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(n, generator=gen, dtype=torch.float64).requires_grad_()


def test_newton_solves_spd_quadratic_in_one_step():
    f, minimizer = spd_quadratic()
    x = start_point()
    Newton([x], damping=0.0).step(lambda: f(x))
    assert (x.detach() - minimizer).abs().max() <= 1e-10


def test_hessian_free_matches_newton_on_quadratic():
    f, _ = spd_quadratic()
    x_newton, x_free = start_point(), start_point()
    Newton([x_newton], damping=1e-3).step(lambda: f(x_newton))
    optimizer = HessianFree([x_free], damping=1e-3, cg_tol=1e-12)
    optimizer.step(lambda: f(x_free))
    assert (x_free.detach() - x_newton.detach()).abs().max() <= 1e-6
    assert optimizer.state[x_free]["cg_iters"] < 50  # stopped by the tolerance, not the cap


def rosenbrock(x: torch.Tensor) -> torch.Tensor:
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def test_newton_reaches_rosenbrock_minimum_with_line_search():
    x = torch.tensor([-1.5, 2.0], dtype=torch.float64, requires_grad=True)
    optimizer = Newton([x], line_search_fn="backtracking")
    while (x.detach() - 1).abs().max() > 1e-6 and optimizer.state[x].get("n_iter", 0) < 50:
        optimizer.step(lambda: rosenbrock(x))
    assert (x.detach() - 1).abs().max() <= 1e-6


L2 = 1e-2


def logistic_regression():
    """Binary logistic regression on digits 0 vs 1 with penalty (λ/2)‖θ‖², λ = 1e-2."""
    x, y = zeros_and_ones()
    torch.manual_seed(0)
    model = mnn.Linear(64, 1).double()
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)

    def loss() -> torch.Tensor:
        penalty = sum((p**2).sum() for p in model.parameters())
        return F.binary_cross_entropy_with_logits(model(x).squeeze(1), y) + L2 / 2 * penalty

    return model, loss


def iterations_to_reach(optimizer_factory, optimum: float, budget: int, second_order: bool):
    """Iterations until f − f* ≤ 1e-8 (``None`` if not within ``budget``) and the final gap."""
    model, loss = logistic_regression()
    optimizer = optimizer_factory(model.parameters())
    for iteration in range(1, budget + 1):
        if second_order:
            optimizer.step(loss)
        else:
            optimizer.zero_grad()
            loss().backward()
            optimizer.step()
        gap = loss().item() - optimum
        if gap <= 1e-8:
            return iteration, gap
    return None, gap


def test_newton_beats_first_order_on_logistic_regression():
    model, loss = logistic_regression()
    exact = Newton(model.parameters(), damping=0.0)
    for _ in range(30):
        exact.step(loss)
    optimum = loss().item()
    assert all(p.grad.abs().max() <= 1e-12 for p in model.parameters())  # converged

    newton_iterations, _ = iterations_to_reach(Newton, optimum, budget=15, second_order=True)
    assert newton_iterations is not None and newton_iterations <= 15
    initial_gap = logistic_regression()[1]().item() - optimum
    for first_order in (
        lambda params: SGD(params, lr=0.5, momentum=0.9),
        lambda params: Adam(params, lr=0.05),
    ):
        budget = 10 * newton_iterations
        reached, gap = iterations_to_reach(first_order, optimum, budget, second_order=False)
        assert reached is None, f"a first-order method needed only {reached} iterations"
        assert 1e-8 < gap < initial_gap  # progressing, but ≥ 10× slower than Newton


@pytest.mark.parametrize("cls", [Newton, HessianFree])
def test_closure_calling_backward_is_reported(cls):
    x = torch.ones(3, requires_grad=True)
    optimizer = cls([x])

    def closure():
        loss = (x**4).sum()
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="without calling backward"):
        optimizer.step(closure)


@pytest.mark.parametrize("cls", [Newton, HessianFree])
def test_step_leaves_gradient_and_state(cls):
    x = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    unused = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    optimizer = cls([x, unused])
    loss = optimizer.step(lambda: (x**4).sum())
    assert loss.item() == 17.0
    torch.testing.assert_close(x.grad, torch.tensor([4.0, -32.0], dtype=torch.float64))
    assert torch.equal(unused.grad, torch.zeros(2, dtype=torch.float64))
    assert torch.equal(unused, torch.zeros(2, dtype=torch.float64))
    state = optimizer.state[x]
    assert state["n_iter"] == 1 and state["func_evals"] == 1 and state["step_size"] == 1.0
