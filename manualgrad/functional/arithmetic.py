"""Element-wise arithmetic: forward, what is saved, and each operand's gradient, side by side.

Every op here twins a ``torch`` function under the same name and signature, so that routing
``torch.<name>``, ``torch.Tensor.<name>`` and the Python operators to ``manualgrad.functional``
is by name:

=================  ==========================================================================
op                 twins
=================  ==========================================================================
add, sub, rsub     torch.add / torch.sub / torch.rsub, Tensor.add / sub, ``a + b``, ``a - b``
                   (``__radd__``: add(self, other); ``__rsub__``: rsub(self, other))
mul, div           torch.mul / torch.div (``rounding_mode``), Tensor.mul / div, ``*``, ``/``,
                   ``//`` (div(..., rounding_mode='floor')); ``__rtruediv__``: div(other, self)
neg, reciprocal    torch.neg / torch.reciprocal, ``-a``
pow, square        torch.pow, Tensor.pow, ``a ** b``; ``__rpow__``: pow(other, self) (``2 ** x``);
                   torch.square = pow(input, 2)
sqrt, rsqrt, exp,  the torch functions and Tensor methods of the same names
log, log1p, expm1,
abs, sin, cos, erf
clamp (= clip),    torch.clamp / clip / clamp_min / clamp_max, Tensor methods; min/max numbers
clamp_min,         or tensors
clamp_max
addcmul, addcdiv   torch.addcmul / addcdiv (``value``)
lerp               torch.lerp (``weight`` number or tensor)
where              torch.where(condition, input, other); ``Tensor.where(condition, other)`` is
                   where(condition, self, other); torch.where(condition) (indices) passes through
masked_fill        torch.masked_fill, Tensor.masked_fill (``value`` number or 0-d tensor)
=================  ==========================================================================

The aliases ``multiply``, ``subtract``, ``divide``, ``true_divide``, ``negative``, ``absolute``
and ``clip`` are the same functions.

Either operand of a binary op may be a Python number, as in torch; it gets no gradient. Operands
broadcast; each gradient is summed back to its operand's shape (``sum_to_size``). ``out=`` calls
go to the torch op itself: torch defines no gradient through ``out=`` (it raises when one is
needed), so there is nothing to derive. Complex operands follow torch's convention
(dL/dx = dL/dy · conj(∂y/∂x), :func:`conj`). Forward values are torch's own kernels, so dtype
promotion, integer behaviour and error types are torch's. Every gradient is built from plain
tensor ops of ``grad`` and saved tensors, so it is differentiable again.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Number

import torch
from torch import Tensor

from manualgrad.functional._function import Function

Operand = Tensor | Number


def conj(value: Operand) -> Operand:
    """The complex conjugate (the identity for real tensors and numbers). With torch's
    convention a complex gradient is dL/dx = dL/dy · conj(∂y/∂x), so every factor a backward
    multiplies ``grad`` by goes through here; for real dtypes it costs nothing."""
    return value.conj() if isinstance(value, Tensor) else value.conjugate()


def reduce_to(grad: Tensor, shape: torch.Size) -> Tensor:
    """``grad`` summed over the dims its operand was broadcast along (``sum_to_size``)."""
    return grad if grad.shape == shape else grad.sum_to_size(shape)


def _keep(
    ctx,
    operands: tuple[Operand, ...],
    wanted: tuple[bool, ...],
    extra: tuple[Tensor | None, ...] = (),
) -> None:
    """Save the tensor operands marked ``wanted`` and the ``extra`` tensors (numbers go on
    ``ctx.numbers``), and every operand's shape on ``ctx.shapes``; :func:`_kept` reads them
    back in the same order."""
    shapes, numbers, kept = [], [], []
    for operand, keep in zip(operands, wanted, strict=True):
        tensor = isinstance(operand, Tensor)
        shapes.append(operand.shape if tensor else None)
        numbers.append(None if tensor else operand)
        kept.append(operand if tensor and keep else None)
    ctx.shapes, ctx.numbers = shapes, numbers
    ctx.save_for_backward(*kept, *extra)


def _kept(ctx) -> list[Operand | None]:
    """The operands (saved tensors, numbers, ``None`` where not kept), then the extras, as
    :func:`_keep` stored them."""
    saved = ctx.saved_tensors
    count = len(ctx.numbers)
    operands = [n if n is not None else t for t, n in zip(saved[:count], ctx.numbers, strict=True)]
    return [*operands, *saved[count:]]


def _grads(ctx, *grads: Callable[[], Tensor] | None) -> tuple[Tensor | None, ...]:
    """Each operand's gradient (``None``: never differentiable), computed only when needed and
    summed to its shape (the operands lead the Function's inputs)."""
    needs = ctx.needs_input_grad[: len(ctx.shapes)]
    return tuple(
        reduce_to(grad(), shape) if needed and grad is not None and shape is not None else None
        for grad, shape, needed in zip(grads, ctx.shapes, needs, strict=True)
    )


# --- unary ops -------------------------------------------------------------------------------


def _unary_function(
    name: str,
    compute: Callable[[Tensor], Tensor],
    saves: str | None,
    vjp: Callable[..., Tensor],
    doc: str,
) -> type[Function]:
    """A Function y = compute(x) saving ``saves`` ('input', 'output' or None) whose backward
    is ``vjp(grad, *saved)``; ``doc`` states the derivation."""

    def forward(input: Tensor) -> Tensor:
        return compute(input)

    def setup_context(ctx, inputs, output) -> None:
        if saves is not None:
            ctx.save_for_backward(inputs[0] if saves == "input" else output)

    def backward(ctx, grad: Tensor) -> Tensor:
        return vjp(grad, *ctx.saved_tensors)

    namespace = {
        "__doc__": doc,
        "__module__": __name__,
        "__qualname__": name,
        "generate_vmap_rule": True,
        "forward": staticmethod(forward),
        "setup_context": staticmethod(setup_context),
        "backward": staticmethod(backward),
    }
    return type(Function)(name, (Function,), namespace)


def _unary_op(name: str, function: type[Function], torch_op: Callable[..., Tensor]):
    """The functional wrapper ``name(input, *, out=None)`` of a unary Function."""

    def op(input: Tensor, *, out: Tensor | None = None) -> Tensor:
        if out is not None:
            return torch_op(input, out=out)
        return function.apply(input)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"``torch.{name}`` with the hand-derived backward of :class:`{function.__name__}`."
    return op


_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)

