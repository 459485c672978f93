r"""Registry entries for the optimizers: one :class:`OptimizerInfo` per class in
:mod:`manualgrad.optim` (``tests/test_optim_*.py`` iterate them).

An optimizer with a torch twin is tested against it; one torch lacks brings a plain-math reference
of its documented update. Newton's and HessianFree's is :class:`DampedNewtonReference`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

import manualgrad.optim as optim
from manualgrad.testing.registry import OptimizerInfo


class DampedNewtonReference(Optimizer):
    r"""The damped Newton update written out with dense linear algebra, one step per
    ``step(closure)`` (the closure returns the loss without calling backward):

        g = ∇f(θ);   Hᵢⱼ = ∂gᵢ/∂θⱼ   (one autograd pass per entry of g)
        θ ← θ − γ (H + λI)⁻¹ g        (torch.linalg.solve)

    No line search and no shift search: on an objective with H ≻ 0 ``Newton``'s shift τ stays
    λ, and ``HessianFree``'s conjugate gradient, run to a tiny ``cg_tol`` with
    ``cg_max_iter`` ≥ n, converges to the same direction.
    """

    def __init__(self, params: Any, lr: float | Tensor = 1.0, damping: float = 1e-4) -> None:
        super().__init__(params, {"lr": lr, "damping": damping})

    def step(self, closure: Any) -> Tensor:  # type: ignore[override]
        """θ ← θ − γ (H + λI)⁻¹ g at the closure's loss; returns that loss."""
        group = self.param_groups[0]
        params = group["params"]
        with torch.enable_grad():
            loss = closure()
            grads = torch.autograd.grad(loss, params, create_graph=True)
            g = torch.cat([grad.reshape(-1) for grad in grads])
            rows = [
                torch.cat(
                    [
                        part.reshape(-1)
                        for part in torch.autograd.grad(gi, params, retain_graph=True)
                    ]
                )
                for gi in g
            ]
        hessian = torch.stack(rows) + group["damping"] * torch.eye(len(g), dtype=g.dtype)
        direction = torch.linalg.solve(hessian, -g.detach())
        lr = float(group["lr"])
        with torch.no_grad():
            for p, d in zip(params, direction.split([p.numel() for p in params]), strict=True):
                p.add_(d.view_as(p), alpha=lr)
        return loss


def converged_cg_reference(
    params: Any,
    lr: float | Tensor = 1.0,
    damping: float = 1e-3,
    cg_max_iter: int = 50,
    cg_tol: float = 1e-5,
) -> DampedNewtonReference:
    """HessianFree's reference: CG on (H + λI)·d = −g run to convergence is the damped Newton
    step, so its configurations use cg_tol ≈ 0 and cg_max_iter ≥ n (the CG settings select
    nothing in the reference)."""
    return DampedNewtonReference(params, lr, damping)


_NEGATIVE = -0.1
_COMMON_INVALID = [
    {"lr": -1.0},
    {"lr": torch.tensor([0.1, 0.2])},
    {"weight_decay": _NEGATIVE},
]

