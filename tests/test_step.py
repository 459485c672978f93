"""The perceptron's step unit: exact 0/1 forward, zero true gradient, the straight-through
estimator's formula (gradcheck does not apply at the discontinuity), and the module."""

from __future__ import annotations

import pytest
import torch

import manualgrad.functional as F
import manualgrad.nn as mnn

# Points on both sides of 0, 0 itself (both signs), and both edges of the estimator's window.
POINTS = [-3.0, -1.0 - 1e-12, -1.0, -0.5, -1e-30, -0.0, 0.0, 1e-30, 0.5, 1.0, 1.0 + 1e-12, 3.0]
STEP = [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
WINDOW = [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("straight_through", [False, True])
def test_forward_is_exactly_zero_or_one_with_zero_at_zero(dtype, straight_through):
    z = torch.tensor(POINTS, dtype=dtype)
    y = F.step(z, straight_through=straight_through)
    assert y.dtype == dtype
    torch.testing.assert_close(y, torch.tensor(STEP, dtype=dtype), rtol=0, atol=0)


def _gradient(straight_through: bool) -> tuple[torch.Tensor, torch.Tensor]:
    z = torch.tensor(POINTS, dtype=torch.float64, requires_grad=True)
    grad_output = torch.linspace(-2, 3, len(POINTS), dtype=torch.float64)
    (grad,) = torch.autograd.grad(F.step(z, straight_through=straight_through), z, grad_output)
    return grad, grad_output


def test_true_gradient_is_zero_everywhere():
    grad, _ = _gradient(straight_through=False)
    assert grad is not None
    torch.testing.assert_close(grad, torch.zeros_like(grad), rtol=0, atol=0)


def test_straight_through_passes_grad_inside_the_closed_unit_window():
    grad, grad_output = _gradient(straight_through=True)
    expected = grad_output * torch.tensor(WINDOW, dtype=torch.float64)
    torch.testing.assert_close(grad, expected, rtol=0, atol=0)


def test_straight_through_backward_is_linear_in_grad_and_constant_in_input():
    z = torch.tensor(POINTS, dtype=torch.float64, requires_grad=True)
    grad_output = torch.randn(len(POINTS), dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(
        F.step(z, straight_through=True), z, grad_output, create_graph=True
    )
    weights = torch.randn(len(POINTS), dtype=torch.float64)
    second = torch.autograd.grad(grad, (z, grad_output), weights, allow_unused=True)
    assert second[0] is None or not second[0].any()
    window = torch.tensor(WINDOW, dtype=torch.float64)
    torch.testing.assert_close(second[1], weights * window, rtol=0, atol=0)


@pytest.mark.parametrize("straight_through", [False, True])
def test_module_repr_state_and_forward(straight_through):
    module = mnn.Step(straight_through=straight_through)
    assert repr(module) == f"Step(straight_through={straight_through})"
    assert list(module.parameters()) == []
    assert module.state_dict() == {}
    z = torch.tensor(POINTS)
    torch.testing.assert_close(module(z), F.step(z, straight_through=straight_through))
    assert repr(mnn.Step()) == "Step(straight_through=False)"


@pytest.mark.parametrize("straight_through", [False, True])
def test_only_the_estimator_trains_a_step_network(straight_through):
    torch.manual_seed(0)
    model = mnn.Sequential(mnn.Linear(4, 6), mnn.Step(straight_through), mnn.Linear(6, 1))
    model(torch.randn(8, 4)).sum().backward()
    first_layer_moves = model[0].weight.grad.abs().sum() > 0
    assert bool(first_layer_moves) is straight_through