NegFunction = _unary_function(
    "NegFunction",
    torch.neg,
    None,
    lambda grad: -grad,
    "Negation.  y = −x.\n\nSaved: nothing.\ndL/dx = −dL/dy.",
)
ReciprocalFunction = _unary_function(
    "ReciprocalFunction",
    torch.reciprocal,
    "output",
    lambda grad, y: -grad * conj(y * y),
    "Reciprocal.  y = 1/x.\n\nSaved: y (dy/dx = −1/x² = −y²).\ndL/dx = −dL/dy · y².",
)
SqrtFunction = _unary_function(
    "SqrtFunction",
    torch.sqrt,
    "output",
    lambda grad, y: grad / conj(2 * y),
    "Square root.  y = √x.\n\nSaved: y (dy/dx = 1/(2√x) = 1/(2y)).\ndL/dx = dL/dy / (2y).",
)
RsqrtFunction = _unary_function(
    "RsqrtFunction",
    torch.rsqrt,
    "output",
    lambda grad, y: grad * conj(-0.5 * y.pow(3)),
    "Reciprocal square root.  y = x^{−1/2}.\n\n"
    "Saved: y (dy/dx = −½ x^{−3/2} = −½ y³).\ndL/dx = −½ · dL/dy · y³.",
)
ExpFunction = _unary_function(
    "ExpFunction",
    torch.exp,
    "output",
    lambda grad, y: grad * conj(y),
    "Exponential.  y = eˣ.\n\nSaved: y (dy/dx = eˣ = y).\ndL/dx = dL/dy · y.",
)
LogFunction = _unary_function(
    "LogFunction",
    torch.log,
    "input",
    lambda grad, x: grad / conj(x),
    "Natural logarithm.  y = log x.\n\nSaved: x.\ndL/dx = dL/dy / x.",
)
Log1pFunction = _unary_function(
    "Log1pFunction",
    torch.log1p,
    "input",
    lambda grad, x: grad / conj(x + 1),
    "log(1 + x), accurate near 0.\n\nSaved: x.\ndL/dx = dL/dy / (1 + x).",
)
Expm1Function = _unary_function(
    "Expm1Function",
    torch.expm1,
    "output",
    lambda grad, y: grad * conj(y + 1),
    "eˣ − 1, accurate near 0.\n\nSaved: y (dy/dx = eˣ = y + 1).\ndL/dx = dL/dy · (y + 1).",
)
AbsFunction = _unary_function(
    "AbsFunction",
    torch.abs,
    "input",
    lambda grad, x: grad * x.sgn(),
    "Absolute value.  y = |x|.\n\n"
    "Saved: x.\ndL/dx = dL/dy · sgn(x)   (subgradient 0 at x = 0, as torch).",
)
SinFunction = _unary_function(
    "SinFunction",
    torch.sin,
    "input",
    lambda grad, x: grad * conj(x.cos()),
    "Sine.  y = sin x.\n\nSaved: x.\ndL/dx = dL/dy · cos x.",
)
CosFunction = _unary_function(
    "CosFunction",
    torch.cos,
    "input",
    lambda grad, x: grad * -conj(x.sin()),
    "Cosine.  y = cos x.\n\nSaved: x.\ndL/dx = −dL/dy · sin x.",
)
ErfFunction = _unary_function(
    "ErfFunction",
    torch.erf,
    "input",
    lambda grad, x: grad * (_TWO_OVER_SQRT_PI * torch.exp(-(x * x))),
    "Error function.  y = erf x = 2/√π ∫₀ˣ e^{−t²} dt.\n\n"
    "Saved: x.\ndL/dx = dL/dy · 2/√π · e^{−x²}.",
)

