"""Element-wise activations φ(z): forward, what is saved, and dφ/dz, side by side.

Each Function saves the least its derivative needs: the output when φ' is a function of φ
(ReLU, LeakyReLU with slope ≥ 0, ELU with α ≥ 0, Hardtanh, Sigmoid, Tanh), the input otherwise.
Kinks get the subgradient torch chooses, stated in each docstring. Every backward is a product of
``grad_output`` with plain tensor ops (comparisons, ``exp``, ``erf``, and our own Sigmoid/Tanh
Functions), so it is differentiable again. Masks are 0./1. tensors of the input's dtype and
branches are selected arithmetically (``_elementwise``: bool tensors are slow on CPU).

``inplace=True`` is accepted for signature compatibility with torch and ignored: the result is
always a new tensor (the input is never overwritten, so saving it or the output stays valid).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from manualgrad.functional._checks import require_floating, require_tensor, wrap_dim
from manualgrad.functional._elementwise import (
    indicator,
    indicator_not,
    mask_as_number,
    slope_above,
    times,
)
from manualgrad.functional._function import Function
from manualgrad.functional._precision import downcast, upcast


class ReLUFunction(Function):
    r"""ReLU.  y = max(z, 0).

    Saved: y only (y > 0 ⇔ z > 0), so the stored tensor is the one the next layer already holds.
    dL/dz = dL/dy · (1 − 1[y ≤ 0])   (subgradient 0 chosen at z = 0, as torch does; at z = NaN
            the gradient passes, 1 − 0 = 1, as torch's ``y <= 0 ? 0 : g``).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor) -> Tensor:
        return input.clamp_min(0)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:
        (output,) = ctx.saved_tensors
        return times(indicator_not(torch.le, output, 0), grad_output)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """``torch.nn.functional.relu``; ``inplace`` is accepted and ignored (always out of place)."""
    return ReLUFunction.apply(input)


class LeakyReLUFunction(Function):
    r"""Leaky ReLU.  y = z if z > 0 else s·z   (s = negative_slope).

    Forward as y = max(z, s·z) for 0 < s ≤ 1 or s < 0 (min for s > 1), as torch's
    ``z > 0 ? z : s·z`` at ±inf and NaN too; s = 0 selects (max(+inf, 0·inf = NaN) would be NaN).
    At z = NaN the slope is s (z > 0 is False), as torch's.
    Saved: y when s ≥ 0 (then y > 0 ⇔ z > 0: s·z ≤ 0 for z ≤ 0), else z (a negative slope
    makes y > 0 on both sides). Either way only the sign is read.
    dL/dz = dL/dy · (1[z > 0] + s·1[z ≤ 0])   (subgradient s chosen at z = 0, as torch does).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, negative_slope: float) -> Tensor:
        if negative_slope == 0:
            return torch.where(input > 0, input, input * negative_slope)
        extremum = torch.maximum if negative_slope <= 1 else torch.minimum
        return extremum(input, input * negative_slope)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, negative_slope = inputs
        ctx.negative_slope = negative_slope
        ctx.save_for_backward(output if negative_slope >= 0 else input)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (saved,) = ctx.saved_tensors
        return times(slope_above(saved, 0, ctx.negative_slope), grad_output), None


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """``torch.nn.functional.leaky_relu`` (``inplace`` accepted, computed out of place)."""
    require_floating(input, "leaky_relu")
    return LeakyReLUFunction.apply(input, negative_slope)


class PReLUFunction(Function):
    r"""PReLU with a learnable slope a:  y = z if z > 0 else a·z.

    ``weight`` arrives already shaped to broadcast against ``input`` (one slope, or one per
    channel at dim 1 — see :func:`prelu`).
    Forward as y = max(z, 0) + a·min(z, 0).
    Saved: z (its sign for dL/dz, its value for dL/da) and a only if dL/dz is needed.
        dL/dz = dL/dy · (1[z > 0] + a·1[z ≤ 0])        (subgradient a at z = 0, as torch)
        dL/da = Σ_{broadcast dims} dL/dy · min(z, 0)
    """

    generate_vmap_rule = True
    autocast = "lower"

    @staticmethod
    def forward(input: Tensor, weight: Tensor) -> Tensor:
        return torch.addcmul(input.clamp_min(0), weight, input.clamp_max(0))

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, weight = inputs
        needs_input, _ = ctx.needs_input_grad
        ctx.weight_shape = weight.shape
        ctx.save_for_backward(input, weight if needs_input else None)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        input, weight = ctx.saved_tensors
        needs_input, needs_weight = ctx.needs_input_grad
        grad_input = grad_weight = None
        if needs_input:
            grad_input = times(slope_above(input, 0, weight), grad_output)
        if needs_weight:
            grad_weight = times(input.clamp_max(0), grad_output).sum_to_size(ctx.weight_shape)
        return grad_input, grad_weight


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """``torch.nn.functional.prelu``: ``weight`` has one element, or one per channel (dim 1).

    As torch: a 1-d input has one channel, a 0-d input takes only a single-element weight, the
    weight is 0-d or 1-d, and input and weight share a dtype (no type promotion).
    """
    if input.dtype != weight.dtype:
        raise RuntimeError(
            f"prelu: `input` ({input.dtype}) and `weight` ({weight.dtype}) must share a dtype"
        )
    if weight.numel() != 1:
        if input.dim() == 0:
            raise RuntimeError(
                f"prelu: a zero-dim `input` takes a single-element `weight`, got {weight.numel()}"
            )
        channels = input.shape[1] if input.dim() > 1 else 1
        if weight.numel() != channels:
            raise RuntimeError(
                f"prelu: `weight` has {weight.numel()} elements but `input` has {channels} "
                f"channels (dim 1); expected 1 or {channels}"
            )
    if weight.dim() > 1:
        raise RuntimeError(f"prelu: `weight` must be 0-d or 1-d, got {weight.dim()} dims")
    if weight.dim() != input.dim():
        shape = [1] * input.dim()
        if input.dim() > 1:
            shape[1] = weight.numel()
        weight = weight.reshape(shape)
    return PReLUFunction.apply(input, weight)


class ELUFunction(Function):
    r"""ELU with torch's three coefficients (elu, selu and celu are all this Function).

    y = λ·z if z > 0 else λα·(e^{sz} − 1)   (α = alpha, λ = scale, s = input_scale;
    elu: λ = s = 1; selu: α, λ the SELU constants, s = 1; celu: λ = 1, s = 1/α).
    Forward as y = λ·max(z, 0) + λα·(e^{s·min(z, 0)} − 1).
    On z ≤ 0, dy/dz = λαs·e^{sz} = s·(y + λα), a function of the output.
    Saved: y when α ≥ 0 (then y > 0 ⇔ z > 0), else z (a negative α makes y ≥ 0 for z < 0).
        dL/dz = dL/dy · (λ·1[z > 0] + 1[z ≤ 0]·s(y + λα))   (s(y + λα) = λαs·e^{sz};
                subgradient λαs at z = 0, as torch; e^{s·min(z, 0)} never overflows for s > 0)
    The negative-branch slope is built from fmin(·, 0) (NaN-ignoring), so it is finite where z is
    +inf or NaN, and there the slope is λ, as torch's ``z <= 0 ? λαs·e^{sz} : λ``.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, alpha: float, scale: float, input_scale: float) -> Tensor:
        positive = input.clamp_min(0)
        negative = input.clamp_max(0)
        if scale != 1:
            positive.mul_(scale)
        if input_scale != 1:
            negative.mul_(input_scale)
        return torch.add(positive, torch.expm1(negative), alpha=alpha * scale)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, alpha, scale, input_scale = inputs
        ctx.negative_coefficient = alpha * scale
        ctx.scale, ctx.input_scale = scale, input_scale
        ctx.from_output = alpha >= 0
        ctx.save_for_backward(output if ctx.from_output else input)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (saved,) = ctx.saved_tensors
        zero = saved.new_zeros(())
        if ctx.from_output:
            negative_slope = torch.fmin(saved, zero) + ctx.negative_coefficient
        else:
            negative_slope = ctx.negative_coefficient * torch.exp(
                torch.fmin(saved, zero) * ctx.input_scale
            )
        if ctx.input_scale != 1:
            negative_slope = negative_slope * ctx.input_scale
        low = times(indicator(torch.le, saved, 0), negative_slope)
        slope = low.add_(indicator_not(torch.le, saved, 0), alpha=ctx.scale)
        return times(slope, grad_output), None, None, None


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``torch.nn.functional.elu`` (``inplace`` accepted, computed out of place)."""
    require_floating(input, "elu")
    return ELUFunction.apply(input, alpha, 1.0, 1.0)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """``torch.nn.functional.selu``: :class:`ELUFunction` with α = 1.6732632423543772…,
    λ = 1.0507009873554804… (``inplace`` accepted, computed out of place)."""
    require_floating(input, "selu")
    (wide,) = upcast(input)
    return downcast(ELUFunction.apply(wide, _SELU_ALPHA, _SELU_SCALE, 1.0), input.dtype)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``torch.nn.functional.celu``: max(z, 0) + min(0, α(e^{z/α} − 1)), :class:`ELUFunction`
    with input scale 1/α (``inplace`` accepted, computed out of place). α = 0 raises torch's
    RuntimeError."""
    if alpha == 0:
        raise RuntimeError("celu: ZeroDivisionError: `alpha` cannot be 0 for CELU")
    require_floating(input, "celu")
    (wide,) = upcast(input)
    return downcast(ELUFunction.apply(wide, alpha, 1.0, 1.0 / alpha), input.dtype)


_SQRT1_2 = math.sqrt(0.5)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_TANH_BETA = math.sqrt(2 / math.pi)
_TANH_KAPPA = 0.044715


class GELUFunction(Function):
    r"""GELU.  y = z·Φ(z), Φ the standard normal CDF.

    approximate='none':  Φ(z) = ½(1 + erf(z/√2)),  φ(z) = e^{−z²/2}/√(2π)
        dL/dz = dL/dy · (Φ(z) + z·φ(z))
    approximate='tanh':  y = ½z(1 + t),  t = tanh(u),  u = √(2/π)(z + κz³),  κ = 0.044715
        dL/dz = dL/dy · (½(1 + t) + ½z(1 − t²)·√(2/π)(1 + 3κz²))
    Saved: z (the derivative is not a function of y: GELU is not monotone).
    float16/bfloat16 inputs are computed in float32 and the result cast back (:func:`gelu`), as
    torch's kernel: in float16, z³ overflows at |z| ≈ 40 and (1 − t²)·3κz² becomes 0·inf = NaN.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, approximate: str) -> Tensor:
        return gelu_value(input, approximate)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, approximate = inputs
        ctx.approximate = approximate
        ctx.save_for_backward(input)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (input,) = ctx.saved_tensors
        return times(gelu_derivative(input, ctx.approximate), grad_output), None


def gelu_value(input: Tensor, approximate: str) -> Tensor:
    """GELU(z) (see :class:`GELUFunction`), built in place on one fresh temporary."""
    if approximate == "tanh":
        inner = (input * input).mul_(input).mul_(_TANH_KAPPA).add_(input).mul_(_TANH_BETA)
        return inner.tanh_().add_(1).mul_(input).mul_(0.5)
    return (input * _SQRT1_2).erf_().add_(1).mul_(input).mul_(0.5)


def gelu_derivative(input: Tensor, approximate: str) -> Tensor:
    """GELU'(z) (see :class:`GELUFunction`) from plain differentiable ops of z: a fresh
    temporary is updated in place only until another op (or exp's backward) reads it."""
    if approximate == "tanh":
        inner = (input * input).mul_(input).mul_(_TANH_KAPPA).add_(input).mul_(_TANH_BETA)
        t = TanhFunction.apply(inner)
        du = (input * input).mul_(3 * _TANH_KAPPA).add_(1).mul_(_TANH_BETA)
        derivative = (t * t).neg_().add_(1).mul_(du).mul_(input).mul_(0.5)
        return derivative.add_(t, alpha=0.5).add_(0.5)
    density = (input * input).mul_(-0.5).exp_()  # e^{−z²/2}, read by exp's backward
    derivative = torch.erf(input * _SQRT1_2).add_(1).mul_(0.5)
    return derivative.addcmul_(input, density, value=_INV_SQRT_2PI)


def check_gelu_approximate(approximate: str, op: str) -> None:
    """torch's RuntimeError for an ``approximate`` other than 'none' or 'tanh'."""
    if approximate not in ("none", "tanh"):
        raise RuntimeError(
            f"{op}: `approximate` argument must be either none or tanh, got {approximate!r}"
        )


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """``torch.nn.functional.gelu`` with ``approximate`` in {'none', 'tanh'}."""
    check_gelu_approximate(approximate, "gelu")
    require_floating(input, "gelu")
    (wide,) = upcast(input)
    return downcast(GELUFunction.apply(wide, approximate), input.dtype)


class SiLUFunction(Function):
    r"""SiLU (swish).  y = z·σ(z).

    dy/dz = σ(z) + z·σ(z)(1 − σ(z)) = σ(z)·(1 + z(1 − σ(z))).
    Saved: z (y alone does not determine z: SiLU is not monotone); σ(z) is recomputed.
        dL/dz = dL/dy · σ(z)·(1 + z(1 − σ(z)))
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor) -> Tensor:
        return input * torch.sigmoid(input)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:
        (input,) = ctx.saved_tensors
        sigma = SigmoidFunction.apply(input)
        derivative = (1 - sigma).mul_(input).add_(1).mul_(sigma)
        return times(derivative, grad_output)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """``torch.nn.functional.silu`` (``inplace`` accepted, computed out of place)."""
    require_floating(input, "silu")
    return SiLUFunction.apply(input)


class SoftplusFunction(Function):
    r"""Softplus.  y = log(1 + e^{βz})/β, reverting to y = z where βz > threshold (as torch).

    dy/dz = e^{βz}/(1 + e^{βz}) = σ(βz) on the smooth branch, 1 on the linear branch.
    Saved: z (recovering σ(βz) = 1 − e^{−βy} from y loses precision for small y).
        dL/dz = dL/dy · (1[βz > threshold] + 1[βz ≤ threshold]·σ(βz))
                (βz = threshold is on the smooth side)
    float16/bfloat16 inputs are computed in float32 and the result cast back (:func:`softplus`),
    as torch's kernel: e^{βz} overflows float16 from βz ≈ 11.1, below the default threshold 20.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, beta: float, threshold: float) -> Tensor:
        scaled = input * beta
        return torch.where(scaled > threshold, input, torch.log1p(torch.exp(scaled)) / beta)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, beta, threshold = inputs
        ctx.beta, ctx.threshold = beta, threshold
        ctx.save_for_backward(input)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (input,) = ctx.saved_tensors
        scaled = input * ctx.beta
        slope = slope_above(scaled, ctx.threshold, SigmoidFunction.apply(scaled))
        return times(slope, grad_output), None, None


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``torch.nn.functional.softplus``."""
    require_floating(input, "softplus")
    (wide,) = upcast(input)
    return downcast(SoftplusFunction.apply(wide, beta, threshold), input.dtype)


class SigmoidFunction(Function):
    r"""Logistic sigmoid.  y = σ(z) = 1/(1 + e^{−z}).

    dy/dz = σ(z)(1 − σ(z)) = y(1 − y).
    Saved: y only (the derivative is a function of the output).
        dL/dz = dL/dy · y(1 − y)
    The forward evaluates σ with torch's elementary ``torch.sigmoid`` (value only).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor) -> Tensor:
        return torch.sigmoid(input)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:
        (output,) = ctx.saved_tensors
        return times((1 - output).mul_(output), grad_output)


def sigmoid(input: Tensor) -> Tensor:
    """``torch.nn.functional.sigmoid``."""
    require_tensor(input, "sigmoid", AttributeError)
    return SigmoidFunction.apply(input)


class TanhFunction(Function):
    r"""Hyperbolic tangent.  y = tanh(z).

    dy/dz = 1 − tanh²(z) = 1 − y².
    Saved: y only (the derivative is a function of the output).
        dL/dz = dL/dy · (1 − y²)
    The forward evaluates tanh with torch's elementary ``torch.tanh`` (value only).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor) -> Tensor:
        return torch.tanh(input)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:
        (output,) = ctx.saved_tensors
        return times((output * output).neg_().add_(1), grad_output)


def tanh(input: Tensor) -> Tensor:
    """``torch.nn.functional.tanh``."""
    require_tensor(input, "tanh", AttributeError)
    return TanhFunction.apply(input)


class HardtanhFunction(Function):
    r"""Hardtanh.  y = clamp(z, m, M)   (m = min_val, M = max_val).

    Saved: y only; m < y < M ⇔ m < z < M, so strict bounds on y give the pass-through mask.
        dL/dz = dL/dy · (1 − 1[y ≤ m])(1 − 1[y ≥ M])   (subgradient 0 at z = m and at z = M, as
                torch; 1 at z = NaN, as torch's ``y <= m || y >= M ? 0 : g``)
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, min_val: float, max_val: float) -> Tensor:
        return input.clamp(min_val, max_val)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _, ctx.min_val, ctx.max_val = inputs
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (output,) = ctx.saved_tensors
        inside = indicator_not(torch.le, output, ctx.min_val)
        inside.mul_(indicator_not(torch.ge, output, ctx.max_val))
        return times(inside, grad_output), None, None


def hardtanh(
    input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> Tensor:
    """``torch.nn.functional.hardtanh`` (``inplace`` accepted, computed out of place).

    Integer inputs stay integer, with the bounds truncated to integers as torch does.
    """
    if min_val > max_val:
        raise ValueError(f"hardtanh: `min_val` ({min_val}) cannot be greater than `max_val`")
    if not input.is_floating_point():
        min_val, max_val = int(min_val), int(max_val)
    return HardtanhFunction.apply(input, min_val, max_val)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """``torch.nn.functional.relu6``: hardtanh(z, 0, 6) through :class:`HardtanhFunction`, as
    torch (subgradient 0 at z = 0 and z = 6; ``inplace`` accepted, computed out of place)."""
    return hardtanh(input, 0.0, 6.0)


class HardsigmoidFunction(Function):
    r"""Hard sigmoid.  y = clamp(z + 3, 0, 6)/6.

    Saved: y only; 0 < y < 1 ⇔ −3 < z < 3.
        dL/dz = dL/dy · 1[y > 0]·1[y < 1]/6   (subgradient 0 at z = ±3, and at z = NaN, as
                torch's ``−3 < z < 3 ? g/6 : 0``)
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor) -> Tensor:
        return (input + 3).clamp(0, 6).div_(6)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:
        (output,) = ctx.saved_tensors
        inside = indicator(torch.gt, output, 0).mul_(indicator(torch.lt, output, 1))
        return times(inside.div_(6), grad_output)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """``torch.nn.functional.hardsigmoid`` (``inplace`` accepted, computed out of place)."""
    require_floating(input, "hardsigmoid")
    return HardsigmoidFunction.apply(input)


class HardswishFunction(Function):
    r"""Hard swish.  y = z·clamp(z + 3, 0, 6)/6.

    dy/dz = 0 for z < −3, z/3 + ½ for −3 < z < 3, 1 for z > 3.
    Saved: z (y does not determine z: hardswish is not monotone).
        dL/dz = dL/dy · (1[−3 < z < 3]·(c/3 + ½) + 1[z ≥ 3 or z = NaN])
                (c = z clamped to [−3, 3] by fmax/fmin, so finite at ±inf and NaN; subgradient 0
                at z = −3 and 1 at z = 3, as torch's ``z <= −3 ? 0 : z < 3 ? g(z/3 + ½) : g``)
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor) -> Tensor:
        return (input + 3).clamp(0, 6).mul_(input).div_(6)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:
        (input,) = ctx.saved_tensors
        inside = indicator(torch.gt, input, -3).mul_(indicator(torch.lt, input, 3))
        clamped = torch.fmax(torch.fmin(input, input.new_full((), 3)), input.new_full((), -3))
        middle = times(inside, clamped / 3 + 0.5)
        slope = middle.add_(indicator_not(torch.lt, input, 3))
        return times(slope, grad_output)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """``torch.nn.functional.hardswish`` (``inplace`` accepted, computed out of place)."""
    require_floating(input, "hardswish")
    return HardswishFunction.apply(input)


class MishFunction(Function):
    r"""Mish.  y = z·tanh(ζ(z)),  ζ(z) = log(1 + eᶻ) (softplus).

    dy/dz = t + z·(1 − t²)·σ(z)   (t = tanh(ζ(z)), ζ'(z) = σ(z)).
    Saved: z (mish is not monotone); t and σ(z) are recomputed.
        dL/dz = dL/dy · (t + z·σ(z)·(1 − t²))   (torch's formula, so NaN at z = +inf as torch)
    float16/bfloat16 inputs are computed in float32 and the result cast back (:func:`mish`), as
    torch's kernel.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor) -> Tensor:
        return torch.exp(input).log1p_().tanh_().mul_(input)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:
        (input,) = ctx.saved_tensors
        t = TanhFunction.apply(torch.log1p(torch.exp(input)))
        sigma = SigmoidFunction.apply(input)
        derivative = (t * t).neg_().add_(1).mul_(sigma).mul_(input).add_(t)
        return times(derivative, grad_output)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """``torch.nn.functional.mish`` (``inplace`` accepted, computed out of place)."""
    require_floating(input, "mish")
    (wide,) = upcast(input)
    return downcast(MishFunction.apply(wide), input.dtype)


class LogSigmoidFunction(Function):
    r"""Log-sigmoid.  y = log σ(z) = min(z, 0) − log(1 + e^{−|z|})  (stable for either sign).

    dy/dz = 1 − σ(z) = σ(−z).
    Saved: z (σ(−z) = 1 − e^y loses precision as y → 0).
        dL/dz = dL/dy · σ(−z)
    float16/bfloat16 inputs are computed in float32 and the result cast back
    (:func:`logsigmoid`), as torch's kernel.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor) -> Tensor:
        return input.clamp_max(0).sub_(input.abs().neg_().exp_().log1p_())

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:
        (input,) = ctx.saved_tensors
        return times(SigmoidFunction.apply(-input), grad_output)


def logsigmoid(input: Tensor) -> Tensor:
    """``torch.nn.functional.logsigmoid``."""
    require_floating(input, "logsigmoid")
    (wide,) = upcast(input)
    return downcast(LogSigmoidFunction.apply(wide), input.dtype)


class GLUFunction(Function):
    r"""Gated linear unit.  a, b = the two halves of z along ``dim``;  y = a·σ(b).

    Saved: z (both halves are read); σ(b) is recomputed.
        dL/da = dL/dy · σ(b)
        dL/db = dL/dy · a·σ(b)(1 − σ(b))
    dL/dz is the two halves concatenated back along ``dim``.
    float16/bfloat16 inputs are computed in float32 and the result cast back (:func:`glu`).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, dim: int) -> Tensor:
        a, b = input.chunk(2, dim)
        return torch.sigmoid(b).mul_(a)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, ctx.dim = inputs
        ctx.save_for_backward(input)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (input,) = ctx.saved_tensors
        a, b = input.chunk(2, ctx.dim)
        sigma = SigmoidFunction.apply(b)
        grad_a = sigma * grad_output
        grad_b = (1 - sigma).mul_(sigma).mul_(a)
        return torch.cat([grad_a, times(grad_b, grad_output)], ctx.dim), None


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """``torch.nn.functional.glu``: halves ``input`` along ``dim`` (of even size) into a, b and
    returns a·σ(b). A 0-d input or an odd size raises torch's RuntimeError."""
    if input.dim() == 0:
        raise RuntimeError("glu: `input` must not be 0-d (halving size must be even)")
    dim = wrap_dim(dim, input.dim(), "glu")
    if input.shape[dim] % 2:
        raise RuntimeError(
            f"glu: halving dimension `dim` must be even, but dimension {dim} is size "
            f"{input.shape[dim]}"
        )
    require_floating(input, "glu")
    (wide,) = upcast(input)
    return downcast(GLUFunction.apply(wide, dim), input.dtype)


class StepFunction(Function):
    r"""The threshold unit of the perceptron.  φ(z) = 1 if z > 0 else 0  (φ(0) = 0).

    φ is constant on each side of 0 and jumps at 0, so its true derivative is 0 almost
    everywhere (and undefined at 0, where 0 is used): a network of step units gets no gradient.
    Use :class:`StraightThroughStepFunction` to train one.
    Saved: nothing.
        dL/dz = 0
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor) -> Tensor:
        return indicator(torch.gt, input, 0)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        pass

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:
        return torch.zeros_like(grad_output)


class StraightThroughStepFunction(Function):
    r"""Step forward, saturating straight-through estimator backward.

    Forward: φ(z) = 1[z > 0] (as :class:`StepFunction`). Backward pretends φ was the hard
    tanh-like identity on [−1, 1]:
        dL/dz := dL/dy · 1[|z| ≤ 1]   (an estimator, not the derivative of φ)
    Saved: the bool window 1[|z| ≤ 1] (1 byte per element), returned by ``forward`` as a
    non-differentiable second output so that it is a saved output, not an intermediate.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor) -> tuple[Tensor, Tensor]:
        return indicator(torch.gt, input, 0), input.abs() <= 1

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _, window = output
        ctx.mark_non_differentiable(window)
        ctx.save_for_backward(window)

    @staticmethod
    def backward(ctx, grad_output: Tensor, grad_window: Tensor | None) -> Tensor:
        (window,) = ctx.saved_tensors
        return grad_output * mask_as_number(window)


def step(input: Tensor, straight_through: bool = False) -> Tensor:
    """The perceptron's threshold unit φ(z) = 1[z > 0] (φ(0) = 0).

    ``straight_through=False``: the true gradient, 0 everywhere (see :class:`StepFunction`).
    ``straight_through=True``: gradient ``grad · 1[|z| ≤ 1]`` (saturating straight-through
    estimator, :class:`StraightThroughStepFunction`), so a network of step units can be trained.
    """
    require_tensor(input, "step")
    if straight_through:
        return StraightThroughStepFunction.apply(input)[0]
    return StepFunction.apply(input)


__all__ = [
    "ELUFunction",
    "GELUFunction",
    "GLUFunction",
    "HardsigmoidFunction",
    "HardswishFunction",
    "HardtanhFunction",
    "LeakyReLUFunction",
    "LogSigmoidFunction",
    "MishFunction",
    "PReLUFunction",
    "ReLUFunction",
    "SiLUFunction",
    "SigmoidFunction",
    "SoftplusFunction",
    "StepFunction",
    "StraightThroughStepFunction",
    "TanhFunction",
    "celu",
    "elu",
    "gelu",
    "glu",
    "hardsigmoid",
    "hardswish",
    "hardtanh",
    "leaky_relu",
    "logsigmoid",
    "mish",
    "prelu",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "silu",
    "softplus",
    "step",
    "tanh",
]
