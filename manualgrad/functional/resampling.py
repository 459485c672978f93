r"""Resampling: ``interpolate`` as one 1-d resampling per spatial dim, each a gather of two
neighbours and a blend.

=============  ================================================================================
op             twins
=============  ================================================================================
interpolate    torch.nn.functional.interpolate for modes 'nearest', 'nearest-exact',
               'linear' (3-d), 'bilinear' (4-d), 'trilinear' (5-d), with ``size`` or
               ``scale_factor``, ``align_corners`` and ``recompute_scale_factor`` as torch;
               'area' on 4-d input is adaptive_avg_pool2d; 'bicubic' and ``antialias=True``
               raise ``NotImplementedError``
=============  ================================================================================

Along one spatial dim of input size n and output size m, output position i reads source
coordinate s(i):

    nearest        s = ⌊i·σ⌋,  nearest-exact  s = ⌊(i + ½)·σ⌋   (clamped to n − 1)
    linear         s = i·(n − 1)/(m − 1) with align_corners, else max((i + ½)·σ − ½, 0)

with σ = 1/scale_factor when a scale is given (and not recomputed), else n/m — torch's index
arithmetic (float32 for nearest, the input's dtype for linear), so the picks and weights are
torch's. Linear modes blend the neighbours l = ⌊s⌋ and h = min(l + 1, n − 1) with w = s − l.
Bilinear and trilinear interpolation are separable: the 1-d resampling along each dim in turn.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from manualgrad.functional._function import Function
from manualgrad.functional.pooling import adaptive_avg_pool2d


class ResampleFunction(Function):
    r"""1-d resampling of spatial ``dim`` to ``size`` (see the module docstring for the source
    indices l, h and weights w of each ``mode``):
        linear modes   y[…, i, …] = x[…, l_i, …]·(1 − w_i) + x[…, h_i, …]·w_i
        nearest        y[…, i, …] = x[…, l_i, …]

    y is linear in x; each x element gets the gradients of the outputs it was blended into,
    with their weights (several outputs may read one input: the sum).
    Saved: nothing (l, h and w are recomputed from the sizes, as torch saves none either).
    dL/dx = zeros with dL/dy·(1 − w) index-added at l and dL/dy·w index-added at h along dim
    (dL/dy index-added at l for nearest).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(
        input: Tensor, dim: int, size: int, scale: float | None, mode: str, align_corners: bool
    ) -> Tensor:
        low, high, weight = _sources(input, dim, size, scale, mode, align_corners)
        picked = input.index_select(dim, low)
        if weight is None:
            return picked
        # x_l·(1 − w) + x_h·w, as torch's kernel: an infinite x_l with w = 0 stays infinite
        return picked * (1 - weight) + input.index_select(dim, high) * weight

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, *ctx.options = inputs
        ctx.shape = input.shape

    @staticmethod
    def backward(ctx, grad: Tensor):
        dim = ctx.options[0]
        zeros = grad.new_zeros(ctx.shape)
        low, high, weight = _sources(zeros, *ctx.options)
        if weight is None:
            return zeros.index_add(dim, low, grad), None, None, None, None, None
        blended = grad * weight
        grad_input = zeros.index_add(dim, low, grad - blended).index_add(dim, high, blended)
        return grad_input, None, None, None, None, None