neg = _unary_op("neg", NegFunction, torch.neg)
reciprocal = _unary_op("reciprocal", ReciprocalFunction, torch.reciprocal)
sqrt = _unary_op("sqrt", SqrtFunction, torch.sqrt)
rsqrt = _unary_op("rsqrt", RsqrtFunction, torch.rsqrt)
exp = _unary_op("exp", ExpFunction, torch.exp)
log = _unary_op("log", LogFunction, torch.log)
log1p = _unary_op("log1p", Log1pFunction, torch.log1p)
expm1 = _unary_op("expm1", Expm1Function, torch.expm1)
abs = _unary_op("abs", AbsFunction, torch.abs)
sin = _unary_op("sin", SinFunction, torch.sin)
cos = _unary_op("cos", CosFunction, torch.cos)
erf = _unary_op("erf", ErfFunction, torch.erf)


# --- binary ops ------------------------------------------------------------------------------


class AddFunction(Function):
    r"""Sum.  y = x + α·o   (x = input, o = other, either may be a number; broadcasting).

    Saved: nothing (the shapes, for the broadcast reduction).
    dL/dx = Σ_broadcast dL/dy,   dL/do = α · Σ_broadcast dL/dy.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Operand, other: Operand, alpha: Number) -> Tensor:
        return torch.add(input, other, alpha=alpha)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, other, ctx.alpha = inputs
        _keep(ctx, (input, other), (False, False))

    @staticmethod
    def backward(ctx, grad: Tensor):
        return *_grads(ctx, lambda: grad, lambda: _scaled(grad, conj(ctx.alpha))), None


class SubFunction(Function):
    r"""Difference.  y = x − α·o   (x = input, o = other, either may be a number; broadcasting).

    Saved: nothing (the shapes, for the broadcast reduction).
    dL/dx = Σ_broadcast dL/dy,   dL/do = −α · Σ_broadcast dL/dy.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Operand, other: Operand, alpha: Number) -> Tensor:
        return torch.sub(input, other, alpha=alpha)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, other, ctx.alpha = inputs
        _keep(ctx, (input, other), (False, False))

    @staticmethod
    def backward(ctx, grad: Tensor):
        return *_grads(ctx, lambda: grad, lambda: _scaled(grad, -conj(ctx.alpha))), None


def _scaled(grad: Tensor, factor: Number) -> Tensor:
    """grad · factor: grad itself for 1, −grad for −1 (the same values, one op fewer)."""
    if factor == 1:
        return grad
    return -grad if factor == -1 else grad * factor


