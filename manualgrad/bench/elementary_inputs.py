"""Benchmark inputs of the elementary ops (arithmetic, reductions, products, indexing), one
maker per registry entry, in the terms of :mod:`manualgrad.bench.inputs`: a (rows, cols)
matrix of the size's ``MATRIX`` shape per operand. Products multiply (rows, cols) by (cols, cols)
(batched: 8 blocks of an eighth each way); indices are drawn in range; ops with a restricted
domain (sqrt, log, a divisor) get positive inputs; reductions reduce the last dim."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from manualgrad.testing.registry import Sample

Maker = Callable[[str], Sample]
Shapes = dict[str, tuple[int, int]]

_UNARY = ("neg", "exp", "expm1", "abs", "sin", "cos", "erf", "tril", "triu")
_POSITIVE_UNARY = ("reciprocal", "sqrt", "rsqrt", "log", "log1p")
_BINARY = ("add", "sub", "rsub", "mul", "maximum", "minimum", "maximum_ties")
_LAST_DIM = ("sum", "mean", "var", "std", "norm", "amax", "amin", "logsumexp", "cumsum")


def makers(matrix: Shapes) -> dict[str, Maker]:
    """Every elementary op's maker for the (rows, cols) shapes of ``matrix``."""

    def build(arguments: Callable[[int, int], tuple], **kwargs: object) -> Maker:
        return lambda size: Sample(size, arguments(*matrix[size]), dict(kwargs))

    def positive(rows: int, cols: int) -> Tensor:
        return torch.rand(rows, cols) + 0.5

    def normal(rows: int, cols: int) -> Tensor:
        return torch.randn(rows, cols)

    def blocks(rows: int, cols: int) -> tuple[Tensor, Tensor]:
        return torch.randn(8, rows // 8, cols // 8), torch.randn(8, cols // 8, cols // 8)

    def picks(rows: int, cols: int) -> Tensor:
        return torch.randint(0, cols, (rows, cols))

    one = build(lambda r, c: (normal(r, c),))
    return {
        **dict.fromkeys(_UNARY, one),
        **dict.fromkeys(_POSITIVE_UNARY, build(lambda r, c: (positive(r, c),))),
        **dict.fromkeys(_BINARY, build(lambda r, c: (normal(r, c), normal(r, c)))),
        **dict.fromkeys(_LAST_DIM, build(lambda r, c: (normal(r, c),), dim=-1)),
        **dict.fromkeys(("max", "min"), one),
        **dict.fromkeys(("max_dim", "min_dim"), build(lambda r, c: (normal(r, c), -1))),
        "div": build(lambda r, c: (normal(r, c), positive(r, c))),
        "div_floor": build(lambda r, c: (normal(r, c), positive(r, c)), rounding_mode="floor"),
        "pow": build(lambda r, c: (normal(r, c), 2)),
        "clamp": build(lambda r, c: (normal(r, c), -0.5, 0.5)),
        "clamp_min": build(lambda r, c: (normal(r, c), 0.0)),
        "clamp_max": build(lambda r, c: (normal(r, c), 0.0)),
        "addcmul": build(lambda r, c: (normal(r, c), normal(r, c), normal(r, c)), value=0.5),
        "addcdiv": build(lambda r, c: (normal(r, c), normal(r, c), positive(r, c)), value=0.5),
        "lerp": build(lambda r, c: (normal(r, c), normal(r, c), 0.3)),
        "where": build(lambda r, c: (torch.rand(r, c) < 0.5, normal(r, c), normal(r, c))),
        "masked_fill": build(lambda r, c: (normal(r, c), torch.rand(r, c) < 0.5, 0.0)),
        "prod": build(lambda r, c: (torch.rand(r, c) * 0.1 + 0.95,), dim=-1),
        **dict.fromkeys(("matmul", "mm"), build(lambda r, c: (normal(r, c), normal(c, c)))),
        "bmm": build(blocks),
        "einsum": build(lambda r, c: ("bij,bjk->bik", *blocks(r, c))),
        "addmm": build(lambda r, c: (torch.randn(c), normal(r, c), normal(c, c))),
        "baddbmm": build(lambda r, c: (torch.randn(c // 8), *blocks(r, c))),
        "outer": build(lambda r, c: (torch.randn(r), torch.randn(c))),
        **dict.fromkeys(("cat", "stack"), build(lambda r, c: (normal(r, c), normal(r, c)))),
        "gather": build(lambda r, c: (normal(r, c), 1, picks(r, c))),
        "index_select": build(lambda r, c: (normal(r, c), 0, torch.randint(0, r, (r,)))),
        "scatter": build(lambda r, c: (normal(r, c), 1, torch.rand(r, c).argsort(1), normal(r, c))),
        "scatter_add": build(lambda r, c: (normal(r, c), 1, picks(r, c), normal(r, c))),
        "index": build(lambda r, c: (normal(r, c), (torch.randint(0, r, (r,)),))),
        "pad": build(lambda r, c: (normal(r, c), (2, 2)), mode="reflect"),
        "repeat": build(lambda r, c: (normal(r, c), 2, 1)),
        "roll": build(lambda r, c: (normal(r, c), 3, 1)),
    }
