"""Stochastic gradient descent, with (Nesterov) momentum."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._base import FirstOrderOptimizer, check_lr, check_non_negative, effective_grad, scalar


def sgd(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor | None],
    *,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
    differentiable: bool = False,
) -> None:
    r"""One SGD step, in place (algorithm in :class:`SGD`); fills ``None`` momentum buffers.

    Plain SGD on raw gradients is one multi-tensor update. Otherwise each parameter is updated in
    turn; without dampening the buffer update b ← g' + μb is a single pass (torch's for-loop
    makes two, b ← μb then b ← b + g', so the result may differ in the last bit).
    """
    if momentum == 0 and weight_decay == 0 and not maximize:
        torch._foreach_add_(params, grads, alpha=-lr)  # θ ← θ − γg
        return
    for i, (param, grad) in enumerate(zip(params, grads, strict=True)):
        grad = effective_grad(param, grad, weight_decay, maximize)  # g' = ±g + λθ
        if momentum != 0:
            buffer = momentum_buffers[i]
            if buffer is None:
                buffer = grad.clone()  # b₁ = g'
            elif dampening == 0:  # b ← g' + μb
                buffer = torch.add(
                    grad, buffer, alpha=momentum, out=None if differentiable else buffer
                )
            else:  # b ← μb + (1 − τ)g'
                buffer.mul_(momentum).add_(grad, alpha=1 - dampening)
            momentum_buffers[i] = buffer
            grad = grad.add(buffer, alpha=momentum) if nesterov else buffer  # g' + μb, or b
        param.add_(grad, alpha=-lr)  # θ ← θ − γ·(g', b or g' + μb)


class SGD(FirstOrderOptimizer):
    r"""Stochastic gradient descent, optionally with momentum (heavy ball) or Nesterov momentum.

    Algorithm (γ lr, μ momentum, τ dampening, λ weight_decay), as torch.optim.SGD::

        for t = 1, 2, ...
            g_t ← ∇f(θ_{t−1})                    (−∇f(θ_{t−1}) if maximize)
            g_t ← g_t + λ·θ_{t−1}                 if λ ≠ 0
            if μ ≠ 0
                b_t ← g_t                          if t = 1
                b_t ← μ·b_{t−1} + (1 − τ)·g_t      otherwise
                g_t ← g_t + μ·b_t                  if nesterov
                g_t ← b_t                          otherwise
            θ_t ← θ_{t−1} − γ·g_t

    Like torch (and unlike Sutskever et al., who scale the velocity by γ), the buffer holds
    gradients, not steps, and its first value is the gradient itself, undamped.

    References: Robbins & Monro, "A Stochastic Approximation Method" (1951); Polyak, "Some methods
    of speeding up the convergence of iteration methods" (1964); Sutskever, Martens, Dahl &
    Hinton, "On the importance of initialization and momentum in deep learning" (ICML 2013).

    Args:
        params: iterable of parameters (or named parameters, or parameter-group dicts).
        lr: learning rate γ, a float or a 1-element tensor (default: 1e-3).
        momentum: momentum factor μ (default: 0).
        dampening: dampening τ of the momentum (default: 0).
        weight_decay: L2 penalty λ (default: 0).
        nesterov: use Nesterov momentum; needs μ > 0 and τ = 0 (default: False).
        maximize: maximize the objective instead of minimizing it (default: False).
        foreach, differentiable, fused: as torch.optim.SGD; see :mod:`manualgrad.optim._base`.

    State per parameter: ``momentum_buffer`` (only when μ ≠ 0). Sparse gradients are rejected.
    """

    default_lr = 0.05  # manualgrad train's lr without --lr (Traits)

    def __init__(
        self,
        params: Any,
        lr: float | Tensor = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float | Tensor = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_lr(lr, nan_allowed=True)
        check_non_negative(momentum=momentum, weight_decay=weight_decay)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
            "foreach": foreach,
            "differentiable": differentiable,
            "fused": fused,
        }
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)

    def _init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        return {}

    def _update(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> None:
        use_momentum = group["momentum"] != 0
        states = self._states(group, params) if use_momentum else []
        buffers = [state.get("momentum_buffer") for state in states] or [None] * len(params)
        sgd(
            params,
            grads,
            buffers,
            lr=scalar(group["lr"], "lr"),
            momentum=group["momentum"],
            dampening=group["dampening"],
            weight_decay=scalar(group["weight_decay"], "weight_decay"),
            nesterov=group["nesterov"],
            maximize=group["maximize"],
            differentiable=group["differentiable"],
        )
        for state, buffer in zip(states, buffers[: len(states)], strict=True):
            state["momentum_buffer"] = buffer