class MulFunction(Function):
    r"""Product.  y = x · o   (either may be a number; broadcasting).

    Saved: o if x needs a gradient, x if o does (each gradient needs the *other* operand).
    dL/dx = Σ_broadcast dL/dy · o,   dL/do = Σ_broadcast dL/dy · x.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Operand, other: Operand) -> Tensor:
        return torch.mul(input, other)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        needs_input, needs_other = ctx.needs_input_grad
        _keep(ctx, inputs, (needs_other, needs_input))

    @staticmethod
    def backward(ctx, grad: Tensor):
        input, other = _kept(ctx)
        return _grads(ctx, lambda: grad * conj(other), lambda: grad * conj(input))


class DivFunction(Function):
    r"""Quotient.  y = x / o   (either may be a number; broadcasting). With ``rounding_mode``
    ('trunc' or 'floor') y is piecewise constant and both gradients are 0, as torch defines.

    Saved: o if either operand needs a gradient, x if o does.
    dL/dx = Σ_broadcast dL/dy / o,   dL/do = −Σ_broadcast dL/dy · x / o².
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Operand, other: Operand, rounding_mode: str | None) -> Tensor:
        return torch.div(input, other, rounding_mode=rounding_mode)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, other, ctx.rounding_mode = inputs
        needs_input, needs_other, _ = ctx.needs_input_grad
        exact = ctx.rounding_mode is None
        _keep(ctx, (input, other), (exact and needs_other, exact and (needs_input or needs_other)))

    @staticmethod
    def backward(ctx, grad: Tensor):
        input, other = _kept(ctx)
        if ctx.rounding_mode is not None:
            return *_grads(
                ctx, lambda: torch.zeros_like(grad), lambda: torch.zeros_like(grad)
            ), None
        return *_grads(
            ctx, lambda: grad / conj(other), lambda: -grad * conj(input / other / other)
        ), None


class PowFunction(Function):
    r"""Power.  y = x^p   (x = input, p = exponent; either may be a number; broadcasting).

    dy/dx = p·x^{p−1} (0 where p = 0, as torch: no 0·x^{−1} = nan at x = 0),
    dy/dp = x^p · log x = y · log x (0 where x = 0 and p ≥ 0: the limit, as torch).
    Saved: x and p for dL/dx; p, y and (when x is a tensor, for log x) x for dL/dp.
    dL/dx = Σ_broadcast dL/dy · p·x^{p−1},   dL/dp = Σ_broadcast dL/dy · y · log x.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Operand, exponent: Operand) -> Tensor:
        return torch.pow(input, exponent)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        needs_exponent = ctx.needs_input_grad[1]
        _keep(ctx, inputs, (any(ctx.needs_input_grad), True), (output if needs_exponent else None,))

    @staticmethod
    def backward(ctx, grad: Tensor):
        input, exponent, output = _kept(ctx)
        return _grads(
            ctx,
            lambda: _pow_grad_input(grad, input, exponent),
            lambda: _pow_grad_exponent(grad, input, exponent, output),
        )


def _pow_grad_input(grad: Tensor, input: Tensor, exponent: Operand) -> Tensor:
    if isinstance(exponent, Tensor):
        return torch.where(exponent == 0, 0, grad * conj(exponent * input.pow(exponent - 1)))
    if exponent == 0:
        return torch.zeros_like(grad)
    return grad * conj(exponent * input.pow(exponent - 1))


def _nonnegative(exponent: Tensor) -> Tensor:
    """p ≥ 0 (its real part for a complex p, as torch)."""
    return (exponent.real if exponent.is_complex() else exponent) >= 0


def _pow_grad_exponent(grad: Tensor, input: Operand, exponent: Tensor, output: Tensor) -> Tensor:
    if isinstance(input, Tensor):
        limit = (input == 0) & _nonnegative(exponent)
        return torch.where(limit, 0, grad * conj(output * input.log()))
    if input == 0:
        return torch.where(_nonnegative(exponent), 0, grad * conj(output * -math.inf))
    return grad * conj(output * (math.log(input) if input > 0 else math.nan))


class ClampFunction(Function):
    r"""Clamp.  y = min(max(x, lo), hi)   (lo = min, hi = max: numbers, tensors or None).

    Where lo > hi, y = hi. Subgradients as torch: x passes where lo ≤ x ≤ hi (both ends
    included), a tensor bound where it is the one that is output.
    Saved: x, and the tensor bounds.
    dL/dx  = Σ_broadcast dL/dy · 1[lo ≤ x ≤ hi]
    dL/dlo = Σ_broadcast dL/dy · 1[x < lo and lo < hi]        (1[x < lo] without hi)
    dL/dhi = Σ_broadcast dL/dy · 1[x > hi or hi < lo]         (1[x > hi] without lo)
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, min: Operand | None, max: Operand | None) -> Tensor:
        return torch.clamp(input, min, max)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _keep(ctx, inputs, (True, True, True))

    @staticmethod
    def backward(ctx, grad: Tensor):
        input, low, high = _kept(ctx)
        return _grads(
            ctx,
            lambda: grad * _within(input, low, high),
            lambda: grad * ((input < low) & (low < high) if high is not None else input < low),
            lambda: grad * ((input > high) | (high < low) if low is not None else input > high),
        )


