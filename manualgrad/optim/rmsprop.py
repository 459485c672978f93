"""RMSprop: divide the gradient by a running root-mean-square of recent gradients."""

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
    plus,
    real,
    scalar,
    zero_buffers,
)


def rmsprop(
    params: list[Tensor],
    grads: list[Tensor],
    square_avgs: list[Tensor],
    grad_avgs: list[Tensor],
    momentum_buffers: list[Tensor],
    state_steps: list[Tensor],
    *,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
    maximize: bool,
    differentiable: bool = False,
) -> None:
    r"""One RMSprop step, in place (algorithm in :class:`RMSprop`).

    ``grad_avgs`` is empty unless ``centered``; ``momentum_buffers`` is empty unless μ > 0.
    """
    increment(state_steps)
    for i, (param, grad, square_avg) in enumerate(zip(params, grads, square_avgs, strict=True)):
        grad = effective_grad(param, grad, weight_decay, maximize)  # g' = ±g + λθ
        square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)  # v ← αv + (1 − α)g'²
        if centered:
            grad_avg = grad_avgs[i].lerp_(grad, 1 - alpha)  # ḡ ← αḡ + (1 − α)g'
            avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()  # √(v − ḡ²)
        else:
            avg = square_avg.sqrt()  # √v
        avg = plus(avg, eps, differentiable)
        if momentum > 0:
            buffer = momentum_buffers[i].mul_(momentum).addcdiv_(grad, avg)  # b ← μb + g'/avg
            param.add_(buffer, alpha=-lr)  # θ ← θ − γb
        else:
            param.addcdiv_(grad, avg, value=-lr)  # θ ← θ − γ g'/avg


class RMSprop(FirstOrderOptimizer):
    r"""RMSprop: the gradient divided by the root of a running mean of its square.

    Algorithm (γ lr, α alpha, ε eps, λ weight_decay, μ momentum), as torch.optim.RMSprop::

        v₀ ← 0 (square_avg), b₀ ← 0 (momentum_buffer), ḡ₀ ← 0 (grad_avg)
        for t = 1, 2, ...
            g_t ← ∇f(θ_{t−1})                      (−∇f(θ_{t−1}) if maximize)
            g_t ← g_t + λ·θ_{t−1}                   if λ ≠ 0
            v_t ← α·v_{t−1} + (1 − α)·g_t²
            ḡ_t ← α·ḡ_{t−1} + (1 − α)·g_t;  ṽ_t ← v_t − ḡ_t²    if centered
            ṽ_t ← v_t                                           otherwise
            b_t ← μ·b_{t−1} + g_t / (√ṽ_t + ε);  θ_t ← θ_{t−1} − γ·b_t   if μ > 0
            θ_t ← θ_{t−1} − γ·g_t / (√ṽ_t + ε)                         otherwise

    References: Hinton, Srivastava & Swersky, "Neural Networks for Machine Learning", lecture 6e
    (Coursera, 2012); Graves, "Generating Sequences With Recurrent Neural Networks"
    (arXiv:1308.0850, 2013) for the centered variant.

    Args:
        params: iterable of parameters (or named parameters, or parameter-group dicts).
        lr: learning rate γ, a float or a 1-element tensor (default: 1e-2).
        alpha: smoothing constant α (default: 0.99).
        eps: ε added to the denominator (default: 1e-8).
        weight_decay: L2 penalty λ (default: 0).
        momentum: μ (default: 0).
        centered: normalize by an estimate of the variance instead of the raw second moment.
        maximize: maximize the objective (default: False).
        capturable, foreach, differentiable: as torch.optim.RMSprop; see
            :mod:`manualgrad.optim._base`.

    State per parameter: ``step`` (0-d tensor), ``square_avg``, ``momentum_buffer`` (μ > 0),
    ``grad_avg`` (centered). Sparse gradients are rejected.
    """

    default_lr = 1e-3  # manualgrad train's lr without --lr (Traits)

    def __init__(
        self,
        params: Any,
        lr: float | Tensor = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_lr(lr)
        check_non_negative(epsilon=eps, momentum=momentum, weight_decay=weight_decay, alpha=alpha)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "capturable": capturable,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def _init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        return {
            "step": new_step(param, group["capturable"]),
            **zero_buffers(
                param,
                square_avg=True,
                momentum_buffer=group["momentum"] > 0,
                grad_avg=group["centered"],
            ),
        }

    def _update(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> None:
        states = self._states(group, params)
        rmsprop(
            real(params),
            real(grads),
            self._column(states, "square_avg"),
            self._column(states, "grad_avg", present=group["centered"]),
            self._column(states, "momentum_buffer", present=group["momentum"] > 0),
            self._column(states, "step"),
            lr=scalar(group["lr"], "lr"),
            alpha=group["alpha"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            momentum=group["momentum"],
            centered=group["centered"],
            maximize=group["maximize"],
            differentiable=group["differentiable"],
        )
