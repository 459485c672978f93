"""The registry driving the generic tests; it lives in the package (types in
:mod:`manualgrad.testing.registry`, entries in :mod:`manualgrad.testing.entries`) so that
``manualgrad check`` and the benchmarks can use it too."""

from manualgrad.testing.entries import MODULES, OPS, OPTIMIZERS  # noqa: F401
from manualgrad.testing.registry import *  # noqa: F403
