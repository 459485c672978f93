"""Reductions: forward, what is saved, and the gradient spread back over the reduced dims.

Every op twins the ``torch`` function (and ``Tensor`` method) of the same name and signature:

===============  ============================================================================
op               twins
===============  ============================================================================
sum, mean        torch.sum / torch.mean (``dim`` int, tuple or None; ``keepdim``; ``dtype``)
var, std         torch.var / torch.std (``correction``; legacy ``unbiased``, also positional)
norm             torch.norm for vector norms: p = 'fro', 1, 2, inf, −inf, any other number
amax, amin       torch.amax / torch.amin (ties share the gradient evenly, as torch)
max, min         torch.max / torch.min: max(input) (ties share evenly), max(input, dim,
                 keepdim) → (values, indices) (the gradient goes to the index),
                 max(input, other) = maximum(input, other)
maximum,         torch.maximum / torch.minimum (equal elements split the gradient in halves)
minimum
logsumexp        torch.logsumexp
cumsum           torch.cumsum (``dtype``)
prod             torch.prod (all elements, or one ``dim``)
===============  ============================================================================

A reduced gradient g (the shape of the output) is first given back the reduced dims
(``unsqueeze``, unless ``keepdim``) and then broadcast to the input: :func:`spread`. Forward
values are torch's kernels (so dtypes, integer inputs and errors are torch's); ``dtype=``
casts the input before the Function, so autograd casts the gradient back. ``out=`` calls go to
torch's op (no gradient is defined through ``out=``). Every backward is built from plain tensor
ops, so it is differentiable again.

This module defines ``sum``, ``max`` and ``min``, so the builtins it needs are reached as
``builtins.<name>``.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Sequence
from numbers import Number

import torch
from torch import Tensor

from manualgrad.functional._checks import wrap_dim
from manualgrad.functional._function import Function
from manualgrad.functional.arithmetic import conj, reduce_to

Dims = int | Sequence[int] | None


def reduced_dims(dim: Dims, ndim: int) -> tuple[int, ...]:
    """The non-negative dims a reduction over ``dim`` removes (None or empty: all of them)."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    if not dims:
        return tuple(range(ndim))
    return tuple(sorted({wrap_dim(d, ndim, "reduction") for d in dims}))


def spread(grad: Tensor, shape: torch.Size, dims: tuple[int, ...], keepdim: bool) -> Tensor:
    """A reduction's output-shaped ``grad`` given back the reduced ``dims`` and broadcast to the
    input's ``shape`` (a view: no copy)."""
    return restored(grad, len(shape), dims, keepdim).expand(shape)


def restored(tensor: Tensor, ndim: int, dims: tuple[int, ...], keepdim: bool) -> Tensor:
    """An output-shaped tensor with the reduced ``dims`` put back as size 1 (a view)."""
    if keepdim or ndim == 0:
        return tensor
    for d in dims:
        tensor = tensor.unsqueeze(d)
    return tensor


def _count(shape: torch.Size, dims: tuple[int, ...]) -> int:
    return math.prod(shape[d] for d in dims) if shape else 1


def _record(ctx, input: Tensor, dim: Dims, keepdim: bool) -> None:
    """Put the input's shape, the reduced dims and ``keepdim`` on ``ctx``."""
    ctx.shape, ctx.keepdim = input.shape, keepdim
    ctx.dims = reduced_dims(dim, input.dim())


class SumFunction(Function):
    r"""Sum over ``dims``.  y = Σ_{dims} x.

    Each x_i appears once in the sum of its slice: ∂y/∂x_i = 1.
    Saved: nothing (the shape, the dims).
    dL/dx = dL/dy broadcast back over the reduced dims.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, dim: Dims, keepdim: bool) -> Tensor:
        return torch.sum(input, dim, keepdim)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _record(ctx, *inputs)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return spread(grad, ctx.shape, ctx.dims, ctx.keepdim), None, None


class MeanFunction(Function):
    r"""Mean over ``dims``.  y = Σ_{dims} x / n,  n = the number of elements reduced.

    Saved: nothing (the shape, the dims).
    dL/dx = dL/dy / n broadcast back over the reduced dims.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, dim: Dims, keepdim: bool) -> Tensor:
        return torch.mean(input, dim, keepdim)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _record(ctx, *inputs)

    @staticmethod
    def backward(ctx, grad: Tensor):
        count = _count(ctx.shape, ctx.dims)
        return spread(grad / count, ctx.shape, ctx.dims, ctx.keepdim), None, None


