"""Dropout modules: torch.nn's classes (constructor, repr) with manualgrad's masked-scaling
backward. They share one ``forward`` (a mixin naming the functional op): torch's classes all
hold ``p`` and ``inplace``."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor

from manualgrad import functional as F


class _Dropout:
    """``forward`` of the dropout modules: ``_drop`` with the module's ``p``, training flag and
    ``inplace`` (kept for compatibility; the result is always a new tensor)."""

    _drop: ClassVar[Callable[..., Tensor]]

    def forward(self, input: Tensor) -> Tensor:
        """Apply dropout (same random mask as torch for the same seed; identity in eval mode)."""
        return type(self)._drop(input, self.p, self.training, self.inplace)


class Dropout(_Dropout, torch.nn.Dropout):
    """Zero elements with probability ``p`` while training, through
    :class:`manualgrad.functional.DropoutFunction` (saves a bool mask)."""

    _drop = F.dropout


class Dropout1d(_Dropout, torch.nn.Dropout1d):
    """Zero whole channels of (N, C, L) inputs, through :func:`manualgrad.functional.dropout1d`."""

    _drop = F.dropout1d


class Dropout2d(_Dropout, torch.nn.Dropout2d):
    """Zero whole channels of (N, C, H, W) inputs, through
    :func:`manualgrad.functional.dropout2d`."""

    _drop = F.dropout2d


class Dropout3d(_Dropout, torch.nn.Dropout3d):
    """Zero whole channels of (N, C, D, H, W) inputs, through
    :func:`manualgrad.functional.dropout3d`."""

    _drop = F.dropout3d


class AlphaDropout(_Dropout, torch.nn.AlphaDropout):
    """Alpha dropout (SELU networks), through
    :class:`manualgrad.functional.AlphaDropoutFunction`."""

    _drop = F.alpha_dropout


class FeatureAlphaDropout(_Dropout, torch.nn.FeatureAlphaDropout):
    """Channel-wise alpha dropout, through :func:`manualgrad.functional.feature_alpha_dropout`."""

    _drop = F.feature_alpha_dropout


__all__ = [
    "AlphaDropout",
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "FeatureAlphaDropout",
]
