"""Benchmark inputs of the elementary ops (arithmetic, reductions, products, indexing) and of
the layers beside them (transposed and 3-d convolutions, interpolate, normalize, cosine
similarity), one maker per registry entry, in the terms of :mod:`manualgrad.bench.inputs`: a
(rows, cols) matrix of the size's ``MATRIX`` shape per operand, or the size's ``IMAGE`` batch.
Products multiply (rows, cols) by (cols, cols) (batched: 8 blocks of an eighth each way);
indices are drawn in range; ops with a restricted domain (sqrt, log, a divisor) get positive
inputs; reductions reduce the last dim. Transposed convolutions map C → C channels with a
3-wide kernel at stride 2 (1-d over the image rows laid end to end); conv3d splits the image
height into 4 depth slices; interpolate doubles the image bilinearly."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from manualgrad.testing.registry import Sample

Maker = Callable[[str], Sample]
Shapes = dict[str, tuple[int, ...]]

_UNARY = ("neg", "square", "exp", "expm1", "abs", "sin", "cos", "erf", "tril", "triu")
_POSITIVE_UNARY = ("reciprocal", "sqrt", "rsqrt", "log", "log1p")
_BINARY = ("add", "sub", "rsub", "mul", "maximum", "minimum", "maximum_ties")
_LAST_DIM = ("sum", "mean", "var", "std", "norm", "amax", "amin", "logsumexp", "cumsum")


def makers(matrix: Shapes, image: Shapes) -> dict[str, Maker]:
    """Every elementary op's maker for the (rows, cols) shapes of ``matrix`` and the
    (N, C, H, W) shapes of ``image``."""

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

    def convolution(dims: int, **kwargs: object) -> Maker:
        def maker(size: str) -> Sample:
            batch, channels, height, width = image[size]
            spatial = {1: (height * width,), 2: (height, width), 3: (4, height // 4, width)}
            weight = torch.randn(channels, channels, *(3,) * dims) / (channels * 3**dims) ** 0.5
            args = (torch.randn(batch, channels, *spatial[dims]), weight, torch.randn(channels))
            return Sample(size, args, dict(kwargs))

        return maker

    strided = {"stride": 2, "padding": 1, "output_padding": 1}

    def pictures(**kwargs: object) -> Maker:
        return lambda size: Sample(size, (torch.randn(*image[size]),), dict(kwargs))

    one = build(lambda r, c: (normal(r, c),))
    return {
        "conv_transpose1d": convolution(1, **strided),
        "conv_transpose2d": convolution(2, **strided),
        "conv_transpose3d": convolution(3, **strided),
        "conv3d": convolution(3, padding=1),
        "interpolate": pictures(scale_factor=2, mode="bilinear"),
        "normalize": build(lambda r, c: (normal(r, c),), dim=-1),
        "cosine_similarity": build(lambda r, c: (normal(r, c), normal(r, c)), dim=-1),
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
        "mv": build(lambda r, c: (normal(r, c), torch.randn(c))),
        "vdot": build(lambda r, c: (torch.randn(r * c), torch.randn(r * c))),
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
        "flip": build(lambda r, c: (normal(r, c), (-1,))),
    }
