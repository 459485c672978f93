"""Subgradients exactly at kinks (and at branch switches) equal torch's choice.

gradcheck samples avoid kinks, so this table evaluates every op exactly on them. To cover a new
kink, append one ``Kink`` row: the op, its torch reference, and a factory for arguments that put
points exactly on the kink (floating tensors in ``constant`` get no gradient).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import torch
import torch.nn.functional as TF

import manualgrad.functional as F


@dataclass(frozen=True)
class Kink:
    """``op(*args(), **kwargs)`` and ``reference(...)`` differentiated at points on a kink."""

    name: str
    op: Callable[..., torch.Tensor]
    reference: Callable[..., torch.Tensor]
    args: Callable[[], tuple]
    kwargs: dict = field(default_factory=dict)
    constant: frozenset[int] = frozenset()


def points(*values: float) -> torch.Tensor:
    """A float64 vector of exactly these values."""
    return torch.tensor(values, dtype=torch.float64)


AROUND_ZERO = (-1.0, -0.0, 0.0, 1.0)

KINKS = [
    Kink("relu-at-0", F.relu, TF.relu, lambda: (points(*AROUND_ZERO),)),
    Kink("leaky_relu-at-0", F.leaky_relu, TF.leaky_relu, lambda: (points(*AROUND_ZERO),)),
    Kink(
        "leaky_relu-slope0.3-at-0",
        F.leaky_relu,
        TF.leaky_relu,
        lambda: (points(*AROUND_ZERO),),
        {"negative_slope": 0.3},
    ),
    Kink(
        "leaky_relu-negative-slope-at-0",
        F.leaky_relu,
        TF.leaky_relu,
        lambda: (points(*AROUND_ZERO),),
        {"negative_slope": -0.5},
    ),
    Kink("elu-at-0", F.elu, TF.elu, lambda: (points(*AROUND_ZERO),)),
    Kink("elu-alpha0.5-at-0", F.elu, TF.elu, lambda: (points(*AROUND_ZERO),), {"alpha": 0.5}),
    Kink("elu-alpha0-at-0", F.elu, TF.elu, lambda: (points(*AROUND_ZERO),), {"alpha": 0.0}),
    Kink("elu-negative-alpha-at-0", F.elu, TF.elu, lambda: (points(*AROUND_ZERO),), {"alpha": -1}),
    Kink("hardtanh-at-bounds", F.hardtanh, TF.hardtanh, lambda: (points(-2, -1, 0, 1, 2),)),
    Kink(
        "hardtanh-relu6-at-bounds",
        F.hardtanh,
        TF.hardtanh,
        lambda: (points(-1, 0, 3, 6, 7),),
        {"min_val": 0.0, "max_val": 6.0},
    ),
    Kink(
        "hardtanh-collapsed-bounds",
        F.hardtanh,
        TF.hardtanh,
        lambda: (points(0, 0.5, 1),),
        {"min_val": 0.5, "max_val": 0.5},
    ),
    Kink(
        "prelu-single-at-0",
        F.prelu,
        TF.prelu,
        lambda: (points(*AROUND_ZERO).reshape(2, 2), points(0.25)),
    ),
    Kink(
        "prelu-per-channel-at-0",
        F.prelu,
        TF.prelu,
        lambda: (
            torch.tensor([[0.0, -0.0, 1.0], [-1.0, 0.0, 0.0]], dtype=torch.float64),
            points(0.1, -0.2, 0.3),
        ),
    ),
    # Softplus is smooth, but switches to the identity where βz > threshold; at equality
    # torch keeps the log1p branch.
    Kink(
        "softplus-at-threshold",
        F.softplus,
        TF.softplus,
        lambda: (points(19.0, 20.0, 21.0),),
    ),
    Kink(
        "softplus-beta2-at-threshold",
        F.softplus,
        TF.softplus,
        lambda: (points(0.25, 0.5, 0.75),),
        {"beta": 2.0, "threshold": 1.0},
    ),
    # Losses (reduction='none' so every point gets its own output gradient).
    Kink(
        "l1_loss-at-0",
        F.l1_loss,
        TF.l1_loss,
        lambda: (points(-1.0, 0.0, -0.0, 2.0), points(0.0, 0.0, 0.0, 2.0)),
        {"reduction": "none"},
    ),
    Kink(
        "huber_loss-at-plus-minus-delta",
        F.huber_loss,
        TF.huber_loss,
        lambda: (points(-2.0, -1.0, 0.0, 1.0, 2.0), points(0.0, 0.0, 0.0, 0.0, 0.0)),
        {"reduction": "none"},
    ),
    Kink(
        "huber_loss-delta0.5-at-plus-minus-delta",
        F.huber_loss,
        TF.huber_loss,
        lambda: (points(1.0, 1.5, 0.5, 0.25), points(0.5, 1.0, 1.0, 0.25)),
        {"reduction": "none", "delta": 0.5},
    ),
    # torch has no hinge loss: the reference is the plain formula, whose clamp passes the
    # gradient at z = margin − t·y = 0 (the active side).
    Kink(
        "hinge_loss-at-margin",
        F.hinge_loss,
        lambda input, target, margin=1.0, reduction="none": (margin - target * input).clamp_min(0),
        lambda: (points(1.0, -1.0, 0.5, 2.0), points(1.0, -1.0, 1.0, -1.0)),
        {"reduction": "none"},
        constant=frozenset({1}),
    ),
    Kink(
        "hinge_loss-margin0.5-at-margin",
        F.hinge_loss,
        lambda input, target, margin=1.0, reduction="none": (margin - target * input).clamp_min(0),
        lambda: (points(0.5, -0.5, 0.0), points(1.0, -1.0, 1.0)),
        {"margin": 0.5, "reduction": "none"},
        constant=frozenset({1}),
    ),
    Kink(
        "multi_margin_loss-at-margin",
        F.multi_margin_loss,
        TF.multi_margin_loss,
        lambda: (
            torch.tensor([[1.0, 0.0, 2.0], [0.5, 1.5, 0.5]], dtype=torch.float64),
            torch.tensor([0, 1]),
        ),
        {"reduction": "none"},
    ),
    Kink(
        "multi_margin_loss-p2-at-margin",
        F.multi_margin_loss,
        TF.multi_margin_loss,
        lambda: (
            torch.tensor([[1.0, 0.0, 2.0], [0.5, 1.5, 0.5]], dtype=torch.float64),
            torch.tensor([0, 1]),
        ),
        {"p": 2, "reduction": "none"},
    ),
]


def _evaluate(fn, kink: Kink) -> list[torch.Tensor]:
    """The output and the gradient of every differentiable argument, at the kink's points."""
    args = [
        a.clone().requires_grad_(a.is_floating_point() and i not in kink.constant)
        if isinstance(a, torch.Tensor)
        else a
        for i, a in enumerate(kink.args())
    ]
    output = fn(*args, **kink.kwargs)
    grad_output = torch.linspace(0.5, 2.0, output.numel(), dtype=output.dtype).reshape(output.shape)
    leaves = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
    return [output.detach(), *torch.autograd.grad(output, leaves, grad_output)]


@pytest.mark.parametrize("kink", KINKS, ids=lambda kink: kink.name)
def test_subgradient_at_kink_equals_torch(kink):
    ours = _evaluate(kink.op, kink)
    theirs = _evaluate(kink.reference, kink)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-15)
