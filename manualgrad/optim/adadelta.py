"""Adadelta: step sizes from running averages of squared gradients and squared updates."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ._base import (
    FirstOrderOptimizer,
    check_lr,
    check_non_negative,
    effective_grad,
    increment,
    new_step,
    real,
    require,
    scalar,
    zero_buffers,
)


def adadelta(
    params: list[Tensor],
    grads: list[Tensor],
    square_avgs: list[Tensor],
    acc_deltas: list[Tensor],
    state_steps: list[Tensor],
    *,
    lr: float,
    rho: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
    differentiable: bool = False,
) -> None:
    r"""One Adadelta step, in place (algorithm in :class:`Adadelta`).

    The update is computed as Δ = g'·√((u + ε)/(v + ε)), one square root instead of torch's two
    (√(u + ε)/√(v + ε)); the results may differ in the last bit.
    """
    increment(state_steps)
    for param, grad, square_avg, acc_delta in zip(
        params, grads, square_avgs, acc_deltas, strict=True
    ):
        grad = effective_grad(param, grad, weight_decay, maximize)  # g' = ±g + λθ
        square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)  # v ← ρv + (1 − ρ)g'²
        ratio = acc_delta.add(eps)
        if differentiable:  # div_ and sqrt_ would overwrite values autograd saved
            delta = (ratio / square_avg.add(eps)).sqrt() * grad
        else:
            delta = ratio.div_(square_avg.add(eps)).sqrt_().mul_(grad)  # Δ = g'·√((u+ε)/(v+ε))
        acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)  # u ← ρu + (1 − ρ)Δ²
        param.add_(delta, alpha=-lr)  # θ ← θ − γΔ


class Adadelta(FirstOrderOptimizer):
    r"""Adadelta: the step is g scaled by RMS(past updates) / RMS(past gradients).

    Algorithm (γ lr, ρ rho, ε eps, λ weight_decay), as torch.optim.Adadelta::

        v₀ ← 0 (square_avg), u₀ ← 0 (acc_delta)
        for t = 1, 2, ...
            g_t ← ∇f(θ_{t−1})                      (−∇f(θ_{t−1}) if maximize)
            g_t ← g_t + λ·θ_{t−1}                   if λ ≠ 0
            v_t ← ρ·v_{t−1} + (1 − ρ)·g_t²
            Δ_t ← g_t·√(u_{t−1} + ε) / √(v_t + ε)
            u_t ← ρ·u_{t−1} + (1 − ρ)·Δ_t²
            θ_t ← θ_{t−1} − γ·Δ_t

    Reference: Zeiler, "ADADELTA: An Adaptive Learning Rate Method" (arXiv:1212.5701, 2012).

    Args:
        params: iterable of parameters (or named parameters, or parameter-group dicts).
        lr: coefficient γ scaling Δ, a float or a 1-element tensor (default: 1.0).
        rho: ρ, decay of both running averages, in [0, 1] (default: 0.9).
        eps: ε inside both square roots (default: 1e-6).
        weight_decay: L2 penalty λ (default: 0).
        maximize: maximize the objective (default: False).
        foreach, capturable, differentiable: as torch.optim.Adadelta; see
            :mod:`manualgrad.optim._base`.

    State per parameter: ``step`` (0-d tensor), ``square_avg``, ``acc_delta``. Sparse gradients
    are rejected.
    """

    default_lr = 1.0  # manualgrad train's lr without --lr (Traits)

    def __init__(
        self,
        params: Any,
        lr: float | Tensor = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_lr(lr)
        require(0.0 <= rho <= 1.0, f"Invalid rho value: {rho}")
        check_non_negative(epsilon=eps, weight_decay=weight_decay)
        defaults = {
            "lr": lr,
            "rho": rho,
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "capturable": capturable,
            "foreach": foreach,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def _init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        return {
            "step": new_step(param, group["capturable"]),
            **zero_buffers(param, square_avg=True, acc_delta=True),
        }

    def _update(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> None:
        states = self._states(group, params)
        adadelta(
            real(params),
            real(grads),
            self._column(states, "square_avg"),
            self._column(states, "acc_delta"),
            self._column(states, "step"),
            lr=scalar(group["lr"], "lr"),
            rho=group["rho"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            maximize=group["maximize"],
            differentiable=group["differentiable"],
        )
