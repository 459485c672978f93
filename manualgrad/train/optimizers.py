"""``--optimizer`` and ``--scheduler``: any optimizer in :mod:`manualgrad.optim`, by lower-case
class name, with the shared options (``--lr --momentum --nesterov --betas --weight-decay``)
passed to those whose constructor takes them.

An option the chosen optimizer does not take is an error only when it differs from its default
(``--momentum 0.9`` with Adam is rejected; leaving ``--momentum`` alone is fine).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from manualgrad.train.config import TrainConfig

# Learning rate used when --lr is not given (a sensible first try for each method).
DEFAULT_LR = {
    "sgd": 0.05,
    "adam": 3e-3,
    "adamw": 3e-3,
    "adagrad": 0.05,
    "adadelta": 1.0,
    "rmsprop": 1e-3,
    "lbfgs": 1.0,
    "newton": 1.0,
    "hessianfree": 1.0,
}
# Optimizers whose step evaluates the closure several times (line search, curvature).
MULTI_EVAL = ("lbfgs", "newton", "hessianfree")
# Second-order optimizers differentiate the closure's loss themselves (twice, for H·v products):
# their closure returns the loss without calling backward().
SECOND_ORDER = ("newton", "hessianfree")
_SHARED = {
    "momentum": 0.0,
    "nesterov": False,
    "betas": (0.9, 0.999),
    "weight_decay": 0.0,
}


def available() -> dict[str, type[torch.optim.Optimizer]]:
    """``{lower-case name: class}`` for every optimizer exported by :mod:`manualgrad.optim`."""
    import manualgrad.optim as optim

    names = getattr(optim, "__all__", dir(optim))
    classes = {name: getattr(optim, name) for name in names}
    return {
        name.lower(): cls
        for name, cls in classes.items()
        if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)
    }


def resolved_lr(config: TrainConfig) -> float:
    """``--lr``, or the optimizer's entry in :data:`DEFAULT_LR`."""
    return config.lr if config.lr is not None else DEFAULT_LR.get(config.optimizer, 1e-3)


def optimizer_spec(config: TrainConfig) -> tuple[type[torch.optim.Optimizer], dict[str, Any]]:
    """The class named by ``config.optimizer`` and its keyword arguments; ``ValueError`` for an
    unknown name or an option it does not take (checked before any data is loaded)."""
    choices = available()
    if config.optimizer not in choices:
        raise ValueError(
            f"unknown --optimizer {config.optimizer!r} (choose from {', '.join(sorted(choices))})"
        )
    cls = choices[config.optimizer]
    accepted = inspect.signature(cls).parameters
    kwargs = {"lr": resolved_lr(config)} if "lr" in accepted else {}
    for name, default in _SHARED.items():
        value = getattr(config, name)
        if name in accepted:
            kwargs[name] = value
        elif value != default:
            option = "--" + name.replace("_", "-")
            raise ValueError(f"{option} is not an option of --optimizer {config.optimizer}")
    return cls, kwargs


def build_optimizer(config: TrainConfig, params: Iterable[Tensor]) -> torch.optim.Optimizer:
    """The optimizer of :func:`optimizer_spec` over ``params``."""
    cls, kwargs = optimizer_spec(config)
    return cls(params, **kwargs)


def build_scheduler(
    config: TrainConfig, optimizer: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-epoch learning-rate factor, a closed-form function of the epoch e and E = ``--epochs``
    (so a resumed run with a different ``--epochs`` follows the new schedule from where it is):

    - ``none``   1;
    - ``cosine`` ½ (1 + cos(π e / E)), from 1 down to 0 at the last epoch;
    - ``step``   0.1^⌊e / ⌈E/3⌉⌋, a tenth after each third of the run.
    """
    total = config.epochs
    factors = {
        "none": lambda e: 1.0,
        "cosine": lambda e: 0.5 * (1.0 + math.cos(math.pi * min(e, total) / total)),
        "step": lambda e: 0.1 ** (e // math.ceil(total / 3)),
    }
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factors[config.scheduler])
