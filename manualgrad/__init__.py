"""manualgrad: PyTorch layers, losses and optimizers with backward passes derived by hand.

Public surface: :mod:`manualgrad.nn`, :mod:`manualgrad.optim`, :mod:`manualgrad.functional`,
:func:`check_function`, :func:`convert` and :func:`compile`.
"""

from __future__ import annotations

from importlib import import_module

from manualgrad import functional, nn
from manualgrad.gradcheck import check_function

__version__ = "0.1.0"

_LAZY = {
    "optim": "manualgrad.optim",
    "convert": "manualgrad.convert",
    "compile": "manualgrad.compile",
}


def __getattr__(name: str) -> object:
    """Import ``optim``, ``convert`` and ``compile`` on first use (they sit above nn in the
    dependency order)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'manualgrad' has no attribute {name!r}")
    module = import_module(_LAZY[name])
    value = module if name == "optim" else getattr(module, name)
    globals()[name] = value
    return value


__all__ = ["__version__", "check_function", "compile", "convert", "functional", "nn", "optim"]