def _var_grad(grad: Tensor, input: Tensor, ctx) -> Tensor:
    """dL/dx of v = Σ (x − x̄)² / max(n − c, 0) given dL/dv = ``grad``: 2(x − x̄)/(n − c)·g
    (the x̄ terms cancel: Σ (x − x̄) = 0)."""
    divisor = builtins.max(_count(ctx.shape, ctx.dims) - ctx.correction, 0)
    centred = input - input.mean(ctx.dims, keepdim=True)
    scale = 2 / divisor if divisor else math.inf  # n ≤ c: torch's 2/0 = inf
    return centred * (restored(grad, len(ctx.shape), ctx.dims, ctx.keepdim) * scale)


class VarFunction(Function):
    r"""Variance over ``dims`` with Bessel-style ``correction`` c.
    v = Σ (x − x̄)² / max(n − c, 0).

    ∂v/∂x_i = 2(x_i − x̄)/(n − c)   (the terms through x̄ sum to 0).
    Saved: x (x̄ is recomputed; torch saves x too).
    dL/dx = 2(x − x̄)/(n − c) · dL/dv   (dL/dv broadcast back over the reduced dims).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, dim: Dims, correction: Number, keepdim: bool) -> Tensor:
        return torch.var(input, dim, correction=correction, keepdim=keepdim)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, dim, ctx.correction, keepdim = inputs
        _record(ctx, input, dim, keepdim)
        ctx.save_for_backward(input)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (input,) = ctx.saved_tensors
        return _var_grad(grad, input, ctx), None, None, None


class StdFunction(Function):
    r"""Standard deviation over ``dims``.  s = √v, v the variance with ``correction`` c.

    ∂s/∂x = ∂v/∂x / (2s), so dL/dv = dL/ds / (2s) (0 where s = 0, as torch), then as for var:
    Saved: x and s.
    dL/dx = (x − x̄)/((n − c)·s) · dL/ds.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, dim: Dims, correction: Number, keepdim: bool) -> Tensor:
        return torch.std(input, dim, correction=correction, keepdim=keepdim)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, dim, ctx.correction, keepdim = inputs
        _record(ctx, input, dim, keepdim)
        ctx.save_for_backward(input, output)

    @staticmethod
    def backward(ctx, grad: Tensor):
        input, output = ctx.saved_tensors
        grad_var = torch.where(output == 0, 0, grad / (2 * output))
        return _var_grad(grad_var, input, ctx), None, None, None


