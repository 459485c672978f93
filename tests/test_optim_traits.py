"""``--optimizer`` reads everything it needs off the optimizer classes: the choices are the
classes of ``manualgrad.optim``, the learning rate without ``--lr`` is the class's
``default_lr``, and shared options go to the constructors that take them."""

from __future__ import annotations

import pytest
import torch

import manualgrad.optim as optim
from manualgrad.train.optimizers import (
    make_optimizer,
    optimizer_class,
    optimizer_kwargs,
    optimizer_names,
)


def test_names_are_the_optimizers_of_manualgrad_optim():
    classes = [getattr(optim, name) for name in optim.__all__]
    expected = [c.__name__.lower() for c in classes if isinstance(c, type)]
    assert optimizer_names() == sorted(expected)
    assert all(optimizer_class(name).__name__.lower() == name for name in optimizer_names())


@pytest.mark.parametrize("name", optimizer_names())
def test_lr_defaults_to_the_class_trait(name):
    assert optimizer_kwargs(name)["lr"] == optimizer_class(name).default_lr
    assert optimizer_kwargs(name, lr=0.25)["lr"] == 0.25


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match=r"unknown --optimizer 'lion' \(choose from adadelta, "):
        optimizer_class("lion")


def test_shared_options_reach_only_constructors_that_take_them():
    assert optimizer_kwargs("sgd", momentum=0.9)["momentum"] == 0.9
    assert "momentum" not in optimizer_kwargs("adam")  # left at its default: not passed
    with pytest.raises(ValueError, match="--momentum is not an option of --optimizer adam"):
        optimizer_kwargs("adam", momentum=0.9)


def test_make_optimizer_passes_other_options_through():
    param = torch.zeros(2, requires_grad=True)
    newton = make_optimizer("newton", [param], damping=0.5)
    assert isinstance(newton, optim.Newton)
    assert newton.defaults["damping"] == 0.5 and newton.defaults["lr"] == optim.Newton.default_lr
