"""Adam and AdamW (decoupled weight decay)."""

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
    require,
    scalar,
    zero_buffers,
)


def adam(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    max_exp_avg_sqs: list[Tensor],
    state_steps: list[Tensor],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    maximize: bool,
    decoupled_weight_decay: bool,
    differentiable: bool = False,
) -> None:
    r"""One Adam/AdamW step, in place (algorithm in :class:`Adam`).

    The bias corrections are folded into two scalars, which saves a pass over the denominator:

        θ ← θ − γ/(1 − β₁ᵗ) · m / (√v/√(1 − β₂ᵗ) + ε)
          = θ − c · m / (√v + ε·√(1 − β₂ᵗ)),      c = γ·√(1 − β₂ᵗ)/(1 − β₁ᵗ)

    ``max_exp_avg_sqs`` is empty unless ``amsgrad``.
    """
    steps = increment(state_steps)
    coupled_decay = 0 if decoupled_weight_decay else weight_decay
    for i, (param, grad, m, v) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs, strict=True)):
        if decoupled_weight_decay and weight_decay != 0:
            param.mul_(1 - lr * weight_decay)  # θ ← θ − γλθ
        grad = effective_grad(param, grad, coupled_decay, maximize)  # g' = ±g + λθ
        m.lerp_(grad, 1 - beta1)  # m ← β₁m + (1 − β₁)g'
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)  # v ← β₂v + (1 − β₂)g'²
        if amsgrad:
            v = max_(max_exp_avg_sqs[i], v, differentiable)  # vᵐᵃˣ ← max(vᵐᵃˣ, v)
        correction2 = (1 - beta2 ** steps[i]) ** 0.5
        denom = plus(v.sqrt(), eps * correction2, differentiable)
        param.addcdiv_(m, denom, value=-lr * correction2 / (1 - beta1 ** steps[i]))


def max_(running: Tensor, value: Tensor, differentiable: bool) -> Tensor:
    """running ← max(running, value), in place; returns ``running``."""
    if differentiable:  # maximum saves its inputs: compare against a copy, then overwrite
        return running.copy_(torch.maximum(running.clone(), value))
    return torch.maximum(running, value, out=running)


