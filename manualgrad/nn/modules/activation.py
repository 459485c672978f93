"""Activation modules: torch.nn's classes (signatures, ``extra_repr``, parameters) with
manualgrad's hand-derived Functions in ``forward``."""

from __future__ import annotations

import torch
from torch import Tensor

from manualgrad import functional as F


class ReLU(torch.nn.ReLU):
    """max(x, 0) through :class:`manualgrad.functional.ReLUFunction` (``inplace`` is kept for
    compatibility; the result is always a new tensor)."""

    def forward(self, input: Tensor) -> Tensor:
        """Apply ReLU."""
        return F.relu(input)


__all__ = ["ReLU"]
