"""``Conv1d``/``Conv2d``: torch.nn's classes (constructor, init, ``extra_repr``, state_dict) with
manualgrad's hand-derived convolution backward."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from manualgrad import functional as F


def _require_zeros_padding(module: torch.nn.Module) -> None:
    if module.padding_mode != "zeros":
        raise NotImplementedError(
            f"{type(module).__name__}: padding_mode={module.padding_mode!r} is not supported by "
            "manualgrad (only padding_mode='zeros'); use torch.nn's layer for it"
        )


class _ZerosPaddedConv:
    """Shared body of :class:`Conv1d` and :class:`Conv2d`: torch's constructor (rejecting
    padding modes other than ``'zeros'``) and ``_conv_forward`` through the manualgrad op."""

    _convolution: Callable[..., Tensor]

    def __init__(self, *args: object, **kwargs: object) -> None:
        """Same arguments as the torch.nn twin."""
        super().__init__(*args, **kwargs)
        _require_zeros_padding(self)

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        _require_zeros_padding(self)
        return self._convolution(
            input, weight, bias, self.stride, self.padding, self.dilation, self.groups
        )


class Conv1d(_ZerosPaddedConv, torch.nn.Conv1d):
    """1-d convolution through :class:`manualgrad.functional.ConvolutionFunction`; a subclass of
    ``torch.nn.Conv1d`` (same parameters, init and state_dict keys)."""

    _convolution = staticmethod(F.conv1d)


class Conv2d(_ZerosPaddedConv, torch.nn.Conv2d):
    """2-d convolution through :class:`manualgrad.functional.ConvolutionFunction`; a subclass of
    ``torch.nn.Conv2d`` (same parameters, init and state_dict keys)."""

    _convolution = staticmethod(F.conv2d)


__all__ = ["Conv1d", "Conv2d"]