class Adam(FirstOrderOptimizer):
    r"""Adam: adaptive moment estimation (AMSGrad variant and decoupled decay optional).

    Algorithm (γ lr, β₁ β₂ betas, ε eps, λ weight_decay), as torch.optim.Adam::

        m₀ ← 0, v₀ ← 0, v₀ᵐᵃˣ ← 0
        for t = 1, 2, ...
            g_t ← ∇f(θ_{t−1})                        (−∇f(θ_{t−1}) if maximize)
            θ_{t−1} ← θ_{t−1} − γλ·θ_{t−1}              if decoupled_weight_decay (AdamW)
            g_t ← g_t + λ·θ_{t−1}                      if λ ≠ 0 and not decoupled
            m_t ← β₁·m_{t−1} + (1 − β₁)·g_t
            v_t ← β₂·v_{t−1} + (1 − β₂)·g_t²
            m̂_t ← m_t / (1 − β₁ᵗ)
            v_tᵐᵃˣ ← max(v_{t−1}ᵐᵃˣ, v_t);  v̂_t ← v_tᵐᵃˣ / (1 − β₂ᵗ)   if amsgrad
            v̂_t ← v_t / (1 − β₂ᵗ)                                    otherwise
            θ_t ← θ_{t−1} − γ·m̂_t / (√v̂_t + ε)

    ε is added after the square root, as in the paper and torch.

    References: Kingma & Ba, "Adam: A Method for Stochastic Optimization" (ICLR 2015,
    arXiv:1412.6980); Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond" (ICLR 2018)
    for AMSGrad; Loshchilov & Hutter, "Decoupled Weight Decay Regularization" (ICLR 2019,
    arXiv:1711.05101) for the decoupled decay.

    Args:
        params: iterable of parameters (or named parameters, or parameter-group dicts).
        lr: learning rate γ, a float or a 1-element tensor (default: 1e-3).
        betas: (β₁, β₂), both floats or both 1-element tensors (default: (0.9, 0.999)).
        eps: ε added to the denominator (default: 1e-8).
        weight_decay: λ (default: 0).
        amsgrad: use the AMSGrad maximum of second moments (default: False).
        maximize: maximize the objective (default: False).
        decoupled_weight_decay: AdamW's decay θ ← θ − γλθ instead of the L2 gradient term.
        foreach, capturable, differentiable, fused: as torch.optim.Adam; see
            :mod:`manualgrad.optim._base`.

    State per parameter: ``step`` (0-d tensor), ``exp_avg``, ``exp_avg_sq`` and, with amsgrad,
    ``max_exp_avg_sq``. Sparse gradients are rejected.
    """

    default_lr = 3e-3  # manualgrad train's lr without --lr (Traits)

    def __init__(
        self,
        params: Any,
        lr: float | Tensor = 1e-3,
        betas: tuple[float | Tensor, float | Tensor] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        if isinstance(lr, Tensor) and foreach and not capturable:
            raise ValueError(
                "lr as a Tensor is not supported for capturable=False and foreach=True"
            )
        check_lr(lr)
        check_non_negative(epsilon=eps)
        require(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
        require(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")
        check_non_negative(weight_decay=weight_decay)
        both_floats = all(isinstance(beta, float) for beta in betas)
        both_tensors = all(isinstance(beta, Tensor) for beta in betas)
        require(both_floats or both_tensors, "betas must be either both floats or both Tensors")
        for index, beta in enumerate(betas):
            if isinstance(beta, Tensor):
                require(
                    capturable or not foreach,
                    f"betas[{index}] as a Tensor is not supported for capturable=False and "
                    "foreach=True",
                )
                require(beta.numel() == 1, f"Tensor betas[{index}] must be 1-element")
        betas = tuple(
            beta.squeeze() if isinstance(beta, Tensor) and beta.dim() != 0 else beta
            for beta in betas
        )
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
            "fused": fused,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def _init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        return {
            "step": new_step(param, group["capturable"], group["fused"]),
            **zero_buffers(param, exp_avg=True, exp_avg_sq=True, max_exp_avg_sq=group["amsgrad"]),
        }

    def _update(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> None:
        states = self._states(group, params)
        beta1, beta2 = group["betas"]
        adam(
            real(params),
            real(grads),
            self._column(states, "exp_avg"),
            self._column(states, "exp_avg_sq"),
            self._column(states, "max_exp_avg_sq", present=group["amsgrad"]),
            self._column(states, "step"),
            lr=scalar(group["lr"], "lr"),
            beta1=scalar(beta1, "betas"),
            beta2=scalar(beta2, "betas"),
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            amsgrad=group["amsgrad"],
            maximize=group["maximize"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
            differentiable=group["differentiable"],
        )


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay, θ ← θ − γλθ applied before the Adam step.

    Algorithm (γ lr, β₁ β₂ betas, ε eps, λ weight_decay), as torch.optim.AdamW::

        m₀ ← 0, v₀ ← 0, v₀ᵐᵃˣ ← 0
        for t = 1, 2, ...
            g_t ← ∇f(θ_{t−1})                        (−∇f(θ_{t−1}) if maximize)
            θ_{t−1} ← θ_{t−1} − γλ·θ_{t−1}              (decay kept out of m and v)
            m_t ← β₁·m_{t−1} + (1 − β₁)·g_t
            v_t ← β₂·v_{t−1} + (1 − β₂)·g_t²
            m̂_t ← m_t / (1 − β₁ᵗ)
            v̂_t ← max(v_{t−1}ᵐᵃˣ, v_t) / (1 − β₂ᵗ) if amsgrad, else v_t / (1 − β₂ᵗ)
            θ_t ← θ_{t−1} − γ·m̂_t / (√v̂_t + ε)

    Reference: Loshchilov & Hutter, "Decoupled Weight Decay Regularization" (ICLR 2019,
    arXiv:1711.05101). Same arguments and state as :class:`Adam`, except ``weight_decay``
    defaults to 1e-2 and ``decoupled_weight_decay`` is always True.
    """

    default_lr = 3e-3  # manualgrad train's lr without --lr (Traits)

    def __init__(
        self,
        params: Any,
        lr: float | Tensor = 1e-3,
        betas: tuple[float | Tensor, float | Tensor] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
        )

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
