"""Cache each Function's ``forward`` signature, once, at import.

``torch.autograd.Function.apply`` binds the call's arguments to ``forward``'s signature on every
call when ``setup_context`` is defined (to fill in defaults). ``inspect.signature`` recomputes that
signature each time unless the function carries ``__signature__``; setting it once halves the
Python overhead of a small op (measured: ReLU on 64×64, about 64 µs → 34 µs per call here).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from types import ModuleType

import torch


def cache_forward_signatures(modules: Iterable[ModuleType]) -> None:
    """Set ``forward.__signature__`` on every autograd.Function class defined in ``modules``."""
    for module in modules:
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, torch.autograd.Function)
                and value.__module__ == module.__name__
            ):
                forward = value.forward
                forward.__signature__ = inspect.signature(forward)
