"""Running optimizers side by side for the generic optimizer tests: parameters of several shapes,
shared random gradients or a shared smooth objective, and closeness of parameters and states.

The entries these run over are :data:`manualgrad.testing.entries.OPTIMIZERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from manualgrad.testing.entries import OPTIMIZERS
from manualgrad.testing.registry import OptimizerInfo

# The entries that step on gradients, compared with their reference on shared random gradients;
# those with a torch twin are also compared with it in signature, defaults and state dict.
ON_GRADS = [info for info in OPTIMIZERS if info.steps_on_grads]
TWINS_ON_GRADS = [info for info in ON_GRADS if info.torch_twin]
# The entries whose step evaluates a closure (line search, curvature): compared with their
# reference on :func:`convex_loss`.
ON_CLOSURES = [info for info in OPTIMIZERS if not info.steps_on_grads]
SHAPES = [(), (7,), (4, 5), (2, 3, 4)]
TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-6}


def config_id(kwargs: dict[str, Any]) -> str:
    """A short test id for a kwargs dict."""
    parts = []
    for key, value in kwargs.items():
        if isinstance(value, Tensor):
            value = "tensor"
        parts.append(f"{key}={value}")
    return ",".join(parts) or "defaults"


def cases(infos: list[OptimizerInfo]) -> list[tuple[OptimizerInfo, dict[str, Any]]]:
    """(info, kwargs) for every optimizer in ``infos`` and every configuration of its grid."""
    return [(info, kwargs) for info in infos for kwargs in info.configs()]


def make_params(dtype: torch.dtype, seed: int = 0) -> list[Tensor]:
    """Leaf parameters of every shape in :data:`SHAPES`."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen, dtype=dtype).requires_grad_() for shape in SHAPES]


def clone_params(params: list[Tensor]) -> list[Tensor]:
    """Independent leaf copies of ``params``."""
    return [p.detach().clone().requires_grad_() for p in params]


def set_random_grads(params_lists: list[list[Tensor]], gen: torch.Generator) -> None:
    """Give the i-th parameter of every list the same fresh random gradient."""
    for group in zip(*params_lists, strict=True):
        grad = torch.randn(group[0].shape, generator=gen, dtype=group[0].dtype)
        for p in group:
            p.grad = grad.clone()


def step_together(
    optimizers: list[Optimizer],
    params_lists: list[list[Tensor]],
    gen: torch.Generator,
    steps: int,
) -> None:
    """``steps`` times: fresh shared random gradients (:func:`set_random_grads`), then one step
    of every optimizer, in order."""
    for _ in range(steps):
        set_random_grads(params_lists, gen)
        for optimizer in optimizers:
            optimizer.step()


def convex_loss(params: list[Tensor]) -> Tensor:
    """f(x) = Σ softplus(xᵢ) + ½‖x‖² + ¼(Σ xᵢ)² over all entries x of ``params``: smooth, with a
    dense Hessian H ⪰ I (every step of a second-order method is well defined)."""
    x = torch.cat([p.reshape(-1) for p in params])
    return torch.nn.functional.softplus(x).sum() + 0.5 * (x * x).sum() + 0.25 * x.sum() ** 2


def closure_for(
    optimizer: Optimizer, second_order: bool, loss_fn: Callable[[], Tensor]
) -> Callable[[], Tensor]:
    """The closure ``optimizer.step`` takes: the loss alone for a second-order method (it
    differentiates the loss itself), else zero_grad + loss + backward."""
    if second_order:
        return loss_fn

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    return closure


def assert_tensors_close(ours: Tensor, theirs: Tensor, tol: float) -> None:
    """max |ours − theirs| ≤ tol · max(1, max |theirs|)."""
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    if theirs.numel() == 0:
        return
    scale = max(1.0, theirs.detach().abs().max().item())
    error = (ours.detach() - theirs.detach()).abs().max().item()
    assert error <= tol * scale, f"max abs error {error:.3e} > {tol:.0e} · {scale:.3g}"


def assert_states_close(ours: Optimizer, theirs: Optimizer, tol: float) -> None:
    """Same per-parameter state keys, equal steps, close tensors (in parameter order)."""
    ours_state = ours.state_dict()["state"]
    theirs_state = theirs.state_dict()["state"]
    assert ours_state.keys() == theirs_state.keys()
    for index, state in theirs_state.items():
        assert ours_state[index].keys() == state.keys()
        for key, value in state.items():
            mine = ours_state[index][key]
            if key == "step":
                assert torch.is_tensor(mine) and mine.dtype == value.dtype
                assert mine.device == value.device and mine.item() == value.item()
            else:
                assert_tensors_close(mine, value, tol)
