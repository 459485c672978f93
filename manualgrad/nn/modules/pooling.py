"""Pooling modules: torch.nn's classes (arguments, ``extra_repr``) with manualgrad's pooling
Functions in ``forward``."""

from __future__ import annotations

import torch
from torch import Tensor

from manualgrad import functional as F


class MaxPool2d(torch.nn.MaxPool2d):
    """2-d max pooling through :class:`manualgrad.functional.MaxPool2dFunction`."""

    def forward(self, input: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        """Pool; also return the flat argmax indices if ``return_indices``."""
        return F.max_pool2d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            ceil_mode=self.ceil_mode,
            return_indices=self.return_indices,
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


class AdaptiveAvgPool2d(torch.nn.AdaptiveAvgPool2d):
    """Adaptive 2-d average pooling through
    :class:`manualgrad.functional.AdaptiveAvgPool2dFunction`."""

    def forward(self, input: Tensor) -> Tensor:
        """Pool to ``output_size``."""
        return F.adaptive_avg_pool2d(input, self.output_size)


__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "MaxPool2d"]
