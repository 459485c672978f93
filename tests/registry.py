"""The registry driving the generic tests (GUIDE §4); it lives in the package as
:mod:`manualgrad.testing.registry` so that ``manualgrad check`` can use it too."""

from manualgrad.testing.registry import *  # noqa: F403
from manualgrad.testing.registry import MODULES, OPS  # noqa: F401