OPTIMIZERS = [
    OptimizerInfo(
        optim.SGD,
        torch.optim.SGD,
        axes={
            "lr": [0.05],
            "momentum": [0.0, 0.9],
            "dampening": [0.0, 0.3],
            "nesterov": [False, True],
            "weight_decay": [0.0, 0.1],
            "maximize": [False, True],
        },
        rich={"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
        invalid=[
            *_COMMON_INVALID,
            {"momentum": _NEGATIVE},
            {"nesterov": True},
            {"nesterov": True, "momentum": 0.9, "dampening": 0.1},
        ],
        flags=("foreach", "differentiable", "fused"),
        usual={"lr": 0.1, "momentum": 0.9},
    ),
    OptimizerInfo(
        optim.Adam,
        torch.optim.Adam,
        axes={
            "lr": [0.01],
            "amsgrad": [False, True],
            "weight_decay": [0.0, 0.1],
            "maximize": [False, True],
            "decoupled_weight_decay": [False, True],
        },
        rich={"lr": 0.01, "amsgrad": True, "weight_decay": 0.1},
        invalid=[
            *_COMMON_INVALID,
            {"eps": _NEGATIVE},
            {"betas": (1.0, 0.999)},
            {"betas": (_NEGATIVE, 0.999)},
            {"betas": (0.9, 1.0)},
            {"betas": (torch.tensor(0.9), 0.999)},
            {"betas": (torch.tensor(0.9), torch.tensor(0.999)), "foreach": True},
            {"lr": torch.tensor(0.01), "foreach": True},
        ],
        flags=("foreach", "capturable", "differentiable", "fused"),
        usual={"lr": 1e-2},
    ),
    OptimizerInfo(
        optim.AdamW,
        torch.optim.AdamW,
        axes={
            "lr": [0.01],
            "amsgrad": [False, True],
            "weight_decay": [0.0, 0.1],
            "maximize": [False, True],
        },
        rich={"lr": 0.01, "amsgrad": True},
        invalid=[*_COMMON_INVALID, {"eps": _NEGATIVE}, {"betas": (0.9, 1.5)}],
        flags=("foreach", "capturable", "differentiable", "fused"),
        usual={"lr": 1e-2},
    ),
    OptimizerInfo(
        optim.Adagrad,
        torch.optim.Adagrad,
        axes={
            "lr": [0.05],
            "lr_decay": [0.0, 0.1],
            "weight_decay": [0.0, 0.1],
            "initial_accumulator_value": [0.0, 0.5],
            "maximize": [False, True],
        },
        rich={"lr": 0.05, "lr_decay": 0.01, "initial_accumulator_value": 0.1},
        invalid=[
            *_COMMON_INVALID,
            {"lr_decay": _NEGATIVE},
            {"initial_accumulator_value": _NEGATIVE},
            {"eps": _NEGATIVE},
        ],
        flags=("foreach", "differentiable", "fused"),
        usual={"lr": 0.1},
    ),
    OptimizerInfo(
        optim.Adadelta,
        torch.optim.Adadelta,
        axes={
            "rho": [0.9, 0.5],
            "weight_decay": [0.0, 0.1],
            "maximize": [False, True],
        },
        rich={"lr": 1.0, "weight_decay": 0.01},
        invalid=[
            *_COMMON_INVALID,
            {"rho": 1.1},
            {"rho": _NEGATIVE},
            {"eps": _NEGATIVE},
        ],
        flags=("foreach", "capturable", "differentiable"),
        usual={"lr": 1.0},
    ),
    OptimizerInfo(
        optim.RMSprop,
        torch.optim.RMSprop,
        axes={
            "lr": [0.01],
            "momentum": [0.0, 0.9],
            "centered": [False, True],
            "weight_decay": [0.0, 0.1],
            "maximize": [False, True],
        },
        rich={"lr": 0.01, "momentum": 0.9, "centered": True},
        invalid=[
            *_COMMON_INVALID,
            {"eps": _NEGATIVE},
            {"momentum": _NEGATIVE},
            {"alpha": _NEGATIVE},
        ],
        flags=("foreach", "capturable", "differentiable"),
        usual={"lr": 1e-2},
    ),
    OptimizerInfo(
        optim.LBFGS,
        torch.optim.LBFGS,
        axes={"history_size": [100, 2], "line_search_fn": [None, "strong_wolfe"]},
        rich={"lr": 1.0, "line_search_fn": "strong_wolfe"},
        invalid=[{"lr": -1.0}, {"lr": torch.tensor([1.0, 2.0])}],
        usual={"line_search_fn": "strong_wolfe"},
        budget=5,
    ),
    # The dense Hessian of the digits MLP (2 442 parameters) is too costly for the convergence
    # test: tests/test_optim_second_order.py checks Newton against known optima instead.
    OptimizerInfo(
        optim.Newton,
        DampedNewtonReference,
        axes={"lr": [1.0, 0.5], "damping": [0.0, 1e-4, 0.5]},
        rich={"lr": 1.0, "damping": 1e-4},
        usual=None,
    ),
    OptimizerInfo(
        optim.HessianFree,
        converged_cg_reference,
        axes={"lr": [1.0, 0.5], "damping": [1e-3, 0.5], "cg_max_iter": [100], "cg_tol": [1e-14]},
        rich={"lr": 1.0, "damping": 1e-3, "cg_max_iter": 100, "cg_tol": 1e-14},
        usual={"damping": 1e-2, "cg_max_iter": 20, "line_search_fn": "backtracking"},
        budget=10,
    ),
]
