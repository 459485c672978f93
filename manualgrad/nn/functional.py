"""Alias of :mod:`manualgrad.functional`, so ``manualgrad.nn.functional as F`` works."""

from manualgrad.functional import *  # noqa: F403
from manualgrad.functional import __all__  # noqa: F401
