"""Registry entries (see manualgrad.testing.registry): transposed and 3-d convolutions,
interpolate, normalize and cosine similarity."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as TF

import manualgrad.functional as F
from manualgrad.testing.entries._specs import t, table
from manualgrad.testing.registry import ErrorCase, OpInfo


def _conv_transpose_errors() -> Iterator[ErrorCase]:
    weight = torch.randn(2, 2, 3, 3)
    yield ErrorCase((torch.randn(2, 3), weight), {}, RuntimeError, "`input`")
    yield ErrorCase(
        (torch.randn(1, 2, 3, 3), weight), {"output_padding": 1}, RuntimeError, "`output_padding`"
    )


def _interpolate_errors() -> Iterator[ErrorCase]:
    image = torch.randn(1, 2, 3, 3)
    yield ErrorCase((image,), {"size": 4, "scale_factor": 2.0}, ValueError, "`size`")
    yield ErrorCase((image,), {"scale_factor": 2.0, "align_corners": True}, ValueError, "`align")
    yield ErrorCase(
        (torch.randn(1, 2, 3),), {"size": 4, "mode": "bilinear"}, NotImplementedError, "`mode`"
    )


OPS = [
    OpInfo(
        "conv_transpose1d",
        F.conv_transpose1d,
        TF.conv_transpose1d,
        F.ConvTransposeFunction,
        table(
            (
                "stride_output_padding",
                (t(2, 4, 5), t(4, 3, 3), t(3)),
                {"stride": 2, "padding": 1, "output_padding": 1},
            ),
            ("unbatched", (t(4, 3), t(4, 2, 2), None), {}),
        ),
    ),
    OpInfo(
        "conv_transpose2d",
        F.conv_transpose2d,
        TF.conv_transpose2d,
        F.ConvTransposeFunction,
        table(
            ("bias", (t(1, 2, 3, 3), t(2, 3, 2, 2), t(3)), {"stride": 2}),
            (
                "groups_dilation",
                (t(1, 4, 3, 3, noncontiguous=True), t(4, 1, 2, 3), None),
                {"stride": (2, 1), "groups": 2, "dilation": (1, 2)},
            ),
        ),
        _conv_transpose_errors,
    ),
    OpInfo(
        "conv_transpose3d",
        F.conv_transpose3d,
        TF.conv_transpose3d,
        F.ConvTransposeFunction,
        table(("stride", (t(1, 2, 2, 2, 2), t(2, 1, 2, 2, 2), t(1)), {"stride": 2})),
    ),
    OpInfo(
        "conv3d",
        F.conv3d,
        TF.conv3d,
        F.ConvolutionFunction,
        table(("padding", (t(1, 2, 3, 3, 3), t(2, 2, 2, 2, 2), t(2)), {"padding": 1})),
    ),
    OpInfo(
        "interpolate",
        F.interpolate,
        TF.interpolate,
        F.ResampleFunction,
        table(
            ("nearest_scale", (t(1, 2, 5),), {"scale_factor": 2}),
            ("nearest_exact_size", (t(1, 2, 3, 4),), {"size": (5, 3), "mode": "nearest-exact"}),
            (
                "bilinear",
                (t(1, 2, 3, 4, noncontiguous=True),),
                {"size": (5, 3), "mode": "bilinear"},
            ),
            (
                "bilinear_align",
                (t(1, 1, 3, 3),),
                {"scale_factor": 1.7, "mode": "bilinear", "align_corners": True},
            ),
            ("trilinear", (t(1, 1, 2, 3, 2),), {"scale_factor": 1.5, "mode": "trilinear"}),
        ),
        _interpolate_errors,
    ),
    OpInfo(
        "normalize",
        F.normalize,
        TF.normalize,
        F.NormalizeFunction,
        table(
            ("default", (t(3, 4),), {}),
            ("p1_last_dim", (t(2, 3, noncontiguous=True),), {"p": 1, "dim": -1}),
            ("p3", (t(3, 4),), {"p": 3.0, "dim": 0}),
        ),
    ),
    OpInfo(
        "cosine_similarity",
        F.cosine_similarity,
        TF.cosine_similarity,
        F.CosineSimilarityFunction,
        table(
            ("same_shape", (t(3, 4), t(3, 4)), {}),
            ("broadcast_rows", (t(1, 4), t(3, 4)), {"dim": -1}),
            ("broadcast_dim", (t(2, 3, 4), t(3, 1)), {"dim": 0}),
        ),
    ),
]

MODULES: list = []