def _within(input: Tensor, low: Operand | None, high: Operand | None) -> Tensor:
    """1[low ≤ input ≤ high] as a bool tensor (a ``None`` bound is no bound)."""
    if low is None:
        return input <= high
    if high is None:
        return input >= low
    return (input >= low) & (input <= high)


class AddcmulFunction(Function):
    r"""y = x + v · t₁ · t₂   (v = value, a number; broadcasting).

    Saved: t₂ if t₁ needs a gradient, t₁ if t₂ does.
    dL/dx = Σ_b dL/dy,   dL/dt₁ = v · Σ_b dL/dy · t₂,   dL/dt₂ = v · Σ_b dL/dy · t₁.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, tensor1: Tensor, tensor2: Tensor, value: Number) -> Tensor:
        return torch.addcmul(input, tensor1, tensor2, value=value)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, tensor1, tensor2, ctx.value = inputs
        _, needs1, needs2, _ = ctx.needs_input_grad
        _keep(ctx, (input, tensor1, tensor2), (False, needs2, needs1))

    @staticmethod
    def backward(ctx, grad: Tensor):
        _, tensor1, tensor2 = _kept(ctx)
        return *_grads(
            ctx,
            lambda: grad,
            lambda: _scaled(grad * conj(tensor2), conj(ctx.value)),
            lambda: _scaled(grad * conj(tensor1), conj(ctx.value)),
        ), None


class AddcdivFunction(Function):
    r"""y = x + v · t₁ / t₂   (v = value, a number; broadcasting).

    Saved: t₂ if either tensor needs a gradient, t₁ if t₂ does.
    dL/dx = Σ_b dL/dy,   dL/dt₁ = v · Σ_b dL/dy / t₂,   dL/dt₂ = −v · Σ_b dL/dy · t₁ / t₂².
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, tensor1: Tensor, tensor2: Tensor, value: Number) -> Tensor:
        return torch.addcdiv(input, tensor1, tensor2, value=value)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, tensor1, tensor2, ctx.value = inputs
        _, needs1, needs2, _ = ctx.needs_input_grad
        _keep(ctx, (input, tensor1, tensor2), (False, needs2, needs1 or needs2))

    @staticmethod
    def backward(ctx, grad: Tensor):
        _, tensor1, tensor2 = _kept(ctx)
        return *_grads(
            ctx,
            lambda: grad,
            lambda: _scaled(grad / conj(tensor2), conj(ctx.value)),
            lambda: _scaled(-grad * conj(tensor1 / tensor2 / tensor2), conj(ctx.value)),
        ), None


