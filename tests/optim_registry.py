"""The optimizer registry driving the generic optimizer tests (GUIDE §4).

One :class:`OptimizerInfo` per first-order optimizer: manualgrad's class, torch's twin, a grid
of constructor kwargs (every flag on and off), a "rich" configuration that creates every state
key, the invalid kwargs torch rejects, and the compatibility flags torch accepts.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import torch

import manualgrad.optim as optim


def grid(**axes: list[Any]) -> list[dict[str, Any]]:
    """Every combination of the axes' values, as kwargs dicts."""
    names = list(axes)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*axes.values())]


def valid_for_torch(reference: type, kwargs: dict[str, Any]) -> bool:
    """Whether torch accepts the kwargs (the grid keeps only valid combinations)."""
    try:
        reference([torch.zeros(1, requires_grad=True)], **kwargs)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class OptimizerInfo:
    """A manualgrad optimizer, its torch twin and the kwargs to test them with."""

    ours: type[torch.optim.Optimizer]
    reference: type[torch.optim.Optimizer]
    axes: dict[str, list[Any]]
    rich: dict[str, Any]
    invalid: list[dict[str, Any]]
    flags: tuple[str, ...]
    usual: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.ours.__name__

    def configs(self) -> list[dict[str, Any]]:
        """The kwargs grid (torch-valid combinations), plus the rich config with a tensor lr."""
        combos = [kw for kw in grid(**self.axes) if valid_for_torch(self.reference, kw)]
        tensor_lr = dict(self.rich, lr=torch.tensor(self.rich.get("lr", 0.01)))
        return [*combos, tensor_lr]


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
]


def config_id(kwargs: dict[str, Any]) -> str:
    """A short test id for a kwargs dict."""
    parts = []
    for key, value in kwargs.items():
        if isinstance(value, torch.Tensor):
            value = "tensor"
        parts.append(f"{key}={value}")
    return ",".join(parts) or "defaults"


def cases() -> list[tuple[OptimizerInfo, dict[str, Any]]]:
    """(info, kwargs) for every optimizer and every configuration of its grid."""
    return [(info, kwargs) for info in OPTIMIZERS for kwargs in info.configs()]


SHAPES = [(), (7,), (4, 5), (2, 3, 4)]


def make_params(dtype: torch.dtype, seed: int = 0) -> list[torch.Tensor]:
    """Leaf parameters of every shape in :data:`SHAPES`."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen, dtype=dtype).requires_grad_() for shape in SHAPES]


def clone_params(params: list[torch.Tensor]) -> list[torch.Tensor]:
    """Independent leaf copies of ``params``."""
    return [p.detach().clone().requires_grad_() for p in params]


def set_random_grads(params_lists: list[list[torch.Tensor]], gen: torch.Generator) -> None:
    """Give the i-th parameter of every list the same fresh random gradient."""
    for group in zip(*params_lists, strict=True):
        grad = torch.randn(group[0].shape, generator=gen, dtype=group[0].dtype)
        for p in group:
            p.grad = grad.clone()


def step_together(
    optimizers: list[torch.optim.Optimizer],
    params_lists: list[list[torch.Tensor]],
    gen: torch.Generator,
    steps: int,
) -> None:
    """``steps`` times: fresh shared random gradients (:func:`set_random_grads`), then one step
    of every optimizer, in order."""
    for _ in range(steps):
        set_random_grads(params_lists, gen)
        for optimizer in optimizers:
            optimizer.step()


def assert_tensors_close(ours: torch.Tensor, theirs: torch.Tensor, tol: float) -> None:
    """max |ours − theirs| ≤ tol · max(1, max |theirs|)."""
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    if theirs.numel() == 0:
        return
    scale = max(1.0, theirs.detach().abs().max().item())
    error = (ours.detach() - theirs.detach()).abs().max().item()
    assert error <= tol * scale, f"max abs error {error:.3e} > {tol:.0e} · {scale:.3g}"


TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-6}


def assert_states_close(ours: torch.optim.Optimizer, theirs: torch.optim.Optimizer, tol: float):
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
