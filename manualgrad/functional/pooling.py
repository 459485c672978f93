r"""2-d pooling: max (a selection, so its gradient is a scatter), average (a convolution with a
constant kernel, so its gradient is the transposed convolution) and adaptive average (a product
with two averaging matrices, so its gradient is the product with their transposes).

Window geometry follows torch exactly (``pooling_output_shape``): along one dim of size n with
kernel k, stride s, padding p and dilation d, window i starts at i·s − p and reads
i·s − p + d·j for j < k; there are ⌊(n + 2p − d(k − 1) − 1) / s⌋ + 1 windows (⌈·⌉ with
``ceil_mode``, dropping a last window that would start in the right padding).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.nn.functional import conv2d, conv_transpose2d, pad

from manualgrad.functional._function import Function
from manualgrad.functional._precision import downcast, upcast

IntPair = int | Sequence[int]


@dataclass(frozen=True)
class _Window:
    """Pooling geometry per spatial dim (H, W): kernel, stride, padding, dilation, the output
    size, and how many padding cells ``ceil_mode`` windows read past the symmetric padding."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    output: tuple[int, int]
    overhang: tuple[int, int]

    def offsets(self) -> Iterator[tuple[int, int]]:
        """(row, column) offset of each kernel cell from its window's start, row-major."""
        for a in range(self.kernel[0]):
            for b in range(self.kernel[1]):
                yield a * self.dilation[0], b * self.dilation[1]

    def padded(self, input: Tensor, value: float, symmetric: bool = True) -> Tensor:
        """``input`` padded by ``value`` so that every window lies inside it (without the
        symmetric padding if ``symmetric`` is False: a convolution adds that itself)."""
        (ph, pw), (oh, ow) = self.padding if symmetric else (0, 0), self.overhang
        if not (ph or pw or oh or ow):
            return input
        return pad(input, (pw, pw + ow, ph, ph + oh), value=value)

    def cells(self, padded: Tensor, row: int, col: int) -> Tensor:
        """The strided view of ``padded`` holding kernel cell (row, col) of every window."""
        (sh, sw), (oh, ow) = self.stride, self.output
        return padded[..., row : row + sh * (oh - 1) + 1 : sh, col : col + sw * (ow - 1) + 1 : sw]

    def span(self, dim: int) -> int:
        """Cells from the first window's start to the last window's end along ``dim``."""
        return (
            (self.output[dim] - 1) * self.stride[dim]
            + self.dilation[dim] * (self.kernel[dim] - 1)
            + 1
        )

    def unread(self, size: Sequence[int]) -> tuple[int, int]:
        """Trailing cells of the padded input that no window reads, per dim."""
        return tuple(max(0, size[dim] + 2 * self.padding[dim] - self.span(dim)) for dim in (0, 1))

    def starts(self, dim: int) -> list[int]:
        """First input index (possibly negative) read by each window along ``dim``."""
        return [i * self.stride[dim] - self.padding[dim] for i in range(self.output[dim])]


def _pair(value: IntPair | None, op: str, what: str, default: IntPair | None = None) -> tuple:
    """An int or a 1-/2-sequence as a pair (torch's rule), with torch's message otherwise."""
    if value is None or (not isinstance(value, int) and len(value) == 0 and default is not None):
        value = default
    if isinstance(value, int):
        return (value, value)
    values = tuple(value)
    if len(values) not in (1, 2):
        raise RuntimeError(f"{op}: {what}")
    return values * 2 if len(values) == 1 else values