class NormFunction(Function):
    r"""Vector p-norm over ``dims``.  ‖x‖_p = (Σ |x|^p)^{1/p};  ‖x‖_∞ = max |x|,
    ‖x‖_{−∞} = min |x|;  ‖x‖_0 = #{x ≠ 0}.

    ∂‖x‖_p/∂x_i = sgn(x_i)·|x_i|^{p−1} / ‖x‖_p^{p−1}   (p = 2: x_i/‖x‖; p = 1: sgn(x_i)),
    0 where ‖x‖ = 0 (as torch); for p = ±∞ the elements with |x_i| = ‖x‖ share it evenly;
    p = 0 counts, so its gradient is 0.
    Saved: x and the norm.
    dL/dx = dL/dn · ∂‖x‖_p/∂x   (dL/dn and the norm broadcast back over the reduced dims).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, p: float, dim: Dims, keepdim: bool) -> Tensor:
        return torch.linalg.vector_norm(input, p, dim, keepdim)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, ctx.p, dim, keepdim = inputs
        _record(ctx, input, dim, keepdim)
        ctx.save_for_backward(input, output)

    @staticmethod
    def backward(ctx, grad: Tensor):
        input, norm = ctx.saved_tensors
        p, ndim = ctx.p, len(ctx.shape)
        grad = restored(grad, ndim, ctx.dims, ctx.keepdim)
        norm = restored(norm, ndim, ctx.dims, ctx.keepdim)
        return norm_vjp(grad, input, norm, p, ctx.dims), None, None, None


def norm_vjp(grad: Tensor, input: Tensor, norm: Tensor, p: float, dims: Sequence[int]) -> Tensor:
    """dL/dx = dL/dn · ∂‖x‖_p/∂x for the p-norm n of ``input`` over ``dims``; ``grad`` and
    ``norm`` keep the reduced dims (size 1). See :class:`NormFunction`."""
    if p == 0:
        return torch.zeros_like(input)
    if math.isinf(p):
        size = input.abs()
        hits = (size == norm) | size.isnan()
        share = grad / hits.sum(tuple(dims), keepdim=True)
        return input.sgn() * (share * hits)
    return _power_slope(input, p) * _norm_scale(grad, norm, p)


def _power_slope(input: Tensor, p: float) -> Tensor:
    """sgn(x)·|x|^{p−1} (x itself for p = 2, sgn(x) for p = 1, 0 at x = 0 for p < 1)."""
    if p == 2:
        return input
    if p == 1:
        return input.sgn()
    slope = input.sgn() * input.abs().pow(p - 1)
    return torch.where(input == 0, 0, slope) if p < 1 else slope


def _norm_scale(grad: Tensor, norm: Tensor, p: float) -> Tensor:
    """dL/dn / ‖x‖^{p−1}, 0 where the norm is 0 (p ≠ 1)."""
    if p == 1:
        return grad
    return torch.where(norm == 0, 0, grad / (norm if p == 2 else norm.pow(p - 1)))


class ExtremumFunction(Function):
    r"""amax / amin over ``dims`` (``largest`` picks which), and max() / min() of all elements
    (``nan_picks``).  y = max_{dims} x  (or min).

    y equals the x_i that attain it; ties share the gradient evenly (as torch's amax, amin and
    max()): with m_i = 1[x_i = y] and k = Σ_{dims} m. A NaN y: max()/min() give its gradient to
    the NaN elements (m_i = 1[x_i is NaN]), amax/amin to none (k = 0: NaN), as torch.
    Saved: x and y.
    dL/dx = m · dL/dy / k   (dL/dy, y and k broadcast back over the reduced dims).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, dim: Dims, keepdim: bool, largest: bool, nan_picks: bool) -> Tensor:
        return (torch.amax if largest else torch.amin)(input, () if dim is None else dim, keepdim)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, dim, keepdim, _, ctx.nan_picks = inputs
        _record(ctx, input, dim, keepdim)
        ctx.save_for_backward(input, output)

    @staticmethod
    def backward(ctx, grad: Tensor):
        input, output = ctx.saved_tensors
        ndim = len(ctx.shape)
        output = restored(output, ndim, ctx.dims, ctx.keepdim)
        hits = input == output
        if ctx.nan_picks:
            hits = torch.where(output.isnan(), input.isnan(), hits)
        share = restored(grad, ndim, ctx.dims, ctx.keepdim) / hits.sum(ctx.dims, keepdim=True)
        return share * hits, None, None, None, None


