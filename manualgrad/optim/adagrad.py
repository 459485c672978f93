"""Adagrad: per-coordinate step sizes from the running sum of squared gradients."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._base import (
    FirstOrderOptimizer,
    check_lr,
    check_non_negative,
    effective_grad,
    increment,
    new_step,
    plus,
    real,
    scalar,
)


def adagrad(
    params: list[Tensor],
    grads: list[Tensor],
    state_sums: list[Tensor],
    state_steps: list[Tensor],
    *,
    lr: float,
    lr_decay: float,
    weight_decay: float,
    eps: float,
    maximize: bool,
    differentiable: bool = False,
) -> None:
    r"""One Adagrad step, in place (algorithm in :class:`Adagrad`)."""
    steps = increment(state_steps)
    for param, grad, state_sum, step in zip(params, grads, state_sums, steps, strict=True):
        decayed_lr = lr / (1 + (step - 1) * lr_decay)  # γ̃ = γ / (1 + (t − 1)η)
        grad = effective_grad(param, grad, weight_decay, maximize)  # g' = ±g + λθ
        state_sum.addcmul_(grad, grad, value=1)  # s ← s + g'²
        std = plus(state_sum.sqrt(), eps, differentiable)  # √s + ε
        param.addcdiv_(grad, std, value=-decayed_lr)  # θ ← θ − γ̃ g' / (√s + ε)


class Adagrad(FirstOrderOptimizer):
    r"""Adagrad: each coordinate's step shrinks with its accumulated squared gradients.

    Algorithm (γ lr, η lr_decay, λ weight_decay, τ initial_accumulator_value, ε eps), as
    torch.optim.Adagrad::

        s₀ ← τ
        for t = 1, 2, ...
            g_t ← ∇f(θ_{t−1})                      (−∇f(θ_{t−1}) if maximize)
            γ̃ ← γ / (1 + (t − 1)·η)
            g_t ← g_t + λ·θ_{t−1}                   if λ ≠ 0
            s_t ← s_{t−1} + g_t²
            θ_t ← θ_{t−1} − γ̃·g_t / (√s_t + ε)

    Reference: Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and
    Stochastic Optimization" (JMLR 12, 2011).

    Args:
        params: iterable of parameters (or named parameters, or parameter-group dicts).
        lr: learning rate γ, a float or a 1-element tensor (default: 1e-2).
        lr_decay: η (default: 0).
        weight_decay: L2 penalty λ (default: 0).
        initial_accumulator_value: τ, the starting value of the sum (default: 0).
        eps: ε added to the denominator (default: 1e-10).
        maximize: maximize the objective (default: False).
        foreach, differentiable, fused: as torch.optim.Adagrad; see
            :mod:`manualgrad.optim._base`.

    State per parameter (created in the constructor, as torch does): ``step`` (0-d tensor) and
    ``sum``. Unlike torch, sparse gradients are rejected, and a parameter group added later
    starts its sums from that group's ``initial_accumulator_value``.
    """

    default_lr = 0.05  # manualgrad train's lr without --lr (Traits)

    def __init__(
        self,
        params: Any,
        lr: float | Tensor = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_lr(lr)
        check_non_negative(
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            epsilon=eps,
        )
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "eps": eps,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults)
        for group in self.param_groups:
            for param in group["params"]:
                self.state[param] = self._init_state(param, group)

    def _init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        value = group["initial_accumulator_value"]
        if torch.is_complex(param):
            value = complex(value, value)
        return {
            "step": new_step(param, fused=group["fused"]),
            "sum": torch.full_like(param, value, memory_format=torch.preserve_format),
        }

    def _update(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> None:
        states = self._states(group, params)
        adagrad(
            real(params),
            real(grads),
            self._column(states, "sum"),
            self._column(states, "step"),
            lr=scalar(group["lr"], "lr"),
            lr_decay=group["lr_decay"],
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=group["maximize"],
            differentiable=group["differentiable"],
        )
