"""manualgrad: PyTorch layers, losses and optimizers with backward passes derived by hand.

Public surface: :mod:`manualgrad.nn`, :mod:`manualgrad.optim`, :mod:`manualgrad.functional`,
:func:`check_function`, :func:`convert`, :func:`to_torch`, :func:`compile`,
:func:`hand_derived` and :func:`coverage`.

Every name is imported on first use (PEP 562), so ``import manualgrad`` does not import torch:
the ``manualgrad`` command parses its arguments (and answers ``--help`` or a typo) before torch
is loaded. ``import manualgrad.nn as nn`` and ``manualgrad.convert(model)`` work as usual.
"""

from __future__ import annotations

from importlib import import_module

__version__ = "0.1.0"

# public name -> (module, attribute of that module, or None for the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "functional": ("manualgrad.functional", None),
    "nn": ("manualgrad.nn", None),
    "optim": ("manualgrad.optim", None),
    "check_function": ("manualgrad.gradcheck", "check_function"),
    "convert": ("manualgrad.conversion", "convert"),
    "to_torch": ("manualgrad.conversion", "to_torch"),
    "compile": ("manualgrad.compilation", "compile"),
    "hand_derived": ("manualgrad.interception", "hand_derived"),
    "coverage": ("manualgrad.graph_coverage", "coverage"),
}


def __getattr__(name: str) -> object:
    """Import a public name of :data:`_LAZY` on first use and cache it in the package."""
    if name not in _LAZY:
        raise AttributeError(f"module 'manualgrad' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names, imported or not."""
    return sorted({*globals(), *_LAZY})


__all__ = ["__version__", *_LAZY]