class ExtremumIndexFunction(Function):
    r"""max / min along one ``dim`` with indices (``largest`` picks which).
    (y, i) = (max_dim x, argmax_dim x): y = x gathered at i.

    y_j = x_{i_j}: the gradient goes to the chosen element only (torch's choice among ties).
    Saved: i (integers; non-differentiable output).
    dL/dx = zeros with dL/dy scattered to i along dim.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, dim: int, keepdim: bool, largest: bool) -> tuple[Tensor, Tensor]:
        values, indices = (torch.max if largest else torch.min)(input, dim, keepdim)
        return values, indices

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, dim, keepdim, _ = inputs
        _record(ctx, input, dim, keepdim)
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(output[1])

    @staticmethod
    def backward(ctx, grad: Tensor, grad_indices: Tensor | None):
        (indices,) = ctx.saved_tensors
        if not ctx.shape:
            return grad, None, None, None
        (dim,) = ctx.dims
        ndim = len(ctx.shape)
        grad = restored(grad, ndim, ctx.dims, ctx.keepdim)
        indices = restored(indices, ndim, ctx.dims, ctx.keepdim)
        return grad.new_zeros(ctx.shape).scatter(dim, indices, grad), None, None, None


class MaximumFunction(Function):
    r"""Element-wise maximum / minimum (``largest`` picks which).  y = max(x, o)  (broadcasting).

    The larger operand passes the gradient; where x = o each gets half (as torch).
    Saved: x and o.
    dL/dx = Σ_b dL/dy · (1[x ≻ o] + ½·1[x = o]),   dL/do = Σ_b dL/dy · (1[o ≻ x] + ½·1[x = o])
    (≻ is > for maximum, < for minimum).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, other: Tensor, largest: bool) -> Tensor:
        return (torch.maximum if largest else torch.minimum)(input, other)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, other, ctx.largest = inputs
        ctx.save_for_backward(input, other)

    @staticmethod
    def backward(ctx, grad: Tensor):
        input, other = ctx.saved_tensors
        needs_input, needs_other, _ = ctx.needs_input_grad
        wins = input > other if ctx.largest else input < other
        loses = input < other if ctx.largest else input > other
        split = torch.where(input == other, grad / 2, grad)
        grad_input = reduce_to(torch.where(loses, 0, split), input.shape) if needs_input else None
        grad_other = reduce_to(torch.where(wins, 0, split), other.shape) if needs_other else None
        return grad_input, grad_other, None


class LogSumExpFunction(Function):
    r"""Log-sum-exp over ``dims``.  y = log Σ_{dims} e^{x}   (torch's stable kernel).

    ∂y/∂x_i = e^{x_i} / Σ e^{x} = e^{x_i − y}   (the softmax).
    Saved: x and y.
    dL/dx = dL/dy · e^{x − y}   (dL/dy and y broadcast back over the reduced dims).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, dim: Dims, keepdim: bool) -> Tensor:
        return torch.logsumexp(input, dim, keepdim)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _record(ctx, *inputs)
        ctx.save_for_backward(inputs[0], output)

    @staticmethod
    def backward(ctx, grad: Tensor):
        input, output = ctx.saved_tensors
        ndim = len(ctx.shape)
        softmax = torch.exp(input - restored(output, ndim, ctx.dims, ctx.keepdim))
        return restored(grad, ndim, ctx.dims, ctx.keepdim) * softmax, None, None


class CumsumFunction(Function):
    r"""Cumulative sum along ``dim``.  y_k = Σ_{j ≤ k} x_j.

    x_j appears in every y_k with k ≥ j, so dL/dx_j = Σ_{k ≥ j} dL/dy_k: the cumulative sum of
    dL/dy from the other end.
    Saved: nothing.
    dL/dx = flip(cumsum(flip(dL/dy))) along dim.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, dim: int) -> Tensor:
        return torch.cumsum(input, dim)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.dim = inputs[1]

    @staticmethod
    def backward(ctx, grad: Tensor):
        if grad.dim() == 0:
            return grad, None
        return grad.flip(ctx.dim).cumsum(ctx.dim).flip(ctx.dim), None


