"""Registry entries (see manualgrad.testing.registry): reductions."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

import manualgrad.functional as F
from manualgrad.testing.entries._specs import t, table
from manualgrad.testing.registry import ErrorCase, OpInfo, Sample, tensor


def _axes(*kwargs: dict):
    """A (3, 4) input reduced with each kwargs, then a non-contiguous (2, 3, 4) one with the
    last kwargs."""
    rows = [(f"case{k}", (t(3, 4),), kw) for k, kw in enumerate(kwargs)]
    return table(*rows, ("noncontiguous", (t(2, 3, 4, noncontiguous=True),), kwargs[-1]))


def _prod_samples(dtype: torch.dtype) -> Iterator[Sample]:
    yield from _axes({}, {"dim": 1, "keepdim": True})(dtype)
    with_zeros = tensor(3, 4, dtype=dtype)
    with_zeros[0, 1] = 0
    with_zeros[1, 1:3] = 0
    yield Sample("zeros_along_dim", (with_zeros,), {"dim": 1})
    yield Sample("zeros_whole", (with_zeros[:1],), {})


def _var_errors() -> Iterator[ErrorCase]:
    yield ErrorCase((torch.randn(3, 4), 1, True), {"correction": 1}, TypeError, "`unbiased`")


def _norm_errors() -> Iterator[ErrorCase]:
    yield ErrorCase((torch.randn(3, 4),), {"p": "nuc"}, NotImplementedError, "`p`")


def _extremum(name: str, function, *kwargs: dict, **options) -> OpInfo:
    return OpInfo(name, getattr(F, name), getattr(torch, name), function, _axes(*kwargs), **options)


def _indexed(name: str) -> OpInfo:
    """max/min along a dim, returning (values, indices)."""
    op = getattr(F, name)
    reference = getattr(torch, name)
    return OpInfo(
        f"{name}_dim",
        op,
        reference,
        F.ExtremumIndexFunction,
        _axes({"dim": 1}, {"dim": 0, "keepdim": True}),
    )


OPS = [
    OpInfo(
        "sum",
        F.sum,
        torch.sum,
        F.SumFunction,
        _axes({}, {"dim": 1}, {"dim": (0, -1), "keepdim": True, "dtype": torch.float64}),
        compile=True,
    ),
    OpInfo("mean", F.mean, torch.mean, F.MeanFunction, _axes({}, {"dim": (0, 1), "keepdim": True})),
    OpInfo(
        "var",
        F.var,
        torch.var,
        F.VarFunction,
        _axes({}, {"dim": 1, "correction": 0}, {"dim": 0, "keepdim": True}),
        _var_errors,
    ),
    OpInfo("std", F.std, torch.std, F.StdFunction, _axes({"dim": 1}, {"correction": 2})),
    OpInfo(
        "norm",
        F.norm,
        torch.norm,
        F.NormFunction,
        _axes({}, {"p": 1, "dim": 1}, {"p": math.inf, "dim": 0}, {"p": 3, "dim": 1}),
        _norm_errors,
    ),
    _extremum("amax", F.ExtremumFunction, {"dim": 1}, {"dim": (0, 1), "keepdim": True}),
    _extremum("amin", F.ExtremumFunction, {}, {"dim": -1}),
    _extremum("max", F.ExtremumFunction, {}),
    _extremum("min", F.ExtremumFunction, {}),
    _indexed("max"),
    _indexed("min"),
    OpInfo(
        "maximum",
        F.maximum,
        torch.maximum,
        F.MaximumFunction,
        table(("broadcast", (t(3, 4), t(4)), {})),
    ),
    # Equal elements sit on the kink (no derivative to check); parity: torch's halves.
    OpInfo(
        "maximum_ties",
        F.maximum,
        torch.maximum,
        F.MaximumFunction,
        table(("ties", (torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 0.0, 3.0])), {})),
        gradcheck=False,
    ),
    OpInfo(
        "minimum",
        F.minimum,
        torch.minimum,
        F.MaximumFunction,
        table(("broadcast", (t(3, 1), t(4)), {})),
    ),
    OpInfo(
        "logsumexp",
        F.logsumexp,
        torch.logsumexp,
        F.LogSumExpFunction,
        _axes({"dim": 1}, {"dim": (0, 1), "keepdim": True}),
    ),
    OpInfo("cumsum", F.cumsum, torch.cumsum, F.CumsumFunction, _axes({"dim": 1}, {"dim": 0})),
    OpInfo("prod", F.prod, torch.prod, F.ProdFunction, _prod_samples),
]

MODULES: list = []
