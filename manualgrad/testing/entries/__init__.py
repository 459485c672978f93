"""The registry's entries, one module per family, collected into :data:`OPS` and :data:`MODULES`
(as torch's ``opinfo/definitions/__init__.py`` collects its ``op_db``).

Each family module defines ``OPS: list[OpInfo]`` and, if the family has modules,
``MODULES: list[ModuleInfo]``, from the types in :mod:`manualgrad.testing.registry`. Adding a
family = a new ``entries/<family>.py`` and its name, one line, in :data:`FAMILIES` below. The
optimizers' entries (:data:`OPTIMIZERS`) live in :mod:`manualgrad.testing.entries.optimizers`.
"""

from __future__ import annotations

from importlib import import_module

from manualgrad.testing.entries.optimizers import OPTIMIZERS
from manualgrad.testing.registry import ModuleInfo, OpInfo

FAMILIES = (
    "linear",
    "activations",
    "dropout",
    "embedding",
    "attention",
    "transformer",
    "losses",
    "conv",
    "pooling",
    "normalization",
    "fused",
    "penalties",
    "masking",
    "arithmetic",
    "reductions",
    "products",
    "indexing",
    "layers",
)

_modules = [import_module(f"{__name__}.{family}") for family in FAMILIES]
OPS: list[OpInfo] = [op for module in _modules for op in module.OPS]
MODULES: list[ModuleInfo] = [info for module in _modules for info in getattr(module, "MODULES", [])]

__all__ = ["FAMILIES", "MODULES", "OPS", "OPTIMIZERS"]