class ProdFunction(Function):
    r"""Product over one ``dim`` (``None``: over all elements).  y = Π_j x_j.

    ∂y/∂x_i = Π_{j≠i} x_j: y / x_i when no x is 0 (as torch, whose choice fixes where inf and
    NaN inputs give NaN), else without dividing (exact with zeros) as the product of the
    exclusive prefix and suffix products a_i = Π_{j<i} x_j, b_i = Π_{j>i} x_j.
    Saved: x and y.
    dL/dx = dL/dy · (y / x  or  a · b)   (dL/dy and y broadcast back over the reduced dim).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, dim: int | None, keepdim: bool) -> Tensor:
        return torch.prod(input) if dim is None else torch.prod(input, dim, keepdim)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _record(ctx, *inputs)
        ctx.whole = inputs[1] is None
        ctx.save_for_backward(inputs[0], output)

    @staticmethod
    def backward(ctx, grad: Tensor):
        input, output = ctx.saved_tensors
        if not ctx.shape:
            return grad, None, None
        ndim = len(ctx.shape)
        if ctx.whole:
            exclusive = _others_product(input.reshape(-1), 0).reshape(ctx.shape)
        else:
            exclusive = _others_product(input, ctx.dims[0])
        zeros = input == 0
        # the unused quotient branch divides by 1 at the zeros: no inf·0 in double backward
        quotient = restored(output, ndim, ctx.dims, ctx.keepdim) / torch.where(zeros, 1, input)
        others = torch.where(zeros.any(), exclusive, quotient)
        return restored(grad, ndim, ctx.dims, ctx.keepdim) * conj(others), None, None


def _others_product(input: Tensor, dim: int) -> Tensor:
    """Π_{j≠i} x_j along ``dim`` for every i: exclusive prefix times exclusive suffix products."""
    size = input.shape[dim]
    if size == 0:
        return input
    ones = torch.ones_like(input.narrow(dim, 0, 1))
    prefix = torch.cat([ones, input.narrow(dim, 0, size - 1)], dim).cumprod(dim)
    suffix = torch.cat([ones, input.flip(dim).narrow(dim, 0, size - 1)], dim).cumprod(dim)
    return prefix * suffix.flip(dim)


# --- the torch-named functional ops ----------------------------------------------------------


def _cast(input: Tensor, dtype: torch.dtype | None) -> Tensor:
    """``input`` in ``dtype`` (outside the Function, so autograd casts the gradient back)."""
    return input if dtype is None else input.to(dtype)


def _sum_op(name: str, function: type[Function], torch_op):
    """``torch.sum`` / ``torch.mean``: the same signature, the Function of the reduction."""

    def op(
        input: Tensor,
        dim: Dims = None,
        keepdim: bool = False,
        *,
        dtype: torch.dtype | None = None,
        out: Tensor | None = None,
    ) -> Tensor:
        if out is not None:
            return torch_op(input, dim, keepdim, dtype=dtype, out=out)
        return function.apply(_cast(input, dtype), dim, keepdim)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"``torch.{name}`` with the hand-derived backward of :class:`{function.__name__}`."
    return op


sum = _sum_op("sum", SumFunction, torch.sum)
mean = _sum_op("mean", MeanFunction, torch.mean)


def _correction(
    op: str, dim: Dims | bool, unbiased: bool | None, correction: Number | None
) -> tuple[Dims, Number]:
    """torch's overloads: ``var(input, unbiased)``, ``var(input, dim, unbiased, keepdim)`` and
    ``var(input, dim, *, correction)``; the default correction is 1."""
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    if unbiased is not None and correction is not None:
        raise TypeError(f"{op}: give either `unbiased` or `correction`, not both")
    if correction is None:
        correction = 0 if unbiased is False else 1
    return dim, correction


def _moment_op(name: str, function: type[Function], torch_op):
    """``torch.var`` / ``torch.std``: the same signature, the Function of the moment."""

    def op(
        input: Tensor,
        dim: Dims | bool = None,
        unbiased: bool | None = None,
        keepdim: bool = False,
        *,
        correction: Number | None = None,
        out: Tensor | None = None,
    ) -> Tensor:
        dim, correction = _correction(name, dim, unbiased, correction)
        if out is not None:
            return torch_op(input, dim, correction=correction, keepdim=keepdim, out=out)
        return function.apply(input, dim, correction, keepdim)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = (
        f"``torch.{name}`` (``correction``, default 1; legacy ``unbiased``, also positional), "
        f"hand-derived backward (:class:`{function.__name__}`)."
    )
    return op


var = _moment_op("var", VarFunction, torch.var)
std = _moment_op("std", StdFunction, torch.std)


def norm(
    input: Tensor,
    p: float | str | None = "fro",
    dim: Dims = None,
    keepdim: bool = False,
    out: Tensor | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """``torch.norm`` for vector norms (p a number, 'fro' = 2 or None = 2), hand-derived
    backward; the matrix norm 'nuc' raises ``NotImplementedError``."""
    if p == "nuc":
        raise NotImplementedError("norm: `p`='nuc' (the nuclear norm) has no hand-derived backward")
    if isinstance(p, str) and p != "fro":
        raise RuntimeError(f"norm: `p` must be a number, 'fro' or 'nuc', got {p!r}")
    if out is not None:
        return torch.norm(input, p, dim, keepdim, out=out, dtype=dtype)
    order = 2.0 if p in (None, "fro") else float(p)
    return NormFunction.apply(_cast(input, dtype), order, dim, keepdim)


def _amax_op(name: str, largest: bool, torch_op):
    """``torch.amax`` / ``torch.amin``: the same signature, :class:`ExtremumFunction`."""

    def op(
        input: Tensor, dim: Dims = (), keepdim: bool = False, *, out: Tensor | None = None
    ) -> Tensor:
        if out is not None:
            return torch_op(input, dim, keepdim, out=out)
        return ExtremumFunction.apply(input, dim, keepdim, largest, False)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"``torch.{name}`` (ties share the gradient evenly), hand-derived backward."
    return op


amax = _amax_op("amax", True, torch.amax)
amin = _amax_op("amin", False, torch.amin)


def _extremum(
    name: str, input: Tensor, dim: int | Tensor | None, keepdim: bool, largest: bool
) -> Tensor | tuple[Tensor, Tensor]:
    """max/min's three overloads (see the module docstring)."""
    if isinstance(dim, Tensor):
        return MaximumFunction.apply(input, dim, largest)
    if dim is None:
        if keepdim:
            raise TypeError(f"{name}: `keepdim` needs a `dim`")
        return ExtremumFunction.apply(input, None, False, largest, True)
    values, indices = ExtremumIndexFunction.apply(input, dim, keepdim, largest)
    result_type = torch.return_types.max if largest else torch.return_types.min
    return result_type((values, indices))


