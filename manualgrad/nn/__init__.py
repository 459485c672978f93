"""torch.nn-compatible modules whose layers run manualgrad's hand-derived Functions.

``import manualgrad.nn as nn`` works in existing model code: every name ``torch.nn`` has is here.
The layers manualgrad implements are its twins (``__all__``); torch's containers and
parameter-free plumbing are re-exported unchanged; any other ``torch.nn`` layer
(``nn.TransformerEncoderLayer``, ``nn.ConvTranspose2d``, ...) is a subclass of torch's, of the
same name, whose ``forward`` runs inside :func:`manualgrad.hand_derived`, made on first access and
kept (so it pickles as ``manualgrad.nn.<name>``); non-module names (``nn.utils``,
``nn.Buffer``, ...) are torch's own. Those subclasses are not in ``__all__``, so
``convert`` does not take them for twins.
"""

from typing import Any

import torch
from torch.nn import (
    Flatten,
    Identity,
    Module,
    ModuleDict,
    ModuleList,
    Parameter,
    ParameterDict,
    ParameterList,
    Sequential,
    Unflatten,
)

import manualgrad.nn.modules as _modules
from manualgrad.nn import functional, init
from manualgrad.nn.modules import *  # noqa: F403

__all__ = [
    "Flatten",
    "Identity",
    "Module",
    "ModuleDict",
    "ModuleList",
    "Parameter",
    "ParameterDict",
    "ParameterList",
    "Sequential",
    "Unflatten",
    "functional",
    "init",
    *_modules.__all__,
]

_PLUMBING = frozenset(
    {
        torch.nn.Container,
        Flatten,
        Identity,
        Module,
        ModuleDict,
        ModuleList,
        ParameterDict,
        ParameterList,
        Sequential,
        Unflatten,
    }
)


def __getattr__(name: str) -> Any:
    """``manualgrad.nn.X`` for a ``torch.nn.X`` without a twin (see the module docstring)."""
    from manualgrad.interception import in_mode

    if name.startswith("__") or not hasattr(torch.nn, name):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(torch.nn, name)
    if isinstance(value, type) and issubclass(value, torch.nn.Module) and value not in _PLUMBING:
        value = in_mode(value, __name__)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Every public name of torch.nn and of this package."""
    return sorted({*globals(), *(name for name in dir(torch.nn) if not name.startswith("_"))})