class LerpFunction(Function):
    r"""Linear interpolation.  y = x + w · (e − x)   (x = input, e = end, w = weight: a number or
    a tensor; broadcasting).

    Saved: w if x or e needs a gradient; x and e if w does.
    dL/dx = Σ_b dL/dy · (1 − w),   dL/de = Σ_b dL/dy · w,   dL/dw = Σ_b dL/dy · (e − x).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, end: Tensor, weight: Operand) -> Tensor:
        return torch.lerp(input, end, weight)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        needs_input, needs_end, needs_weight = ctx.needs_input_grad
        _keep(ctx, inputs, (needs_weight, needs_weight, needs_input or needs_end))

    @staticmethod
    def backward(ctx, grad: Tensor):
        input, end, weight = _kept(ctx)
        return _grads(
            ctx,
            lambda: grad * conj(1 - weight),
            lambda: grad * conj(weight),
            lambda: grad * conj(end - input),
        )


class WhereFunction(Function):
    r"""Selection.  y = x where c else o   (c = condition, bool; x = input, o = other: tensors or
    numbers; broadcasting).

    Saved: c.
    dL/dx = Σ_b dL/dy · 1[c],   dL/do = Σ_b dL/dy · 1[¬c].
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(condition: Tensor, input: Operand, other: Operand) -> Tensor:
        return torch.where(condition, input, other)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _keep(ctx, inputs, (True, False, False))

    @staticmethod
    def backward(ctx, grad: Tensor):
        condition, _, _ = _kept(ctx)
        return _grads(
            ctx,
            None,
            lambda: torch.where(condition, grad, 0),
            lambda: torch.where(condition, 0, grad),
        )


class MaskedFillFunction(Function):
    r"""y = v where m else x   (m = mask, bool, broadcasting to x; v = value: a number or a 0-d
    tensor).

    Saved: m.
    dL/dx = dL/dy · 1[¬m],   dL/dv = Σ_all dL/dy · 1[m].
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, mask: Tensor, value: Operand) -> Tensor:
        return torch.masked_fill(input, mask, value)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _keep(ctx, inputs, (False, True, False))

    @staticmethod
    def backward(ctx, grad: Tensor):
        _, mask, _ = _kept(ctx)
        return _grads(
            ctx, lambda: torch.where(mask, 0, grad), None, lambda: torch.where(mask, grad, 0)
        )


# --- the torch-named functional ops ----------------------------------------------------------


def _alpha_op(name: str, function: type[Function], torch_op, doc: str):
    """``torch.add`` / ``torch.sub``: the same signature, ``function`` (input, other, alpha)."""

    def op(
        input: Operand, other: Operand, *, alpha: Number = 1, out: Tensor | None = None
    ) -> Tensor:
        if out is not None:
            return torch_op(input, other, alpha=alpha, out=out)
        return function.apply(input, other, alpha)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return op


add = _alpha_op(
    "add",
    AddFunction,
    torch.add,
    """``torch.add``: input + alpha·other, hand-derived backward (:class:`AddFunction`).""",
)
sub = _alpha_op(
    "sub",
    SubFunction,
    torch.sub,
    """``torch.sub``: input − alpha·other, hand-derived backward (:class:`SubFunction`).""",
)


def rsub(input: Tensor, other: Operand, *, alpha: Number = 1) -> Tensor:
    """``torch.rsub`` (``other - input`` as ``input.__rsub__(other)``): other − alpha·input."""
    return SubFunction.apply(other, input, alpha)


def mul(input: Operand, other: Operand, *, out: Tensor | None = None) -> Tensor:
    """``torch.mul``: input·other, hand-derived backward (:class:`MulFunction`)."""
    if out is not None:
        return torch.mul(input, other, out=out)
    return MulFunction.apply(input, other)


def div(
    input: Operand,
    other: Operand,
    *,
    rounding_mode: str | None = None,
    out: Tensor | None = None,
) -> Tensor:
    """``torch.div``: input / other (rounded with ``rounding_mode`` 'trunc' or 'floor', then
    with zero gradients, as torch); hand-derived backward (:class:`DivFunction`)."""
    if out is not None:
        return torch.div(input, other, rounding_mode=rounding_mode, out=out)
    return DivFunction.apply(input, other, rounding_mode)


def pow(input: Operand, exponent: Operand, *, out: Tensor | None = None) -> Tensor:
    """``torch.pow``: input^exponent (either a number), hand-derived backward."""
    if out is not None:
        return torch.pow(input, exponent, out=out)
    return PowFunction.apply(input, exponent)


def square(input: Operand, *, out: Tensor | None = None) -> Tensor:
    """``torch.square``: pow(input, 2), hand-derived backward (:class:`PowFunction`)."""
    return pow(input, 2, out=out)


def clamp(
    input: Tensor,
    min: Operand | None = None,
    max: Operand | None = None,
    *,
    out: Tensor | None = None,
) -> Tensor:
    """``torch.clamp`` (bounds numbers or tensors), hand-derived backward."""
    if out is not None:
        return torch.clamp(input, min, max, out=out)
    return ClampFunction.apply(input, min, max)


def clamp_min(input: Tensor, min: Operand, *, out: Tensor | None = None) -> Tensor:
    """``torch.clamp_min``: clamp(input, min=min)."""
    return clamp(input, min, None, out=out)


def clamp_max(input: Tensor, max: Operand, *, out: Tensor | None = None) -> Tensor:
    """``torch.clamp_max``: clamp(input, max=max)."""
    return clamp(input, None, max, out=out)


def _addc_op(name: str, function: type[Function], torch_op, doc: str):
    """``torch.addcmul`` / ``torch.addcdiv``: the same signature, ``function`` (input, tensor1,
    tensor2, value)."""

    def op(
        input: Tensor,
        tensor1: Tensor,
        tensor2: Tensor,
        *,
        value: Number = 1,
        out: Tensor | None = None,
    ) -> Tensor:
        if out is not None:
            return torch_op(input, tensor1, tensor2, value=value, out=out)
        return function.apply(input, tensor1, tensor2, value)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return op


addcmul = _addc_op(
    "addcmul",
    AddcmulFunction,
    torch.addcmul,
    """``torch.addcmul``: input + value·tensor1·tensor2, hand-derived backward.""",
)
addcdiv = _addc_op(
    "addcdiv",
    AddcdivFunction,
    torch.addcdiv,
    """``torch.addcdiv``: input + value·tensor1/tensor2, hand-derived backward.""",
)


def lerp(input: Tensor, end: Tensor, weight: Operand, *, out: Tensor | None = None) -> Tensor:
    """``torch.lerp``: input + weight·(end − input), hand-derived backward."""
    if out is not None:
        return torch.lerp(input, end, weight, out=out)
    return LerpFunction.apply(input, end, weight)


def where(
    condition: Tensor,
    input: Operand | None = None,
    other: Operand | None = None,
    *,
    out: Tensor | None = None,
) -> Tensor | tuple[Tensor, ...]:
    """``torch.where(condition, input, other)``, hand-derived backward; ``where(condition)``
    (the indices of the true elements: integers, no gradient) is torch's."""
    if input is None and other is None:
        return torch.where(condition)
    if out is not None:
        return torch.where(condition, input, other, out=out)
    return WhereFunction.apply(condition, input, other)