def _sources(
    input: Tensor, dim: int, size: int, scale: float | None, mode: str, align_corners: bool
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """(l, h, w) for resampling ``input``'s ``dim`` to ``size``; (l, None, None) for nearest."""
    in_size = input.shape[dim]
    if mode in _LINEAR_MODES:
        trailing = input.dim() - dim - 1
        return _linear(in_size, size, scale, align_corners, input.dtype, input.device, trailing)
    return _nearest(in_size, size, scale, mode == "nearest-exact", input.device), None, None


_LINEAR_MODES = {"linear": 3, "bilinear": 4, "trilinear": 5}


def _scale(in_size: int, out_size: int, scale: float | None, align_corners: bool) -> float:
    """σ: the source step per output step (torch's ``area_pixel_compute_scale``)."""
    if align_corners:
        return (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    return 1.0 / scale if scale is not None and scale > 0 else in_size / out_size


def _nearest(in_size: int, out_size: int, scale: float | None, exact: bool, device) -> Tensor:
    """Source indices of nearest / nearest-exact resampling (float32 arithmetic, as torch)."""
    positions = torch.arange(out_size, dtype=torch.float32, device=device)
    sigma = _scale(in_size, out_size, scale, False)
    return ((positions + (0.5 if exact else 0.0)) * sigma).to(torch.int64).clamp_max(in_size - 1)


def _linear(
    in_size: int,
    out_size: int,
    scale: float | None,
    align_corners: bool,
    dtype: torch.dtype,
    device: torch.device,
    trailing: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """(l, h, w) of linear resampling; w shaped to broadcast over ``trailing`` dims."""
    positions = torch.arange(out_size, device=device).to(dtype)
    sigma = _scale(in_size, out_size, scale, align_corners)
    source = positions * sigma if align_corners else (sigma * (positions + 0.5) - 0.5).clamp(0)
    low = source.to(torch.int64)
    high = (low + 1).clamp_max(in_size - 1)
    weight = (source - low).clamp(0, 1)
    return low, high, weight.reshape(out_size, *(1,) * trailing)


def _output_sizes(
    input: Tensor,
    size: int | Sequence[int] | None,
    scale_factor: float | Sequence[float] | None,
    recompute_scale_factor: bool | None,
) -> tuple[list[int], list[float | None]]:
    """Output size and the scale each dim's index arithmetic uses (torch's rules)."""
    dims = input.dim() - 2
    if size is not None and scale_factor is not None:
        raise ValueError("interpolate: only one of `size` or `scale_factor` should be defined")
    if size is not None:
        if recompute_scale_factor:
            raise ValueError(
                "interpolate: `recompute_scale_factor` is not meaningful with an explicit size"
            )
        sizes = [size] * dims if isinstance(size, int) else list(size)
        if len(sizes) != dims:
            raise ValueError(
                f"interpolate: `size` {sizes} must have {dims} spatial dimensions, as the input"
            )
        return sizes, [None] * dims
    if scale_factor is None:
        raise ValueError("interpolate: either `size` or `scale_factor` should be defined")
    scales = list(scale_factor) if isinstance(scale_factor, Sequence) else [scale_factor] * dims
    if len(scales) != dims:
        raise ValueError(
            f"interpolate: `scale_factor` {scales} must have {dims} spatial dimensions, as the "
            "input"
        )
    sizes = [int(n * s) for n, s in zip(input.shape[2:], scales, strict=True)]
    return sizes, [None] * dims if recompute_scale_factor else scales


def _check_sizes(input: Tensor, sizes: Sequence[int]) -> None:
    """torch's RuntimeErrors: only the batch may be empty, every size must be positive."""
    if 0 in input.shape[1:]:
        raise RuntimeError(
            f"interpolate: non-empty `input` expected (only the batch may be empty), got sizes "
            f"{list(input.shape)}"
        )
    for in_size, out_size in zip(input.shape[2:], sizes, strict=True):
        if in_size <= 0 or out_size <= 0:
            raise RuntimeError(
                f"interpolate: input and output sizes should be greater than 0, got input "
                f"{in_size} and output {out_size} (`size` / `scale_factor`)"
            )


def interpolate(
    input: Tensor,
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Tensor:
    """``torch.nn.functional.interpolate`` (see the module docstring for the modes) with the
    hand-derived backward of :class:`ResampleFunction`, one per spatial dim."""
    if mode in ("nearest", "nearest-exact", "area") and align_corners is not None:
        raise ValueError(
            "interpolate: `align_corners` option can only be set with the interpolating modes: "
            "linear | bilinear | bicubic | trilinear"
        )
    if antialias or mode == "bicubic":
        raise NotImplementedError(
            f"interpolate: `mode`={mode!r} with antialias={antialias} has no hand-derived backward"
        )
    sizes, scales = _output_sizes(input, size, scale_factor, recompute_scale_factor)
    _check_sizes(input, sizes)
    if mode == "area" and input.dim() == 4:
        return adaptive_avg_pool2d(input, sizes)
    if mode in _LINEAR_MODES and input.dim() != _LINEAR_MODES[mode]:
        raise NotImplementedError(
            f"interpolate: got {input.dim()}D `input`, but {mode} `mode` needs "
            f"{_LINEAR_MODES[mode]}D input"
        )
    if mode not in ("nearest", "nearest-exact", *_LINEAR_MODES):
        raise NotImplementedError(
            f"interpolate: `mode` {mode!r} for {input.dim()}D input has no hand-derived backward"
        )
    output = input
    for k, (out_size, scale) in enumerate(zip(sizes, scales, strict=True)):
        output = ResampleFunction.apply(output, k + 2, out_size, scale, mode, bool(align_corners))
    return output


__all__ = ["ResampleFunction", "interpolate"]
