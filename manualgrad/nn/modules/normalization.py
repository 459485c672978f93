"""Normalisation modules: torch.nn's classes (constructor, buffers, ``extra_repr``, state_dict)
with manualgrad's normalisation Functions in ``forward``."""

from __future__ import annotations

import torch
from torch import Tensor

from manualgrad import functional as F


class _BatchNorm:
    """torch's ``_BatchNorm.forward`` bookkeeping around :func:`manualgrad.functional.batch_norm`.

    In training with ``track_running_stats``, ``num_batches_tracked`` grows by one per call and
    the running stats move by ``momentum`` (``momentum=None``: by 1/num_batches_tracked, the
    cumulative average). Batch statistics normalise in training, and in eval when there are no
    running stats; the running stats otherwise.
    """

    def forward(self, input: Tensor) -> Tensor:
        """Normalise ``input`` per channel (dim 1)."""
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        track = not self.training or self.track_running_stats
        return F.batch_norm(
            input,
            self.running_mean if track else None,
            self.running_var if track else None,
            self.weight,
            self.bias,
            use_batch_stats,
            factor,
            self.eps,
        )


class BatchNorm1d(_BatchNorm, torch.nn.BatchNorm1d):
    """Batch norm over (N, C) or (N, C, L) through
    :class:`manualgrad.functional.BatchNormFunction`."""


class BatchNorm2d(_BatchNorm, torch.nn.BatchNorm2d):
    """Batch norm over (N, C, H, W) through :class:`manualgrad.functional.BatchNormFunction`."""


class LayerNorm(torch.nn.LayerNorm):
    """Layer norm through :class:`manualgrad.functional.LayerNormFunction`."""

    def forward(self, input: Tensor) -> Tensor:
        """Normalise over the trailing ``normalized_shape`` dims."""
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)


class RMSNorm(torch.nn.RMSNorm):
    """RMS norm through :class:`manualgrad.functional.RMSNormFunction`."""

    def forward(self, x: Tensor) -> Tensor:
        """Normalise over the trailing ``normalized_shape`` dims."""
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)


class GroupNorm(torch.nn.GroupNorm):
    """Group norm through :class:`manualgrad.functional.GroupNormFunction`."""

    def forward(self, input: Tensor) -> Tensor:
        """Normalise each group of channels of each sample."""
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)


__all__ = ["BatchNorm1d", "BatchNorm2d", "GroupNorm", "LayerNorm", "RMSNorm"]
