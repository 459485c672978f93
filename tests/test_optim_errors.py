"""Invalid hyper-parameters raise ValueError with torch.optim's message."""

from __future__ import annotations

import pytest
import torch

import manualgrad.optim as optim
from manualgrad.testing.entries import OPTIMIZERS
from manualgrad.testing.optim import config_id

CASES = [
    (info.ours, info.reference, kwargs)
    for info in OPTIMIZERS
    if info.torch_twin
    for kwargs in info.invalid
]


def params() -> list[torch.Tensor]:
    return [torch.zeros(2, requires_grad=True)]


@pytest.mark.parametrize(
    ("ours", "theirs", "kwargs"),
    [pytest.param(*case, id=f"{case[0].__name__}-{config_id(case[2])}") for case in CASES],
)
def test_invalid_hyperparameters_raise_like_torch(ours, theirs, kwargs):
    with pytest.raises(ValueError) as expected:
        theirs(params(), **kwargs)
    with pytest.raises(ValueError) as raised:
        ours(params(), **kwargs)
    assert str(raised.value) == str(expected.value)


def test_lbfgs_rejects_parameter_groups_like_torch():
    groups = [{"params": params()}, {"params": params()}]
    with pytest.raises(ValueError) as expected:
        torch.optim.LBFGS(groups)
    with pytest.raises(ValueError) as raised:
        optim.LBFGS(groups)
    assert str(raised.value) == str(expected.value)


@pytest.mark.parametrize("cls", [optim.Newton, optim.HessianFree])
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": -1.0}, "Invalid learning rate: -1.0"),
        ({"damping": -1e-3}, "Invalid damping value: -0.001"),
        ({"line_search_fn": "strong_wolfe"}, "line_search_fn must be None or 'backtracking'"),
    ],
)
def test_second_order_validation(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(params(), **kwargs)


def test_second_order_single_group_and_size_limits():
    with pytest.raises(ValueError, match="parameter groups"):
        optim.Newton([{"params": params()}, {"params": params()}])
    with pytest.raises(ValueError, match=r"use manualgrad\.optim\.HessianFree"):
        optim.Newton([torch.zeros(101, requires_grad=True)], max_params=100)
    with pytest.raises(ValueError, match="cg_max_iter"):
        optim.HessianFree(params(), cg_max_iter=0)


@pytest.mark.parametrize(
    "info", [info for info in OPTIMIZERS if info.torch_twin], ids=lambda info: info.name
)
def test_nan_lr_is_accepted_or_rejected_like_torch(info):
    try:
        info.reference(params(), lr=float("nan"))
    except ValueError as expected:
        with pytest.raises(ValueError) as raised:
            info.ours(params(), lr=float("nan"))
        assert str(raised.value) == str(expected)
    else:
        info.ours(params(), lr=float("nan"))


@pytest.mark.parametrize(
    "info",
    [info for info in OPTIMIZERS if info.ours.closure_evaluations != 1 or info.ours.second_order],
    ids=lambda info: info.name,
)
def test_a_group_added_to_a_single_group_optimizer_is_refused_at_step(info):
    weight = torch.ones(2, requires_grad=True)
    optimizer = info.ours([weight])
    optimizer.add_param_group({"params": params()})
    with pytest.raises(AssertionError, match="Expected exactly one param_group, but got 2"):
        optimizer.step(lambda: (weight**2).sum())
