"""Pooling modules: torch.nn's classes (arguments, ``extra_repr``) with manualgrad's pooling
Functions in ``forward``. The 1-d and 2-d classes of one kind share their ``forward`` (a mixin
naming the functional op), since torch's classes hold the same attributes."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor

from manualgrad import functional as F


class _MaxPool:
    """``forward`` of the max pools: ``_pool`` applied with the module's attributes."""

    _pool: ClassVar[Callable[..., Tensor | tuple[Tensor, Tensor]]]

    def forward(self, input: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        """Pool; also return the argmax indices if ``return_indices``."""
        return type(self)._pool(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            ceil_mode=self.ceil_mode,
            return_indices=self.return_indices,
        )


class MaxPool1d(_MaxPool, torch.nn.MaxPool1d):
    """1-d max pooling through :func:`manualgrad.functional.max_pool1d`."""

    _pool = F.max_pool1d


class MaxPool2d(_MaxPool, torch.nn.MaxPool2d):
    """2-d max pooling through :class:`manualgrad.functional.MaxPool2dFunction`."""

    _pool = F.max_pool2d


class AvgPool1d(torch.nn.AvgPool1d):
    """1-d average pooling through :func:`manualgrad.functional.avg_pool1d`."""

    def forward(self, input: Tensor) -> Tensor:
        """Pool."""
        return F.avg_pool1d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
        )


class AvgPool2d(torch.nn.AvgPool2d):
    """2-d average pooling through :class:`manualgrad.functional.AvgPool2dFunction`."""

    def forward(self, input: Tensor) -> Tensor:
        """Pool."""
        return F.avg_pool2d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )


class _AdaptivePool:
    """``forward`` of the adaptive pools: ``_pool`` applied to ``output_size``."""

    _pool: ClassVar[Callable[..., Tensor]]

    def forward(self, input: Tensor) -> Tensor:
        """Pool to ``output_size``."""
        return type(self)._pool(input, self.output_size)


class AdaptiveAvgPool1d(_AdaptivePool, torch.nn.AdaptiveAvgPool1d):
    """Adaptive 1-d average pooling through :func:`manualgrad.functional.adaptive_avg_pool1d`."""

    _pool = F.adaptive_avg_pool1d


class AdaptiveAvgPool2d(_AdaptivePool, torch.nn.AdaptiveAvgPool2d):
    """Adaptive 2-d average pooling through
    :class:`manualgrad.functional.AdaptiveAvgPool2dFunction`."""

    _pool = F.adaptive_avg_pool2d


class _AdaptiveMaxPool:
    """``forward`` of the adaptive max pools: ``_pool`` to ``output_size``."""

    _pool: ClassVar[Callable[..., Tensor | tuple[Tensor, Tensor]]]

    def forward(self, input: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        """Pool to ``output_size``; also return the argmax indices if ``return_indices``."""
        return type(self)._pool(input, self.output_size, self.return_indices)


class AdaptiveMaxPool1d(_AdaptiveMaxPool, torch.nn.AdaptiveMaxPool1d):
    """Adaptive 1-d max pooling through :func:`manualgrad.functional.adaptive_max_pool1d`."""

    _pool = F.adaptive_max_pool1d


class AdaptiveMaxPool2d(_AdaptiveMaxPool, torch.nn.AdaptiveMaxPool2d):
    """Adaptive 2-d max pooling through
    :class:`manualgrad.functional.AdaptiveMaxPool2dFunction`."""

    _pool = F.adaptive_max_pool2d


__all__ = [
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "MaxPool1d",
    "MaxPool2d",
]