def masked_fill(input: Tensor, mask: Tensor, value: Operand) -> Tensor:
    """``torch.masked_fill``: value where mask else input, hand-derived backward."""
    return MaskedFillFunction.apply(input, mask, value)


multiply = mul
subtract = sub
divide = true_divide = div
negative = neg
absolute = abs
clip = clamp

__all__ = [
    "AbsFunction",
    "AddFunction",
    "AddcdivFunction",
    "AddcmulFunction",
    "ClampFunction",
    "CosFunction",
    "DivFunction",
    "ErfFunction",
    "ExpFunction",
    "Expm1Function",
    "LerpFunction",
    "Log1pFunction",
    "LogFunction",
    "MaskedFillFunction",
    "MulFunction",
    "NegFunction",
    "PowFunction",
    "ReciprocalFunction",
    "RsqrtFunction",
    "SinFunction",
    "SqrtFunction",
    "SubFunction",
    "WhereFunction",
    "abs",
    "absolute",
    "add",
    "addcdiv",
    "addcmul",
    "clamp",
    "clamp_max",
    "clamp_min",
    "clip",
    "cos",
    "div",
    "divide",
    "erf",
    "exp",
    "expm1",
    "lerp",
    "log",
    "log1p",
    "masked_fill",
    "mul",
    "multiply",
    "neg",
    "negative",
    "pow",
    "reciprocal",
    "rsqrt",
    "rsub",
    "sin",
    "sqrt",
    "square",
    "sub",
    "subtract",
    "true_divide",
    "where",
]