def max(
    input: Tensor, dim: int | Tensor | None = None, keepdim: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """``torch.max``: max(input); max(input, dim, keepdim) → (values, indices);
    max(input, other) = maximum. Hand-derived backwards."""
    return _extremum("max", input, dim, keepdim, True)


def min(
    input: Tensor, dim: int | Tensor | None = None, keepdim: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """``torch.min``: min(input); min(input, dim, keepdim) → (values, indices);
    min(input, other) = minimum. Hand-derived backwards."""
    return _extremum("min", input, dim, keepdim, False)


def maximum(input: Tensor, other: Tensor, *, out: Tensor | None = None) -> Tensor:
    """``torch.maximum`` (equal elements split the gradient), hand-derived backward."""
    if out is not None:
        return torch.maximum(input, other, out=out)
    return MaximumFunction.apply(input, other, True)


def minimum(input: Tensor, other: Tensor, *, out: Tensor | None = None) -> Tensor:
    """``torch.minimum`` (equal elements split the gradient), hand-derived backward."""
    if out is not None:
        return torch.minimum(input, other, out=out)
    return MaximumFunction.apply(input, other, False)


def logsumexp(
    input: Tensor, dim: Dims, keepdim: bool = False, *, out: Tensor | None = None
) -> Tensor:
    """``torch.logsumexp`` with the hand-derived backward of :class:`LogSumExpFunction`."""
    if out is not None:
        return torch.logsumexp(input, dim, keepdim, out=out)
    return LogSumExpFunction.apply(input, dim, keepdim)


def cumsum(
    input: Tensor, dim: int, *, dtype: torch.dtype | None = None, out: Tensor | None = None
) -> Tensor:
    """``torch.cumsum`` with the hand-derived backward of :class:`CumsumFunction`."""
    if out is not None:
        return torch.cumsum(input, dim, dtype=dtype, out=out)
    return CumsumFunction.apply(_cast(input, dtype), dim)


def prod(
    input: Tensor,
    dim: int | None = None,
    keepdim: bool = False,
    *,
    dtype: torch.dtype | None = None,
    out: Tensor | None = None,
) -> Tensor:
    """``torch.prod`` (all elements, or along one ``dim``), hand-derived backward."""
    if out is not None:
        return torch.prod(input, dim, keepdim, dtype=dtype, out=out)
    return ProdFunction.apply(_cast(input, dtype), dim, keepdim)


__all__ = [
    "CumsumFunction",
    "ExtremumFunction",
    "ExtremumIndexFunction",
    "LogSumExpFunction",
    "MaximumFunction",
    "MeanFunction",
    "NormFunction",
    "ProdFunction",
    "StdFunction",
    "SumFunction",
    "VarFunction",
    "amax",
    "amin",
    "cumsum",
    "logsumexp",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "norm",
    "prod",
    "std",
    "sum",
    "var",
]
