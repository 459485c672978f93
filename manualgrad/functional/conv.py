r"""Convolutions: the gradient of a convolution is a convolution.

For one spatial dim (the others are the same, independently), with stride s, padding p,
dilation d, kernel size k, groups G and x zero-padded by p:

    y[n, o, i] = b[o] + Σ_{c ∈ group(o)} Σ_j  W[o, c, j] · x[n, c, s·i + d·j]

Every output is linear in x and linear in W, so each gradient is the adjoint of one of them:

    dL/dx = conv_transpose(G_y, W; stride s, padding p, dilation d, groups G)
            (the adjoint of "slide W over x"; output_padding recovers the exact input size,
            which the forward's floor division may have cut)
    dL/dW[o, c, j] = Σ_n Σ_i G_y[n, o, i] · x[n, c, s·i + d·j]
            = a convolution over i in which the batch n plays the channel, x is the input
              and G_y the kernel, with the roles of stride and dilation swapped
    dL/db[o] = Σ_{n, i} G_y[n, o, i]

The kernels (``torch.convolution``, forward and transposed) are primitives; autograd
differentiates them again, so the backward is itself differentiable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn.functional import pad, unfold

from manualgrad.functional._function import Function, transforms_or_tracing

IntOrTuple = int | Sequence[int]


class ConvolutionFunction(Function):
    r"""N-d convolution  y = W ⋆ x + b  (cross-correlation, as torch), x: (N, C_in, *spatial),
    W: (C_out, C_in / G, *kernel), b: (C_out,).

    ``padding`` is symmetric (p per dim, as torch); ``extra`` adds zeros after the end of each
    dim on top of it (``padding='same'`` with an odd total d·(k − 1)).

    Saved: x only if W needs a gradient, W only if x needs one; never b, never the padded x.

    dL/dx = conv_transpose(dL/dy, W), output_padding = the remainder of the forward's floor
            division, so that the result has x's (padded) size; the ``extra`` zeros are cut off.
    dL/dW = (x as a batch of C_in / G images whose channels are the N samples of each group)
            ⋆ (dL/dy as a kernel of C_out filters over the N channels), stride d, dilation s,
            cropped to the kernel size (the last windows of a floor division are unused);
            in 2-d with a 1×1 kernel, at most ``PRODUCT_OUTPUTS`` output pixels or at most
            ``PRODUCT_COLUMNS`` values in unfold(x), the same sum as one matrix product per
            group, dL/dy (C_out / G × N·L) times unfold(x)ᵀ (N·L × C_in / G · k): the columns of
            unfold(x) are the input cells each kernel cell meets at each of the L outputs (a
            convolution whose channels are the N samples is slow there, and the columns few);
            in 1-d with one group and at most ``TAP_KERNEL`` taps, one batched product per tap j,
            dL/dW[:, :, j] = Σ_n Σ_i dL/dy[n, :, i] · x[n, :, s·i + d·j − p]ᵀ over the outputs
            whose cell lies in x (the convolution form's kernel is the whole output long there).
    dL/db = Σ over batch and spatial dims of dL/dy.
    """

    generate_vmap_rule = True
    autocast = "lower"

    @staticmethod
    def forward(
        input: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        stride: tuple[int, ...],
        padding: tuple[int, ...],
        dilation: tuple[int, ...],
        groups: int,
        extra: tuple[int, ...],
    ) -> Tensor:
        zeros = (0,) * len(stride)
        return torch.convolution(
            _pad_after(input, extra), weight, bias, stride, padding, dilation, False, zeros, groups
        )

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, weight, _, stride, padding, dilation, groups, extra = inputs
        _save_operands(ctx, input, weight, (stride, padding, dilation, groups, extra))

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        input, weight = ctx.saved_tensors
        needs_input, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        stride, padding, dilation, groups, extra = ctx.options
        grad_input = grad_weight = grad_bias = None
        if needs_input:
            grad_input = _conv_input_grad(grad_output, weight, ctx.input_shape, *ctx.options)
        if needs_weight:
            grad_weight = _conv_weight_grad(
                grad_output,
                _pad_after(input, extra),
                ctx.weight_shape,
                stride,
                padding,
                dilation,
                groups,
                taps=True,
            )
        if needs_bias:
            grad_bias = _bias_grad(grad_output)
        return grad_input, grad_weight, grad_bias, None, None, None, None, None


def _save_operands(ctx, input: Tensor, weight: Tensor, options: tuple) -> None:
    """The convolutions' saved state: x only if W needs a gradient, W only if x needs one (each
    gradient needs the other operand), both shapes, and the layer ``options``."""
    needs_input, needs_weight = ctx.needs_input_grad[:2]
    ctx.save_for_backward(input if needs_weight else None, weight if needs_input else None)
    ctx.input_shape, ctx.weight_shape = input.shape, weight.shape
    ctx.options = options


def _bias_grad(grad_output: Tensor) -> Tensor:
    """dL/db = Σ over the batch and spatial dims of dL/dy (b is added to every output pixel)."""
    return grad_output.sum([0, *range(2, grad_output.dim())])


def _apply_batched(function: type[Function], input: Tensor, unbatched: bool, *args) -> Tensor:
    """``function.apply(input, *args)`` with a batch dim of 1 put on (and taken off the result)
    when ``input`` is ``unbatched``."""
    output = function.apply(input.unsqueeze(0) if unbatched else input, *args)
    return output.squeeze(0) if unbatched else output


def _pad_after(input: Tensor, extra: tuple[int, ...]) -> Tensor:
    """``input`` with ``extra[i]`` zeros appended to spatial dim i (a no-op when all are 0)."""
    if not any(extra):
        return input
    return pad(input, [size for after in reversed(extra) for size in (0, after)])


def _conv_input_grad(
    grad_output: Tensor,
    weight: Tensor,
    input_shape: torch.Size,
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
    extra: tuple[int, ...],
) -> Tensor:
    """dL/dx: the transposed convolution, sized to the (extra-padded) input, then cropped; an
    empty input (no samples or no channels) has an empty gradient."""
    if input_shape.numel() == 0:
        return grad_output.new_zeros(input_shape)
    spatial = input_shape[2:]
    output_padding = tuple(
        size + after - ((out - 1) * s - 2 * p + d * (k - 1) + 1)
        for size, after, out, s, p, d, k in zip(
            spatial,
            extra,
            grad_output.shape[2:],
            stride,
            padding,
            dilation,
            weight.shape[2:],
            strict=True,
        )
    )
    grad = torch.convolution(
        grad_output, weight, None, stride, padding, dilation, True, output_padding, groups
    )
    for dim, (size, after) in enumerate(zip(spatial, extra, strict=True)):
        if after:
            grad = grad.narrow(dim + 2, 0, size)
    return grad


PRODUCT_OUTPUTS = 32
"""Output pixels up to which a 2-d weight gradient is a matrix product of unfold(x) (measured
on a ResNet-18's 3×3 convolutions at 4×4 and 2×2 outputs, one thread: 2–9× faster than the
convolution form; at 8×8 the two are even, above it the convolution is faster)."""
TAP_KERNEL = 32
"""Kernel width up to which a 1-d, one-group weight gradient is one batched matrix product per
kernel tap (a 64 → 64 channel, 3-wide convolution of 4 × 1024 samples, one thread: 2.2 ms as
the convolution of the swapped operands, whose kernel is the 1024 outputs wide; 0.97 ms as
three products, torch's own 0.97 ms)."""
PRODUCT_COLUMNS = 2**16
"""Values of unfold(x) up to which a 2-d weight gradient is a matrix product all the same: a
convolution kernel's fixed cost is more than the product of such small matrices (a 1 → 8
channel 3×3 convolution of 4×1×16×16 images: 148 → 47 µs)."""


def _conv_weight_grad(
    grad_output: Tensor,
    input: Tensor,
    weight_shape: torch.Size,
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
    taps: bool = False,
    zeros_outside: bool = False,
) -> Tensor:
    """dL/dW as one convolution: channels ↔ batch swapped, stride ↔ dilation swapped; or, for
    a 2-d 1×1 kernel, a small output or a small unfold(x), as a matrix product of unfold(x);
    with ``taps``, in 1-d (one group, at most ``TAP_KERNEL`` taps), one product per kernel tap,
    and with ``zeros_outside`` also the padding's zeros times G_y (a transposed convolution's
    dL/dW, for which torch's kernel multiplies them: see :func:`_weight_grad_taps`)."""
    batch, channels, *spatial = input.shape
    kernel = weight_shape[2:]
    if input.numel() == 0:  # no samples (dL/dW = 0) or no input channels (W is empty)
        return grad_output.new_zeros(weight_shape)
    if (
        taps
        and input.dim() == 3
        and groups == 1
        and kernel[0] <= TAP_KERNEL
        and not transforms_or_tracing(grad_output, input)
    ):
        return _weight_grad_taps(
            grad_output, input, kernel[0], stride[0], padding[0], dilation[0], zeros_outside
        )
    outputs = math.prod(grad_output.shape[2:])
    if (
        input.dim() == 4
        and (
            math.prod(kernel) == 1
            or outputs <= PRODUCT_OUTPUTS
            or batch * channels * math.prod(kernel) * outputs <= PRODUCT_COLUMNS
        )
        and not transforms_or_tracing(grad_output, input)
    ):
        return _weight_grad_product(grad_output, input, kernel, stride, padding, dilation, groups)
    # (N, G·C_g, *S) → (C_g, G·N, *S): image c of the new batch holds channel c of every group,
    # laid out group by group so that ``groups=G`` pairs each group with its own filters.
    images = (
        input.reshape(batch, groups, channels // groups, *spatial)
        .transpose(0, 2)
        .reshape(channels // groups, groups * batch, *spatial)
    )
    filters = grad_output.transpose(0, 1)  # (C_out, N, *S_out)
    zeros = (0,) * len(stride)
    # Dense copies for the kernel; channels-last (the N "channels" innermost) is the fast layout
    # for this short-and-wide convolution in 2-d, but a batched operand (autograd's vmap over
    # the incoming gradients) cannot be asked for a layout other than the contiguous one.
    channels_last = images.dim() == 4 and not transforms_or_tracing(grad_output, input)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    full = torch.convolution(
        images.contiguous(memory_format=layout),
        filters.contiguous(memory_format=layout),
        None,
        dilation,
        padding,
        stride,
        False,
        zeros,
        groups,
    )  # (C_g, C_out, *≥ kernel)
    for dim, size in enumerate(kernel):
        full = full.narrow(dim + 2, 0, size)
    return full.transpose(0, 1)


def _weight_grad_product(
    grad_output: Tensor,
    input: Tensor,
    kernel: Sequence[int],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
) -> Tensor:
    """dL/dW[o, (c, j)] = Σ_{n, i} G_y[n, o, i] · unfold(x)[n, (c, j), i], one matrix product
    per group over the N·L (sample, output pixel) pairs."""
    out_channels = grad_output.shape[1]
    columns = unfold(input, kernel, dilation, padding, stride)  # (N, C_in · k, L)
    rows = columns.shape[1] // groups
    columns = columns.unflatten(1, (groups, rows)).permute(1, 2, 0, 3).reshape(groups, rows, -1)
    grads = (
        grad_output.flatten(2)
        .unflatten(1, (groups, out_channels // groups))
        .permute(1, 2, 0, 3)
        .reshape(groups, out_channels // groups, -1)
    )
    return grads.matmul(columns.transpose(1, 2)).reshape(out_channels, -1, *kernel)


def _weight_grad_taps(
    grad_output: Tensor,
    input: Tensor,
    kernel: int,
    stride: int,
    padding: int,
    dilation: int,
    zeros_outside: bool = False,
) -> Tensor:
    """dL/dW[:, :, j] = Σ_n Σ_i G_y[n, :, i] · x[n, :, s·i + d·j − p]ᵀ, one batched matrix product
    per kernel tap j over the outputs i whose cell lies inside x (the padding's cells add
    nothing: no 0 · ∞ where x or G_y holds an infinity).

    ``zeros_outside``: each tap also adds Σ_n Σ_i 0 · G_y[n, :, i] over the outputs i whose cell
    is padding, for every column — 0, or NaN where such a G_y is infinite or NaN: a float64
    transposed convolution's dL/dW (G_y its x, x its dL/dy), where torch's kernel multiplies the
    padded dL/dy's zeros by x (its float32 kernel does not)."""
    length = input.shape[2]
    # x's cells s·i + c by residue r = c mod s, each a dense copy (x itself for s = 1): a tap's
    # cells are then a contiguous run of one of them, which the product reads without a copy
    phases = [input[:, :, r::stride].contiguous() for r in range(stride)] if stride > 1 else [input]
    taps = []
    for j in range(kernel):
        offset = j * dilation - padding  # x's cell of output 0
        first = max(0, -(offset // stride))  # the first output whose cell is ≥ 0
        end = max(first, min(grad_output.shape[2], (length - 1 - offset) // stride + 1))
        if end == first:
            tap = grad_output.new_zeros(grad_output.shape[1], input.shape[1])
        else:
            start = first * stride + offset
            cells = phases[start % stride][:, :, start // stride : start // stride + end - first]
            tap = torch.bmm(grad_output[:, :, first:end], cells.mT).sum(0)
        if zeros_outside and (first > 0 or end < grad_output.shape[2]):
            outside = torch.cat((grad_output[:, :, :first], grad_output[:, :, end:]), 2)
            tap = tap + (outside * 0).sum((0, 2)).unsqueeze(1)
        taps.append(tap)
    return torch.stack(taps, -1)


def _expand(value: IntOrTuple, dims: int, name: str) -> tuple[int, ...]:
    """An int or a length-1/length-``dims`` sequence as a ``dims``-tuple (torch's rule)."""
    if isinstance(value, int):
        return (value,) * dims
    values = tuple(value)
    if len(values) == 1:
        return values * dims
    if len(values) != dims:
        raise RuntimeError(
            f"expected {name} to be a single integer value or a list of {dims} values to match "
            f"the convolution dimensions, but got {name}={list(values)}"
        )
    return values


def _resolve_padding(
    padding: str | IntOrTuple,
    kernel: Sequence[int],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(symmetric padding, extra zeros after) per spatial dim; 'same'/'valid' as torch does."""
    dims = len(stride)
    if not isinstance(padding, str):
        return _expand(padding, dims, "padding"), (0,) * dims
    if padding == "valid":
        return (0,) * dims, (0,) * dims
    if padding != "same":
        raise RuntimeError(f"Invalid padding string: '{padding}'")
    if any(s != 1 for s in stride):
        raise RuntimeError("padding='same' is not supported for strided convolutions")
    totals = [d * (k - 1) for d, k in zip(dilation, kernel, strict=True)]
    return tuple(t // 2 for t in totals), tuple(t - 2 * (t // 2) for t in totals)


def _convolution(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: IntOrTuple,
    padding: str | IntOrTuple,
    dilation: IntOrTuple,
    groups: int,
    dims: int,
) -> Tensor:
    """Shared body of conv1d/conv2d: unbatched inputs, tuple arguments, string paddings."""
    if input.dim() not in (dims + 1, dims + 2):
        raise RuntimeError(
            f"Expected {dims + 1}D (unbatched) or {dims + 2}D (batched) input to conv{dims}d, "
            f"but got input of size: {list(input.shape)}"
        )
    unbatched = input.dim() == dims + 1
    stride = _expand(stride, dims, "stride")
    dilation = _expand(dilation, dims, "dilation")
    padding, extra = _resolve_padding(padding, weight.shape[2:], stride, dilation)
    return _apply_batched(
        ConvolutionFunction,
        input,
        unbatched,
        weight,
        bias,
        stride,
        padding,
        dilation,
        groups,
        extra,
    )


def _conv_op(dims: int, doc: str):
    """``torch.nn.functional.conv{dims}d``, same signature and defaults, documented by ``doc``."""

    def op(
        input: Tensor,
        weight: Tensor,
        bias: Tensor | None = None,
        stride: IntOrTuple = 1,
        padding: str | IntOrTuple = 0,
        dilation: IntOrTuple = 1,
        groups: int = 1,
    ) -> Tensor:
        return _convolution(input, weight, bias, stride, padding, dilation, groups, dims=dims)

    op.__name__ = op.__qualname__ = f"conv{dims}d"
    op.__doc__ = doc
    return op


conv1d = _conv_op(
    1,
    """``torch.nn.functional.conv1d`` with the backward of :class:`ConvolutionFunction`.

    ``padding`` is an int, a 1-tuple, ``'valid'`` (none) or ``'same'`` (output length = input
    length; stride must be 1; an odd total d·(k − 1) puts the extra zero at the end, as torch).
    """,
)
conv2d = _conv_op(
    2,
    """``torch.nn.functional.conv2d`` with the backward of :class:`ConvolutionFunction`.

    ``padding`` is an int, a pair, ``'valid'`` or ``'same'`` (see :func:`conv1d`).
    """,
)


__all__ = ["ConvolutionFunction", "conv1d", "conv2d"]
