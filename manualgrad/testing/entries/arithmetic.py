"""Registry entries (see manualgrad.testing.registry): element-wise arithmetic."""

from __future__ import annotations

from collections.abc import Iterator

import torch

import manualgrad.functional as F
from manualgrad.testing.entries._specs import t, table
from manualgrad.testing.registry import ErrorCase, OpInfo, elementwise_samples

_POSITIVE = (0.5, 2.0)


def _binary(low: tuple[float, float] = (-2, 2), high: tuple[float, float] = (-2, 2), **kwargs):
    """Same-shape, broadcast both ways, a number operand and non-contiguous inputs; the
    operands' value ranges are ``low`` (input) and ``high`` (other)."""
    a = {"low": low[0], "high": low[1]}
    b = {"low": high[0], "high": high[1]}
    return table(
        ("same_shape", (t(3, 4, **a), t(3, 4, **b)), kwargs),
        ("broadcast", (t(2, 1, 4, **a), t(3, 1, **b)), kwargs),
        ("number_other", (t(3, 4, **a), 1.5), kwargs),
        ("noncontiguous", (t(2, 3, 4, noncontiguous=True, **a), t(4, **b)), kwargs),
    )


def _unary(name, low: float = -2, high: float = 2, **options) -> OpInfo:
    """The entry of ``torch.<name>`` sampled in [low, high]."""
    return OpInfo(
        name,
        getattr(F, name),
        getattr(torch, name),
        getattr(F, f"{name.capitalize()}Function"),
        elementwise_samples(low, high),
        **options,
    )


_pow_samples = table(
    ("square", (t(3, 4),), {"exponent": 2}),
    ("fractional", (t(3, 4, low=0.5, high=2),), {"exponent": 2.5}),
    ("tensor_exponent", (t(3, 4, low=0.5, high=2), t(4)), {}),
    ("number_base", (2.0, t(3, 4)), {}),
)

_CONDITION = torch.tensor([[True, False, True, False]] * 3)
_where_samples = table(
    ("broadcast", (_CONDITION, t(3, 1), t(4)), {}),
    ("number_other", (_CONDITION, t(3, 4), 0.5), {}),
)

_MASK = torch.tensor([True, False, False, True])
_masked_fill_samples = table(
    ("number_value", (t(3, 4), _MASK, -1.5), {}),
    ("tensor_value", (t(2, 3, 4, noncontiguous=True), _MASK, t()), {}),
)


def _rounding_errors() -> Iterator[ErrorCase]:
    yield ErrorCase(
        (torch.randn(3), torch.randn(3)), {"rounding_mode": "up"}, RuntimeError, "rounding_mode"
    )


OPS = [
    OpInfo("add", F.add, torch.add, F.AddFunction, _binary(alpha=2.5), compile=True),
    OpInfo("sub", F.sub, torch.sub, F.SubFunction, _binary(alpha=0.5)),
    OpInfo("rsub", F.rsub, torch.rsub, F.SubFunction, _binary()),
    OpInfo("mul", F.mul, torch.mul, F.MulFunction, _binary(), compile=True),
    OpInfo("div", F.div, torch.div, F.DivFunction, _binary(high=_POSITIVE)),
    OpInfo(
        "div_floor",
        F.div,
        torch.div,
        F.DivFunction,
        _binary(high=_POSITIVE, rounding_mode="floor"),
        _rounding_errors,
    ),
    OpInfo("pow", F.pow, torch.pow, F.PowFunction, _pow_samples),
    OpInfo("square", F.square, torch.square, F.PowFunction, elementwise_samples()),
    OpInfo("neg", F.neg, torch.neg, F.NegFunction, elementwise_samples()),
    OpInfo(
        "reciprocal",
        F.reciprocal,
        torch.reciprocal,
        F.ReciprocalFunction,
        table(
            ("positive", (t(3, 4, low=0.5, high=2),), {}),
            ("negative", (t(2, 3, low=-2, high=-0.5, noncontiguous=True),), {}),
        ),
    ),
    # vmap=False: the generic vmap test adds N(0, 1) noise, which leaves these ops' domain;
    # tests/test_elementary.py runs vmap on them with positive inputs.
    _unary("sqrt", 0.5, 2, vmap=False),
    _unary("rsqrt", 0.5, 2, vmap=False),
    _unary("exp"),
    _unary("log", 0.5, 2, vmap=False),
    OpInfo(
        "log1p", F.log1p, torch.log1p, F.Log1pFunction, elementwise_samples(-0.5, 2), vmap=False
    ),
    OpInfo("expm1", F.expm1, torch.expm1, F.Expm1Function, elementwise_samples()),
    _unary("abs"),
    _unary("sin"),
    _unary("cos"),
    _unary("erf"),
    OpInfo(
        "clamp",
        F.clamp,
        torch.clamp,
        F.ClampFunction,
        table(
            ("numbers", (t(3, 4), -0.5, 0.7), {}),
            ("tensors_broadcast", (t(3, 4), t(4, low=-1, high=0), t(3, 1, low=0, high=1)), {}),
            ("tensor_min_only", (t(3, 4), t(3, 4)), {}),
        ),
    ),
    OpInfo(
        "clamp_min",
        F.clamp_min,
        torch.clamp_min,
        F.ClampFunction,
        table(
            ("number", (t(3, 4), 0.2), {}),
            ("tensor", (t(2, 3, 4, noncontiguous=True), t(4)), {}),
        ),
    ),
    OpInfo(
        "clamp_max",
        F.clamp_max,
        torch.clamp_max,
        F.ClampFunction,
        table(
            ("number", (t(3, 4), 0.2), {}),
            ("tensor", (t(3, 4), t(3, 1)), {}),
        ),
    ),
    OpInfo(
        "addcmul",
        F.addcmul,
        torch.addcmul,
        F.AddcmulFunction,
        table(
            ("broadcast", (t(4), t(3, 4), t(3, 1)), {"value": 0.5}),
            ("default_value", (t(2, 3, noncontiguous=True), t(2, 3), t(3)), {}),
        ),
    ),
    OpInfo(
        "addcdiv",
        F.addcdiv,
        torch.addcdiv,
        F.AddcdivFunction,
        table(
            ("broadcast", (t(4), t(3, 4), t(3, 1, low=0.5, high=2)), {"value": -0.5}),
            ("default_value", (t(2, 3), t(2, 3), t(3, low=0.5, high=2)), {}),
        ),
    ),
    OpInfo(
        "lerp",
        F.lerp,
        torch.lerp,
        F.LerpFunction,
        table(
            ("number_weight", (t(3, 4), t(3, 4)), {"weight": 0.3}),
            ("tensor_weight", (t(3, 4), t(4), t(3, 1, low=0, high=1)), {}),
        ),
    ),
    OpInfo("where", F.where, torch.where, F.WhereFunction, _where_samples),
    OpInfo(
        "masked_fill", F.masked_fill, torch.masked_fill, F.MaskedFillFunction, _masked_fill_samples
    ),
]

MODULES: list = []
