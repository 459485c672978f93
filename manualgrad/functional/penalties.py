r"""Regularisation penalties and the L0 hard-concrete gate, hand-derived.

The user-facing API (``l1_penalty``, ``l2_penalty``, ``elastic_net``, ``l1_prox_``, ``L0Gate``)
and the discussion of subgradients and coupled versus decoupled weight decay are in
:mod:`manualgrad.regularization`; the Functions live here with every other Function.

    abs_sum          ‖x‖₁ = Σ |xᵢ|                         dL/dx = g · sign(x)
    half_square_sum  ½ ‖x‖² = ½ Σ xᵢ²                      dL/dx = g · x
    hard_concrete    z = min(1, max(0, σ(t)(ζ − γ) + γ))   pathwise gradient in log α
    expected_l0      Σᵢ P(zᵢ ≠ 0) = Σᵢ σ(log αᵢ − shift)    dL/dlog α = g · p(1 − p)

Every gradient is written from plain differentiable tensor ops, so double backward works.
"""

from __future__ import annotations

import torch
from torch import Tensor

from manualgrad.functional._function import Function

__all__ = [
    "AbsSumFunction",
    "ExpectedL0Function",
    "HalfSquareSumFunction",
    "HardConcreteFunction",
    "abs_sum",
    "expected_l0",
    "half_square_sum",
    "hard_concrete",
]


def _save_input(ctx, inputs, output) -> None:
    """``setup_context`` of a sum over one tensor x: saves x."""
    ctx.save_for_backward(inputs[0])


class AbsSumFunction(Function):
    r"""‖x‖₁ = Σ |xᵢ|.

    Saved: x.   dL/dx = g · sign(x)   (g the scalar upstream gradient; sign(0) = 0, the
    subgradient in [−1, 1] torch also picks). sign is piecewise constant, so the second
    derivative is 0 away from 0.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor) -> Tensor:
        return x.abs().sum()

    setup_context = staticmethod(_save_input)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (x,) = ctx.saved_tensors
        return grad_output * x.sign()


class HalfSquareSumFunction(Function):
    r"""½ ‖x‖² = ½ Σ xᵢ².

    Saved: x.   dL/dx = g · x.   (Second derivative: the identity, times g.)
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor) -> Tensor:
        return 0.5 * (x * x).sum()

    setup_context = staticmethod(_save_input)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (x,) = ctx.saved_tensors
        return grad_output * x


class HardConcreteFunction(Function):
    r"""Hard-concrete gate (Louizos, Welling & Kingma 2018), reparameterised by uniform noise u.

    Forward, elementwise, with β > 0 (temperature), γ < 0 < 1 < ζ (stretch interval):

        t  = (log u − log(1 − u) + log α) / β        (log u − log(1 − u) ~ standard logistic)
        s  = σ(t)                                     binary concrete sample in (0, 1)
        s̄  = s (ζ − γ) + γ                            stretched to (γ, ζ)
        z  = min(1, max(0, s̄))                        hard: exact 0 and 1 have positive mass

    Saved: log α and u (s is recomputed from them in backward, so the backward stays a
    differentiable function of log α and gradgradcheck passes).

    Backward (the pathwise / reparameterisation gradient), with σ' = σ(1 − σ):

        ∂z/∂log α = 1[0 < s̄ < 1] · (ζ − γ) · s (1 − s) / β,   dL/dlog α = dL/dz · ∂z/∂log α

    0 where the gate is clamped (and at the clamp points s̄ ∈ {0, 1}, a subgradient choice),
    summed back to log α's shape where it broadcast against u. The noise u is not
    differentiated (returns None).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(log_alpha: Tensor, u: Tensor, beta: float, gamma: float, zeta: float) -> Tensor:
        return (_concrete(log_alpha, u, beta) * (zeta - gamma) + gamma).clamp(0, 1)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        log_alpha, u, ctx.beta, ctx.gamma, ctx.zeta = inputs
        ctx.save_for_backward(log_alpha, u)

    @staticmethod
    def backward(ctx, grad_z: Tensor):
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        log_alpha, u = ctx.saved_tensors
        s = _concrete(log_alpha, u, ctx.beta)
        stretched = s * (ctx.zeta - ctx.gamma) + ctx.gamma
        open_ = (stretched > 0) & (stretched < 1)
        slope = (ctx.zeta - ctx.gamma) / ctx.beta
        grad_log_alpha = grad_z * open_ * (s * (1 - s)) * slope
        return grad_log_alpha.sum_to_size(log_alpha.shape), None, None, None, None


def _concrete(log_alpha: Tensor, u: Tensor, beta: float) -> Tensor:
    """Binary concrete sample s = σ((log u − log(1 − u) + log α) / β)."""
    return torch.sigmoid((torch.log(u) - torch.log1p(-u) + log_alpha) / beta)


class ExpectedL0Function(Function):
    r"""Expected number of non-zero hard-concrete gates: Σᵢ P(zᵢ ≠ 0) = Σᵢ σ(log αᵢ − shift),
    shift = β log(−γ/ζ).

    Derivation: z ≠ 0 ⇔ s̄ > 0 ⇔ s > c with c = −γ/(ζ − γ), whose logit is log(c/(1 − c)) =
    log(−γ/ζ). s > c ⇔ logit u > β log(−γ/ζ) − log α, and logit u is standard logistic with
    P(logit u > a) = σ(−a). Hence P(z ≠ 0) = σ(log α − β log(−γ/ζ)).

    Saved: log α.   dL/dlog αᵢ = g · pᵢ (1 − pᵢ),  pᵢ = σ(log αᵢ − shift) recomputed in backward.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(log_alpha: Tensor, shift: float) -> Tensor:
        return torch.sigmoid(log_alpha - shift).sum()

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        log_alpha, ctx.shift = inputs
        ctx.save_for_backward(log_alpha)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (log_alpha,) = ctx.saved_tensors
        p = torch.sigmoid(log_alpha - ctx.shift)
        return grad_output * p * (1 - p), None


def abs_sum(input: Tensor) -> Tensor:
    """‖input‖₁ = Σ |inputᵢ|, gradient sign(input) (0 at 0), through :class:`AbsSumFunction`."""
    return AbsSumFunction.apply(input)


def half_square_sum(input: Tensor) -> Tensor:
    """½‖input‖² = ½ Σ inputᵢ², gradient input, through :class:`HalfSquareSumFunction`."""
    return HalfSquareSumFunction.apply(input)


def hard_concrete(log_alpha: Tensor, u: Tensor, beta: float, gamma: float, zeta: float) -> Tensor:
    """Hard-concrete gates z from log α and uniform noise u ∈ (0, 1) (broadcast together),
    temperature β and stretch (γ, ζ); see :class:`HardConcreteFunction`."""
    return HardConcreteFunction.apply(log_alpha, u, beta, gamma, zeta)


def expected_l0(log_alpha: Tensor, shift: float) -> Tensor:
    """Σ σ(log α − shift), the expected number of open hard-concrete gates for
    shift = β log(−γ/ζ); see :class:`ExpectedL0Function`."""
    return ExpectedL0Function.apply(log_alpha, shift)
