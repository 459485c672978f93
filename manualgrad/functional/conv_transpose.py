r"""Transposed convolutions, and the 3-d convolution: the gradient of a convolution is a
convolution (see :mod:`manualgrad.functional.conv`).

==================  ===========================================================================
op                  twins
==================  ===========================================================================
conv_transpose1d,   torch.nn.functional.conv_transpose1d / 2d / 3d (``stride``, ``padding``,
conv_transpose2d,   ``output_padding``, ``groups``, ``dilation``; unbatched inputs)
conv_transpose3d
conv3d              torch.nn.functional.conv3d (the N-d convolution of ``conv``)
==================  ===========================================================================

A transposed convolution is the adjoint (in its input) of the convolution with the same
weight and options: ⟨conv(z, W), x⟩ = ⟨z, conv_transpose(x, W)⟩ for every z. With G = dL/dy:

    dL/dx = conv(G, W)         (the forward convolution; its output has exactly x's size,
                                the ``output_padding`` rows of G are the ones it never reads)
    dL/dW = the weight gradient of the convolution conv(G, W) for the output gradient x
            (⟨G, conv_transpose(x, W)⟩ = ⟨conv(G, W), x⟩ is bilinear in (G, W))
    dL/db = Σ over batch and spatial dims of G

The kernels (``torch.convolution``, forward and transposed) are primitives; autograd
differentiates them again, so the backward is itself differentiable.
"""

from __future__ import annotations

import torch
from torch import Tensor

from manualgrad.functional._function import Function
from manualgrad.functional.conv import (
    IntOrTuple,
    _apply_batched,
    _bias_grad,
    _conv_op,
    _conv_weight_grad,
    _expand,
    _save_operands,
)

# dtypes whose 1-d dL/dW is one product per tap (float16/bfloat16 keep the convolution form,
# whose padding products are whatever torch's kernel for that dtype does)
_TAP_DTYPES = (torch.float32, torch.float64)


class ConvTransposeFunction(Function):
    r"""N-d transposed convolution  y = conv_transpose(x, W) + b,  x: (N, C_in, *spatial),
    W: (C_in, C_out / G, *kernel), b: (C_out,); each spatial size becomes
    (n − 1)·s − 2p + d·(k − 1) + output_padding + 1.

    Saved: x only if W needs a gradient, W only if x needs one; never b.
    dL/dx = conv(dL/dy, W; stride s, padding p, dilation d, groups G)
    dL/dW = weight gradient of conv(dL/dy, W) for the output gradient x
            (dL/dy as the input, x as the output gradient); in 1-d, float32/float64, one
            product per kernel tap, in float64 plus 0·x for the zeros padding dL/dy: torch's
            float64 kernel multiplies them (an infinite x gives NaN there), its float32 one
            (oneDNN) does not, and its NaN positions are the reference
    dL/db = Σ over batch and spatial dims of dL/dy.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(
        input: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        stride: tuple[int, ...],
        padding: tuple[int, ...],
        output_padding: tuple[int, ...],
        groups: int,
        dilation: tuple[int, ...],
    ) -> Tensor:
        return torch.convolution(
            input, weight, bias, stride, padding, dilation, True, output_padding, groups
        )

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, weight, _, stride, padding, _, groups, dilation = inputs
        _save_operands(ctx, input, weight, (stride, padding, dilation, groups))

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        input, weight = ctx.saved_tensors
        needs_input, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        stride, padding, dilation, groups = ctx.options
        grad_input = grad_weight = grad_bias = None
        if needs_input:
            zeros = (0,) * len(stride)
            grad_input = torch.convolution(
                grad_output, weight, None, stride, padding, dilation, False, zeros, groups
            )
        if needs_weight:
            grad_weight = _conv_weight_grad(
                input,
                grad_output,
                ctx.weight_shape,
                stride,
                padding,
                dilation,
                groups,
                taps=input.dtype in _TAP_DTYPES,
                zeros_outside=input.dtype == torch.float64,
            )
        if needs_bias:
            grad_bias = _bias_grad(grad_output)
        return grad_input, grad_weight, grad_bias, None, None, None, None, None


def _conv_transpose(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: IntOrTuple,
    padding: IntOrTuple,
    output_padding: IntOrTuple,
    groups: int,
    dilation: IntOrTuple,
    dims: int,
) -> Tensor:
    """Shared body of conv_transpose1d/2d/3d: unbatched inputs, tuple arguments, checks."""
    if input.dim() not in (dims + 1, dims + 2):
        raise RuntimeError(
            f"conv_transpose{dims}d: expected {dims + 1}D (unbatched) or {dims + 2}D (batched) "
            f"`input`, but got input of size: {list(input.shape)}"
        )
    stride, dilation = _expand(stride, dims, "stride"), _expand(dilation, dims, "dilation")
    padding = _expand(padding, dims, "padding")
    output_padding = _expand(output_padding, dims, "output_padding")
    for extra, s, d in zip(output_padding, stride, dilation, strict=True):
        if extra >= max(s, d):
            raise RuntimeError(
                f"conv_transpose{dims}d: `output_padding` must be smaller than either stride "
                f"or dilation, got output_padding={list(output_padding)}"
            )
    unbatched = input.dim() == dims + 1
    return _apply_batched(
        ConvTransposeFunction,
        input,
        unbatched,
        weight,
        bias,
        stride,
        padding,
        output_padding,
        groups,
        dilation,
    )


def _conv_transpose_op(dims: int):
    """``torch.nn.functional.conv_transpose{dims}d``, same signature and defaults."""

    def op(
        input: Tensor,
        weight: Tensor,
        bias: Tensor | None = None,
        stride: IntOrTuple = 1,
        padding: IntOrTuple = 0,
        output_padding: IntOrTuple = 0,
        groups: int = 1,
        dilation: IntOrTuple = 1,
    ) -> Tensor:
        return _conv_transpose(
            input, weight, bias, stride, padding, output_padding, groups, dilation, dims
        )

    op.__name__ = op.__qualname__ = f"conv_transpose{dims}d"
    op.__doc__ = (
        f"``torch.nn.functional.conv_transpose{dims}d`` with the backward of "
        ":class:`ConvTransposeFunction`."
    )
    return op


conv_transpose1d = _conv_transpose_op(1)
conv_transpose2d = _conv_transpose_op(2)
conv_transpose3d = _conv_transpose_op(3)


conv3d = _conv_op(
    3,
    """``torch.nn.functional.conv3d``: the N-d convolution of
    :class:`manualgrad.functional.conv.ConvolutionFunction` over three spatial dims.""",
)


__all__ = [
    "ConvTransposeFunction",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
]
