r"""Regularisation penalties with hand-derived (sub)gradients, and the L0 hard-concrete gate.

Penalties on parameters θ, added to the data loss L(θ):

    l1_penalty  = ‖θ‖₁ = Σ |θᵢ|           ∂/∂θᵢ = sign(θᵢ)          (0 chosen at θᵢ = 0)
    l2_penalty  = ½ ‖θ‖² = ½ Σ θᵢ²        ∂/∂θᵢ = θᵢ
    elastic_net = l1 · ‖θ‖₁ + l2 · ½ ‖θ‖²
    L0          = ‖θ‖₀ = #{θᵢ ≠ 0}        not differentiable: replaced by the expected number of
                                          open hard-concrete gates, see :class:`L0Gate`

|θ| has no derivative at 0; its subdifferential is [−1, 1] and we return 0 ∈ [−1, 1] there (what
``torch.sign`` and torch's ``abs`` backward give). A subgradient step therefore never lands a
weight *exactly* on zero — it jitters around it by ≈ lr·λ. Exact zeros come from the proximal step
of the L1 term, soft-thresholding (:func:`l1_prox_`).

Coupled L2 versus decoupled weight decay
----------------------------------------
Adding λ · l2_penalty to the loss ("coupled") makes the gradient g = ∇L + λθ, and the optimizer
then treats λθ like any other gradient. For plain SGD

    θ ← θ − η (∇L + λθ) = (1 − ηλ) θ − η ∇L,

which is exactly weight decay: ``SGD(weight_decay=λ)`` adds λθ to the gradient the same way
(also before momentum), so the two trajectories agree to rounding. For an adaptive method the
two differ. Adam (``Adam(weight_decay=λ)`` is the coupled form) feeds λθ through its moments,

    m ← β₁ m + (1 − β₁)(∇L + λθ),  v ← β₂ v + (1 − β₂)(∇L + λθ)²,  θ ← θ − η m̂ / (√v̂ + ε),

so the decay is divided by √v̂: weights with large gradient history are barely decayed, and
the decay stops being a multiplicative shrink. AdamW (Loshchilov & Hutter 2019) decouples it,

    θ ← (1 − ηλ) θ − η m̂ / (√v̂ + ε)      with m, v built from ∇L alone,

i.e. every weight shrinks by the same factor whatever its gradient statistics. Same λ, different
trajectories; ``tests/test_regularization.py`` measures the gap.

The Functions behind these (``AbsSumFunction``, ``HalfSquareSumFunction``,
``HardConcreteFunction``, ``ExpectedL0Function``) live in :mod:`manualgrad.functional.penalties`
with their derivations; every gradient there is written from plain differentiable tensor ops, so
double backward works.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from manualgrad.functional.penalties import (
    AbsSumFunction,
    ExpectedL0Function,
    HalfSquareSumFunction,
    HardConcreteFunction,
    abs_sum,
    expected_l0,
    half_square_sum,
    hard_concrete,
)

__all__ = [
    "AbsSumFunction",
    "ExpectedL0Function",
    "HalfSquareSumFunction",
    "HardConcreteFunction",
    "L0Gate",
    "elastic_net",
    "l1_penalty",
    "l1_prox_",
    "l2_penalty",
]

Params = Tensor | Iterable[Tensor]


def _tensors(params: Params) -> list[Tensor]:
    return [params] if isinstance(params, Tensor) else list(params)


def _total(penalty: Callable[[Tensor], Tensor], params: Params) -> Tensor:
    """Σ over tensors of ``penalty(p)``; a 0-d zero for an empty collection."""
    terms = [penalty(p) for p in _tensors(params)]
    return torch.stack(terms).sum() if terms else torch.zeros(())


def l1_penalty(params: Params) -> Tensor:
    """‖θ‖₁ summed over a tensor or an iterable of tensors (e.g. ``model.parameters()``).

    Gradient sign(θ), with 0 at θ = 0 (see the module docstring)."""
    return _total(abs_sum, params)


def l2_penalty(params: Params) -> Tensor:
    """½‖θ‖² summed over a tensor or an iterable of tensors; gradient θ.

    ``loss + λ * l2_penalty(params)`` under SGD is exactly ``SGD(weight_decay=λ)``."""
    return _total(half_square_sum, params)


def elastic_net(params: Params, l1: float, l2: float) -> Tensor:
    """l1 · ‖θ‖₁ + l2 · ½‖θ‖² (Zou & Hastie 2005): L1's sparsity with L2's grouping of
    correlated weights. Gradient l1 · sign(θ) + l2 · θ."""
    params = _tensors(params)
    return l1 * l1_penalty(params) + l2 * l2_penalty(params)


def l1_prox_(params: Params, threshold: float) -> None:
    r"""Proximal step of threshold·‖θ‖₁ in place: θ ← sign(θ) · max(|θ| − threshold, 0).

    After a gradient step on the data loss with learning rate η, calling this with
    threshold = η·λ is proximal gradient descent (ISTA) on L + λ‖θ‖₁: it solves
    argmin_u ½‖u − θ‖² + ηλ‖u‖₁ exactly, which sets every |θᵢ| ≤ ηλ to *exactly* zero — the
    sparsity a subgradient step only approximates.
    """
    with torch.no_grad():
        for p in _tensors(params):
            p.copy_(p.sign() * (p.abs() - threshold).clamp_min(0))


class L0Gate(torch.nn.Module):
    r"""One hard-concrete gate zᵢ ∈ [0, 1] per weight; ``forward(w)`` returns w ⊙ z and
    :meth:`penalty` the expected number of open gates, a differentiable stand-in for ‖w ⊙ z‖₀.

    Louizos, Welling & Kingma (2018), "Learning Sparse Neural Networks through L0
    Regularization". Minimise  E_u[L(w ⊙ z(log α, u))] + λ · Σᵢ σ(log αᵢ − β log(−γ/ζ)).
    The first term's gradient w.r.t. log α flows through the sampled gate
    (:class:`HardConcreteFunction`), the second's is closed form (:class:`ExpectedL0Function`).
    Because the stretched sample is clamped, gates hit *exactly* 0 (weight pruned) or 1 with
    positive probability.

    Training mode samples u ~ U(0, 1) (optionally from ``generator``) on every call; eval mode
    uses the deterministic gate ẑ = min(1, max(0, σ(log α)(ζ − γ) + γ)) of the paper — the same
    function at u = ½, β = 1.

    Works as a parametrisation: ``torch.nn.utils.parametrize.register_parametrization(layer,
    "weight", L0Gate(layer.weight.shape))``.

    Args:
        shape: shape of the gated weight (one gate per entry).
        droprate_init: initial P(gate closed) ≈ this; log α starts at log((1 − d)/d) + N(0, 0.01²).
        beta: temperature β of the concrete distribution (paper: 2/3).
        gamma, zeta: stretch interval (γ, ζ) (paper: −0.1, 1.1).
    """

    def __init__(
        self,
        shape: int | tuple[int, ...] | torch.Size,
        droprate_init: float = 0.5,
        beta: float = 2 / 3,
        gamma: float = -0.1,
        zeta: float = 1.1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 < droprate_init < 1.0:
            raise ValueError(f"droprate_init must be in (0, 1), got {droprate_init}")
        if beta <= 0:
            raise ValueError(f"beta must be positive, got {beta}")
        if not (gamma < 0 and zeta > 1):
            raise ValueError(f"need gamma < 0 and zeta > 1, got gamma={gamma}, zeta={zeta}")
        self.droprate_init, self.beta, self.gamma, self.zeta = droprate_init, beta, gamma, zeta
        self.log_alpha = torch.nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """log α ~ N(log((1 − d)/d), 0.01²), d = ``droprate_init`` (the paper's code)."""
        mean = math.log(1 - self.droprate_init) - math.log(self.droprate_init)
        with torch.no_grad():
            self.log_alpha.normal_(mean, 0.01, generator=generator)

    def gates(self, generator: torch.Generator | None = None) -> Tensor:
        """Sampled gates in training mode, deterministic gates in eval mode."""
        if not self.training:
            half = torch.full_like(self.log_alpha, 0.5)
            return hard_concrete(self.log_alpha, half, 1.0, self.gamma, self.zeta)
        eps = torch.finfo(self.log_alpha.dtype).eps
        u = torch.empty_like(self.log_alpha).uniform_(eps, 1 - eps, generator=generator)
        return hard_concrete(self.log_alpha, u, self.beta, self.gamma, self.zeta)

    def forward(self, weight: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """w ⊙ z."""
        return weight * self.gates(generator)

    def penalty(self) -> Tensor:
        """E[‖z‖₀] = Σ σ(log α − β log(−γ/ζ)), differentiable in log α."""
        shift = self.beta * math.log(-self.gamma / self.zeta)
        return expected_l0(self.log_alpha, shift)

    def extra_repr(self) -> str:
        return (
            f"shape={tuple(self.log_alpha.shape)}, droprate_init={self.droprate_init}, "
            f"beta={self.beta}, gamma={self.gamma}, zeta={self.zeta}"
        )
