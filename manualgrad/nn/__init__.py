"""torch.nn-compatible modules whose layers run manualgrad's hand-derived Functions.

``import manualgrad.nn as nn`` works in existing model code: the layers manualgrad implements
come from here, and torch's containers and parameter-free plumbing are re-exported unchanged.
"""

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