def _output_size(
    size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool
) -> int:
    """torch's ``pooling_output_shape`` with its checks."""
    if stride == 0:
        raise RuntimeError("stride should not be zero")
    if padding < 0:
        raise RuntimeError(f"pad must be non-negative, but got pad: {padding}")
    if padding > ((kernel - 1) * dilation + 1) // 2:
        raise RuntimeError(
            "pad should be at most half of effective kernel size, but got "
            f"pad={padding}, kernel_size={kernel} and dilation={dilation}"
        )
    span = dilation * (kernel - 1) + 1
    output = (size + 2 * padding - span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (output - 1) * stride >= size + padding:
        output -= 1
    return output


_WINDOWS: dict[tuple, _Window] = {}
"""The geometry of the pooling calls seen so far, by op, input shape and arguments: a training
loop pools the same shapes every step, and checking a call costs more than pooling a small
image (16 of 56 µs of a 1×16×16×16 max_pool2d). :data:`_DIVISORS` likewise for avg_pool2d's
divisors (7 µs a call)."""
_DIVISORS: dict[tuple, tuple[tuple[int, ...], tuple[int, ...]]] = {}
_KEPT = 1024  # entries of each, at the most


def _remembered(cache: dict, key: tuple, compute: Callable[[], Any]) -> Any:
    """``cache[key]``, computed by ``compute()`` the first time (the cache emptied when full)."""
    value = cache.get(key)
    if value is None:
        value = compute()
        if len(cache) >= _KEPT:
            cache.clear()
        cache[key] = value
    return value


def _window(
    op: str,
    input: Tensor,
    kernel_size: IntPair,
    stride: IntPair | None,
    padding: IntPair,
    dilation: IntPair,
    ceil_mode: bool,
) -> _Window:
    """Validate a pooling call the way torch does and return its geometry (remembered in
    ``_WINDOWS`` for eager calls whose arguments are ints or flat sequences)."""
    arguments = (kernel_size, stride, padding, dilation)
    flat = all(value is None or isinstance(value, int | tuple | list) for value in arguments)
    if torch.compiler.is_compiling() or not flat:
        return _geometry(op, input.shape, *arguments, ceil_mode)
    key = (op, tuple(input.shape), ceil_mode, *(_frozen(value) for value in arguments))
    try:
        hash(key)
    except TypeError:  # an unhashable element: an invalid argument, as _geometry says
        return _geometry(op, input.shape, *arguments, ceil_mode)
    return _remembered(_WINDOWS, key, lambda: _geometry(op, input.shape, *arguments, ceil_mode))


def _frozen(value: IntPair | None) -> int | tuple | None:
    """An argument as a dictionary key: a list as a tuple."""
    return tuple(value) if isinstance(value, list) else value


def _geometry(
    op: str,
    shape: torch.Size,
    kernel_size: IntPair,
    stride: IntPair | None,
    padding: IntPair,
    dilation: IntPair,
    ceil_mode: bool,
) -> _Window:
    """The checks and geometry of :func:`_window` for an input of ``shape``."""
    kernel = _pair(
        kernel_size, op, "kernel_size must either be a single int, or a tuple of two ints"
    )
    strides = _pair(
        stride,
        op,
        "stride must either be omitted, a single int, or a tuple of two ints",
        default=kernel,
    )
    pads = _pair(padding, op, "padding must either be a single int, or a tuple of two ints")
    dilations = _pair(dilation, op, "dilation must be either a single int, or a tuple of two ints")
    if len(shape) not in (3, 4) or any(size == 0 for size in shape[-3:]):
        raise RuntimeError(
            "Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, "
            f"but got:{list(shape)}"
        )
    height, width = shape[-2:]
    output = tuple(
        _output_size(size, k, s, p, d, ceil_mode)
        for size, k, s, p, d in zip((height, width), kernel, strides, pads, dilations, strict=True)
    )
    if min(kernel) <= 0:
        raise RuntimeError(
            f"kernel size should be greater than zero, but got kH: {kernel[0]} kW: {kernel[1]}"
        )
    if min(strides) <= 0:
        raise RuntimeError(
            f"stride should be greater than zero, but got dH: {strides[0]} dW: {strides[1]}"
        )
    if min(dilations) <= 0:
        raise RuntimeError(
            "dilation should be greater than zero, but got "
            f"dilationH: {dilations[0]} dilationW: {dilations[1]}"
        )
    if any(p > k // 2 for p, k in zip(pads, kernel, strict=True)):
        # torch's max_pool2d kernel bounds the padding by half the undilated kernel as well
        raise RuntimeError(
            "pad should be smaller than or equal to half of kernel size, but got "
            f"padW = {pads[1]}, padH = {pads[0]}, kW = {kernel[1]}, kH = {kernel[0]}"
        )
    if min(output) < 1:
        channels = shape[-3]
        raise RuntimeError(
            f"Given input size: ({channels}x{height}x{width}). Calculated output size: "
            f"({channels}x{output[0]}x{output[1]}). Output size is too small"
        )
    window = _Window(kernel, strides, pads, dilations, output, (0, 0))
    overhang = tuple(
        max(0, window.span(dim) - size - 2 * pads[dim]) for dim, size in enumerate((height, width))
    )
    return _Window(kernel, strides, pads, dilations, output, overhang)


def _batched(function: type[torch.autograd.Function], input: Tensor, *args: object):
    """Apply ``function`` to a 4-d view of a 3-d (unbatched) or 4-d input; undo the view."""
    if input.dim() == 4:
        return function.apply(input, *args)
    outputs = function.apply(input.unsqueeze(0), *args)
    if isinstance(outputs, tuple):
        return tuple(output.squeeze(0) for output in outputs)
    return outputs.squeeze(0)


class MaxPool2dFunction(Function):
    r"""Max pooling  y[n, c, i, j] = max over window (i, j) of x[n, c, ·, ·]  (x padded by −∞).

    Forward: a running maximum over the k_h·k_w strided views "kernel cell (a, b) of every
    window", remembering the flat input index h·W + w of the winner. The winner is torch's: the
    first maximum in row-major window order, or the last NaN if the window holds one (a cell
    replaces the winner iff  v > y  or  v ≠ v).  The indices are a second, non-differentiable
    output (``return_indices``). The winner's offset is carried as a float, exact below 2²⁴ in
    float32 and in float64 beyond (a kernel spanning rows of more than 2²⁴ / k_h cells).

    Saved: the int64 indices only (the size of y) — never x.

    dL/dx = scatter-add of dL/dy into zeros shaped like x at the saved indices (overlapping
    windows that pick the same cell add up).  Linear in dL/dy; its own derivative is a gather.
    """

    @staticmethod
    def forward(input: Tensor, window: _Window) -> tuple[Tensor, Tensor]:
        width = input.shape[-1]
        padded = window.padded(input, float("-inf"))
        cells = window.offsets()
        first = next(cells)
        output = window.cells(padded, *first).clone()
        # Offsets (a·d_h·W + b·d_w) of the current winner as small exact floats: float-valued
        # comparisons (out=) and lerp are the cheapest way to carry them along.
        largest = (
            window.dilation[0] * window.kernel[0] * width + window.dilation[1] * window.kernel[1]
        )
        exact = torch.float32 if largest < 2**24 else torch.float64
        winner = _first_real(window, width, input.device, exact).expand(output.shape).clone()
        replace = torch.empty_like(winner)
        is_nan = torch.empty_like(winner)
        for row, col in cells:
            cell = window.cells(padded, row, col).contiguous()
            torch.gt(cell, output, out=replace)
            replace.add_(torch.ne(cell, cell, out=is_nan))
            winner.lerp_(replace.new_tensor(float(row * width + col)), replace)
            torch.maximum(output, cell, out=output)
        indices = winner.to(torch.int64).add_(_window_starts(window, width, input.device))
        return output, indices

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, _ = inputs
        _, indices = output
        ctx.mark_non_differentiable(indices)
        ctx.save_for_backward(indices)
        ctx.input_shape = input.shape

    @staticmethod
    def backward(ctx, grad_output: Tensor, _grad_indices: Tensor | None):
        (indices,) = ctx.saved_tensors
        return _scatter_to_input(grad_output, indices, ctx.input_shape), None

    @staticmethod
    def vmap(info, in_dims, input: Tensor, window: _Window):
        """vmap rule: fold the mapped dim into the batch dim (every plane is pooled alike), so
        that the forward's out= kernels run on plain tensors."""
        input = input.movedim(in_dims[0], 0)
        output, indices = MaxPool2dFunction.apply(input.flatten(0, 1), window)
        leading = input.shape[:2]
        return (output.unflatten(0, leading), indices.unflatten(0, leading)), (0, 0)


def _scatter_to_input(grad_output: Tensor, indices: Tensor, shape: torch.Size) -> Tensor:
    """dL/dx of a max pool: dL/dy scatter-added into zeros shaped like x at the flat (h·W + w)
    argmax ``indices``. Linear in dL/dy; its own derivative is a gather. dL/dy is reshaped to
    the flat indices' shape: ``flatten`` has no batching rule in autograd's vmap
    (``is_grads_batched``)."""
    flat = grad_output.new_zeros(*shape[:-2], shape[-2] * shape[-1])
    flat_indices = indices.flatten(-2)
    return flat.scatter_add(-1, flat_indices, grad_output.reshape(flat_indices.shape)).view(shape)


def _window_starts(window: _Window, width: int, device: torch.device) -> Tensor:
    """Flat index (row · W + col, possibly negative) of each window's first cell: (H_out, W_out)."""
    rows = torch.tensor(window.starts(0), device=device)
    cols = torch.tensor(window.starts(1), device=device)
    return rows.unsqueeze(1) * width + cols


def _first_real(window: _Window, width: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Offset of each window's first cell inside the input (torch's initial argmax: windows
    that start in the padding begin at their first real row/column)."""
    skips = []
    for dim in (0, 1):
        step = window.dilation[dim]
        skips.append(
            torch.tensor([-(-max(0, -s) // step) * step for s in window.starts(dim)], device=device)
        )
    return (skips[0].unsqueeze(1) * width + skips[1]).to(dtype)


def max_pool2d(
    input: Tensor,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """``torch.nn.functional.max_pool2d`` through :class:`MaxPool2dFunction`.

    ``stride`` defaults to ``kernel_size``; with ``return_indices`` the flat (h·W + w) argmax
    per output is returned too (int64, non-differentiable), as torch does.
    """
    if input.dim() not in (3, 4):
        raise RuntimeError("non-empty 3D or 4D (batch mode) tensor expected for input")
    window = _window("max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode)
    output, indices = _batched(MaxPool2dFunction, input, window)
    return (output, indices) if return_indices else output


class AvgPool2dFunction(Function):
    r"""Average pooling  y[n, c, i, j] = (1 / D_ij) Σ_{window (i, j)} x   (x zero-padded),

    computed as a depthwise convolution of x with a kernel of ones, divided by D:
    D_ij = ``divisor_override`` if given, else the window's size clipped to the padded input
    (``count_include_pad``) or to the input itself. D = D_rows ⊗ D_cols depends on shapes only.

    Saved: nothing (only the shapes).

    dL/dx = conv_transpose(dL/dy / D, ones) cropped to x's size: every cell of x receives the
    share 1/D of each window containing it.  Linear in dL/dy.

    float16/bfloat16 inputs are pooled in float32 and the result cast back (:func:`avg_pool2d`),
    as torch's kernel accumulates: a window sum of float16 values overflows at 65504.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, window: _Window, divisors: tuple[tuple[int, ...], ...]) -> Tensor:
        ones = _ones_kernel(input, window)
        padded = window.padded(input, 0.0, symmetric=False)
        channels = input.shape[-3]
        sums = conv2d(padded, ones, None, window.stride, window.padding, window.dilation, channels)
        return sums.div_(_divisor(divisors, sums))

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, window, divisors = inputs
        ctx.input_shape = input.shape
        ctx.window = window
        ctx.divisors = divisors

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        window, (height, width) = ctx.window, ctx.input_shape[-2:]
        scaled = grad_output / _divisor(ctx.divisors, grad_output)
        # Transposed convolution with padding p crops p cells on each side; output_padding adds
        # the trailing cells no window read (fewer than a stride); overhang cells are cut off.
        grad_input = conv_transpose2d(
            scaled,
            _ones_kernel(grad_output, window),
            None,
            window.stride,
            window.padding,
            window.unread((height, width)),
            ctx.input_shape[-3],
            window.dilation,
        )
        # Cropped only when needed: a no-op crop is an alias, which autograd's vmap cannot batch.
        if grad_input.shape[-2:] != (height, width):
            grad_input = grad_input[..., :height, :width]
        return grad_input, None, None


def _ones_kernel(like: Tensor, window: _Window) -> Tensor:
    """A (C, 1, k_h, k_w) kernel of ones for a depthwise convolution over ``like``'s channels."""
    return like.new_ones(like.shape[-3], 1, *window.kernel)


def _divisor(divisors: tuple[tuple[int, ...], ...], like: Tensor) -> Tensor:
    """The (H_out, W_out) divisor D_rows ⊗ D_cols in ``like``'s dtype (``torch.tensor``, not
    ``like.new_tensor``: ``like`` may be batched by autograd's vmap, which has no device)."""
    rows, cols = (torch.tensor(d, dtype=like.dtype, device=like.device) for d in divisors)
    return rows.unsqueeze(1) * cols


def _avg_divisors(
    window: _Window,
    size: tuple[int, int],
    count_include_pad: bool,
    divisor_override: int | None,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Per-dim window sizes whose outer product is torch's divisor (see AvgPool2dFunction)."""
    if divisor_override is not None:
        return (divisor_override,), (1,)
    divisors = []
    for dim in (0, 1):
        counts = []
        for start in window.starts(dim):
            end = min(start + window.kernel[dim], size[dim] + window.padding[dim])
            if not count_include_pad:
                start, end = max(start, 0), min(end, size[dim])
            counts.append(end - start)
        divisors.append(tuple(counts))
    return divisors[0], divisors[1]


def avg_pool2d(
    input: Tensor,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """``torch.nn.functional.avg_pool2d`` through :class:`AvgPool2dFunction`."""
    if input.dim() < 3:
        raise IndexError(f"avg_pool2d: expected a 3D or 4D input, got size {list(input.shape)}")
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    window = _window("avg_pool2d", input, kernel_size, stride, padding, 1, ceil_mode)
    size = tuple(input.shape[-2:])
    divisors = _remembered(
        _DIVISORS,
        (window, size, count_include_pad, divisor_override),
        lambda: _avg_divisors(window, size, count_include_pad, divisor_override),
    )
    (wide,) = upcast(input)
    return downcast(_batched(AvgPool2dFunction, wide, window, divisors), input.dtype)


class AdaptiveAvgPool2dFunction(Function):
    r"""Adaptive average pooling to (h, w):  y = A_h · x · A_wᵀ  per (n, c) plane, where row i
    of A_h (h × H) averages x's rows ⌊iH/h⌋ … ⌈(i+1)H/h⌉ − 1 (torch's windows), same for A_w.

    When h divides H and w divides W the windows are the k_h × k_w tiles (k = H/h, W/w): then
    y is a mean over tiles and dL/dx the broadcast of dL/dy / (k_h k_w) over each tile.
    Otherwise the forward takes the window means themselves (rows, then columns: h + w slice
    means), not the products with A_h, A_w: an inf in x stays in its windows, where the product
    would spread inf·0 = NaN over every output.

    Saved: nothing (A_h, A_w depend on shapes only and are rebuilt).

    dL/dx = A_hᵀ · dL/dy · A_w.  Linear in dL/dy.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, output_size: tuple[int, int]) -> Tensor:
        tile = _tile(input.shape[-2:], output_size)
        if tile is not None:
            (out_h, out_w), (tile_h, tile_w) = output_size, tile
            tiles = input.unflatten(-1, (out_w, tile_w)).unflatten(-3, (out_h, tile_h))
            return tiles.mean((-3, -1))
        return _window_means(_window_means(input, -2, output_size[0]), -1, output_size[1])

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, output_size = inputs
        ctx.input_size = input.shape[-2:]
        ctx.output_size = output_size

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        tile = _tile(ctx.input_size, ctx.output_size)
        if tile is not None:
            (out_h, out_w), (tile_h, tile_w) = ctx.output_size, tile
            share = (grad_output / (tile_h * tile_w)).unsqueeze(-1).unsqueeze(-3)
            spread = share.expand(*share.shape[:-4], out_h, tile_h, out_w, tile_w)
            return spread.reshape(*share.shape[:-4], *ctx.input_size), None
        rows, cols = _averaging_matrices(grad_output, ctx.input_size, ctx.output_size)
        return rows.t().matmul(grad_output.matmul(cols)), None


def _tile(input_size: Sequence[int], output_size: Sequence[int]) -> tuple[int, int] | None:
    """The tile (k_h, k_w) if the output size divides the input size, else None."""
    if all(out and size % out == 0 for size, out in zip(input_size, output_size, strict=True)):
        return input_size[0] // output_size[0], input_size[1] // output_size[1]
    return None


def _window_bounds(size: int, out: int) -> list[tuple[int, int]]:
    """torch's adaptive windows along one dim: [⌊iH/h⌋, ⌈(i+1)H/h⌉) for i < h."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def _window_means(input: Tensor, dim: int, out: int) -> Tensor:
    """The ``out`` adaptive window means of ``input`` along ``dim``, stacked there."""
    if out == 0:
        return input.narrow(dim, 0, 0)
    size = input.shape[dim]
    means = [
        input.narrow(dim, start, end - start).mean(dim, keepdim=True)
        for start, end in _window_bounds(size, out)
    ]
    return torch.cat(means, dim)


def _averaging_matrices(
    like: Tensor, input_size: Sequence[int], output_size: Sequence[int]
) -> tuple[Tensor, Tensor]:
    """A_h (h × H) and A_w (w × W) in ``like``'s dtype and device."""
    matrices = []
    for size, out in zip(input_size, output_size, strict=True):
        index = torch.arange(out, device=like.device)
        starts = (index * size).div(out, rounding_mode="floor")
        ends = ((index + 1) * size + out - 1).div(out, rounding_mode="floor")
        cells = torch.arange(size, device=like.device)
        inside = (cells >= starts.unsqueeze(1)) & (cells < ends.unsqueeze(1))
        matrices.append(inside.to(like.dtype) / (ends - starts).unsqueeze(1).to(like.dtype))
    return matrices[0], matrices[1]


def _adaptive_sizes(
    op: str, input: Tensor, output_size: int | Sequence[int | None], empty_global: bool
) -> tuple[int, int]:
    """Validate an adaptive 2-d pool the way torch does; the output (h, w), ``None`` keeping
    that input size. ``empty_global``: an empty plane is allowed for a (1, 1) output."""
    if input.dim() not in (3, 4):
        raise RuntimeError(f"{op}(): Expected 3D or 4D tensor, but got {list(input.shape)}")
    sizes = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    for dim in (-2, -1):
        if input.shape[dim] == 0 and not (empty_global and tuple(sizes) == (1, 1)):
            raise RuntimeError(
                f"{op}(): Expected input to have non-zero size for non-batch "
                f"dimensions, but input has sizes {list(input.shape)} with dimension "
                f"{input.dim() + dim} being empty"
            )
    if input.dim() <= len(sizes):  # torch's _list_with_default
        raise ValueError(
            f"{op}: `output_size` has {len(sizes)} elements: Input dimension "
            f"should be at least {len(sizes) + 1}"
        )
    if len(sizes) != 2:
        raise RuntimeError(f"{op}: output_size must be 2")
    sizes = tuple(input.shape[-2 + i] if s is None else s for i, s in enumerate(sizes))
    if min(sizes) < 0:
        raise RuntimeError(
            f"{op}: elements of output_size must be greater than or equal to 0 "
            f"but received {{{sizes[0]}, {sizes[1]}}}"
        )
    return sizes


def adaptive_avg_pool2d(input: Tensor, output_size: int | Sequence[int | None]) -> Tensor:
    """``torch.nn.functional.adaptive_avg_pool2d`` through :class:`AdaptiveAvgPool2dFunction`;
    ``None`` in ``output_size`` keeps that input size (torch: a global pool of an empty plane
    is a mean, so it is allowed)."""
    sizes = _adaptive_sizes("adaptive_avg_pool2d", input, output_size, empty_global=True)
    return AdaptiveAvgPool2dFunction.apply(input, sizes)


def _single(value: IntPair | None, op: str, what: str, default: int | None = None) -> int:
    """An int or a 1-sequence as an int (torch's 1-d rule), with torch's message otherwise."""
    if value is None:
        return default
    if isinstance(value, int):
        return value
    values = tuple(value)
    if len(values) != 1:
        raise RuntimeError(f"{op}() argument '{what}' should contain one int (got {len(values)})")
    return values[0]


def _as_line(op: str, input: Tensor) -> Tensor:
    """A 2-d (C, L) or 3-d (N, C, L) input as an image of height 1: (…, C, 1, L)."""
    if input.dim() not in (2, 3):
        raise RuntimeError(
            f"{op}: Expected 2D or 3D (batch mode) tensor with optional 0 dim batch size for "
            f"input, but got:{list(input.shape)}"
        )
    return input.unsqueeze(-2)


def max_pool1d(
    input: Tensor,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """``torch.nn.functional.max_pool1d`` through :class:`MaxPool2dFunction` on the input seen
    as an image of height 1 with a (1, k) kernel: every window then lies in the single row, so
    the 2-d derivation holds as is, and the flat index h·W + w is the 1-d index w.
    """
    image = _as_line("max_pool1d", input)
    kernel = _single(kernel_size, "max_pool1d", "kernel_size")
    window = _window(
        "max_pool1d",
        image,
        (1, kernel),
        (1, _single(stride, "max_pool1d", "stride", kernel)),
        (0, _single(padding, "max_pool1d", "padding")),
        (1, _single(dilation, "max_pool1d", "dilation")),
        ceil_mode,
    )
    output, indices = _batched(MaxPool2dFunction, image, window)
    output, indices = output.squeeze(-2), indices.squeeze(-2)
    return (output, indices) if return_indices else output


def avg_pool1d(
    input: Tensor,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    """``torch.nn.functional.avg_pool1d`` through :class:`AvgPool2dFunction` on the input seen
    as an image of height 1 with a (1, k) kernel (the row divisor is 1, so D is the 1-d one and
    the 2-d derivation holds as is)."""
    image = _as_line("avg_pool1d", input)
    kernel = _single(kernel_size, "avg_pool1d", "kernel_size")
    stride = _single(stride, "avg_pool1d", "stride", kernel)
    padding = _single(padding, "avg_pool1d", "padding")
    return avg_pool2d(
        image, (1, kernel), (1, stride), (0, padding), ceil_mode, count_include_pad
    ).squeeze(-2)


def adaptive_avg_pool1d(input: Tensor, output_size: int | Sequence[int]) -> Tensor:
    """``torch.nn.functional.adaptive_avg_pool1d`` through :class:`AdaptiveAvgPool2dFunction`
    on the input seen as an image of height 1 pooled to (1, output_size): A_h is then the 1×1
    identity, so y = x · A_wᵀ and dL/dx = dL/dy · A_w, the 2-d derivation restricted to a row."""
    image = _as_line("adaptive_avg_pool1d", input)
    size = _single(output_size, "adaptive_avg_pool1d", "output_size")
    return adaptive_avg_pool2d(image, (1, size)).squeeze(-2)


class AdaptiveMaxPool2dFunction(Function):
    r"""Adaptive max pooling to (h, w):  y[n, c, i, j] = max of x[n, c, R_i, C_j] over torch's
    adaptive windows R_i = ⌊iH/h⌋ … ⌈(i+1)H/h⌉ − 1 (C_j alike along W); the flat argmax
    h·W + w per output is a second, non-differentiable output (``return_indices``).

    Forward: the maximum is separable — first the maximum of every row over each column window
    (w slices), then of those over each row window (h slices) — and so is torch's winner, the
    first maximum in row-major window order: the first row holding the window's maximum, at that
    row's first maximal column (``torch.max`` along a dim returns the first maximum). The
    column of the winner is gathered from the row stage at the winning row.

    Saved: the int64 indices only (the size of y) — never x.

    dL/dx = scatter-add of dL/dy into zeros shaped like x at the saved indices (windows that
    overlap and pick the same cell add up), as for :class:`MaxPool2dFunction`.  Linear in dL/dy;
    its own derivative is a gather.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, output_size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        (height, width), (out_h, out_w) = input.shape[-2:], output_size
        if not (out_h and out_w):  # torch allows an empty output
            shape = (*input.shape[:-2], out_h, out_w)
            return input.new_empty(shape), input.new_empty(shape, dtype=torch.int64)
        row_max, row_arg = [], []
        for start, end in _window_bounds(width, out_w):
            value, arg = input[..., start:end].max(-1, keepdim=True)
            row_max.append(value)
            row_arg.append(arg + start)
        by_column = torch.cat(row_max, -1)  # (…, H, w): each row's max in each column window
        columns = torch.cat(row_arg, -1)
        values, indices = [], []
        for start, end in _window_bounds(height, out_h):
            value, arg = by_column[..., start:end, :].max(-2, keepdim=True)
            row = arg + start
            values.append(value)
            indices.append(row * width + columns.gather(-2, row))
        return torch.cat(values, -2), torch.cat(indices, -2)

    # the same saved indices and the same scatter as the fixed-window max pool
    setup_context = staticmethod(MaxPool2dFunction.setup_context)
    backward = staticmethod(MaxPool2dFunction.backward)


def adaptive_max_pool2d(
    input: Tensor, output_size: int | Sequence[int | None], return_indices: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """``torch.nn.functional.adaptive_max_pool2d`` through :class:`AdaptiveMaxPool2dFunction`;
    ``None`` in ``output_size`` keeps that input size; with ``return_indices`` the flat
    (h·W + w) argmax per output is returned too (int64, non-differentiable)."""
    sizes = _adaptive_sizes("adaptive_max_pool2d", input, output_size, empty_global=False)
    output, indices = AdaptiveMaxPool2dFunction.apply(input, sizes)
    return (output, indices) if return_indices else output


def adaptive_max_pool1d(
    input: Tensor, output_size: int | Sequence[int], return_indices: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """``torch.nn.functional.adaptive_max_pool1d`` through :class:`AdaptiveMaxPool2dFunction`
    on the input seen as an image of height 1 pooled to (1, output_size): every window lies in
    the single row, so the 2-d derivation holds and the flat index is the 1-d index."""
    image = _as_line("adaptive_max_pool1d", input)
    size = _single(output_size, "adaptive_max_pool1d", "output_size")
    output, indices = adaptive_max_pool2d(image, (1, size), True)
    output, indices = output.squeeze(-2), indices.squeeze(-2)
    return (output, indices) if return_indices else output


__all__ = [
    "AdaptiveAvgPool2dFunction",
    "AdaptiveMaxPool2dFunction",
    "AvgPool2dFunction",
    "MaxPool2dFunction",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "max_pool1d",
    "max_pool2d",
]
