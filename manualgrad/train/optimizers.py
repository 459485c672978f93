"""``--optimizer`` and ``--scheduler``: any optimizer in :mod:`manualgrad.optim`, by lower-case
class name, with the shared options (``--lr --momentum --nesterov --betas --weight-decay``)
passed to those whose constructor takes them. Without ``--lr`` an optimizer runs at its class's
``default_lr``; whether its closure must call ``backward()`` and how often a step calls it are
its ``second_order`` and ``closure_evaluations`` (:class:`manualgrad.optim._base.Traits`): this
module keeps no table of optimizers, so a new class in :mod:`manualgrad.optim` is a choice.

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


def optimizer_names() -> list[str]:
    """The ``--optimizer`` choices: every optimizer of :mod:`manualgrad.optim`, lower-case."""
    return sorted(available())


def optimizer_class(name: str) -> type[torch.optim.Optimizer]:
    """The class of ``--optimizer name``; ``ValueError`` naming the choices for an unknown one.
    Its traits (``default_lr``, ``second_order``, ``closure_evaluations``) are documented on
    :class:`manualgrad.optim._base.Traits`."""
    choices = available()
    if name not in choices:
        raise ValueError(f"unknown --optimizer {name!r} (choose from {', '.join(sorted(choices))})")
    return choices[name]


def optimizer_kwargs(name: str, lr: float | None = None, **options: Any) -> dict[str, Any]:
    """Keyword arguments for ``optimizer_class(name)``: ``lr`` (the class's ``default_lr`` when
    None), each of the shared options (``momentum``, ``nesterov``, ``betas``, ``weight_decay``)
    its constructor takes, and any other option as given. ``ValueError`` for an unknown name or
    a shared option it does not take that differs from the default."""
    cls = optimizer_class(name)
    accepted = inspect.signature(cls).parameters
    kwargs = {"lr": cls.default_lr if lr is None else lr} if "lr" in accepted else {}
    for option, default in _SHARED.items():
        value = options.get(option, default)
        if option in accepted:
            kwargs[option] = value
        elif value != default:
            flag = "--" + option.replace("_", "-")
            raise ValueError(f"{flag} is not an option of --optimizer {name}")
    kwargs.update((option, value) for option, value in options.items() if option not in _SHARED)
    return kwargs


def make_optimizer(
    name: str, params: Iterable[Tensor], lr: float | None = None, **options: Any
) -> torch.optim.Optimizer:
    """``--optimizer name`` over ``params``, with the kwargs of :func:`optimizer_kwargs`."""
    return optimizer_class(name)(params, **optimizer_kwargs(name, lr, **options))


def _shared_options(config: TrainConfig) -> dict[str, Any]:
    return {option: getattr(config, option) for option in _SHARED}


def resolved_lr(config: TrainConfig) -> float:
    """``--lr``, or the chosen optimizer's ``default_lr``."""
    return config.lr if config.lr is not None else optimizer_class(config.optimizer).default_lr


def optimizer_spec(config: TrainConfig) -> tuple[type[torch.optim.Optimizer], dict[str, Any]]:
    """The class named by ``config.optimizer`` and its keyword arguments; ``ValueError`` for an
    unknown name or an option it does not take (checked before any data is loaded)."""
    kwargs = optimizer_kwargs(config.optimizer, config.lr, **_shared_options(config))
    return optimizer_class(config.optimizer), kwargs


def build_optimizer(config: TrainConfig, params: Iterable[Tensor]) -> torch.optim.Optimizer:
    """The optimizer of :func:`optimizer_spec` over ``params``."""
    return make_optimizer(config.optimizer, params, config.lr, **_shared_options(config))


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
