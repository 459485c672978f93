"""Fused layers: ``LinearReLU``, ``LinearGELU`` (a Linear with its activation in one Function)
and ``LinearCrossEntropyLoss`` (a classifier head's cross-entropy without its logits)."""

from __future__ import annotations

import torch
from torch import Tensor

from manualgrad import functional as F
from manualgrad.nn.modules.linear import Linear


class LinearReLU(Linear):
    """relu(x Wᵀ + b) through :class:`manualgrad.functional.LinearReLUFunction` (saves a bool
    mask instead of the float activation). A :class:`Linear`: same constructor, init, repr and
    ``weight``/``bias`` state_dict keys, so a ``torch.nn.Linear`` checkpoint loads unchanged."""

    def forward(self, input: Tensor) -> Tensor:
        """Apply the affine map and ReLU."""
        return F.linear_relu(input, self.weight, self.bias)


class LinearGELU(Linear):
    """gelu(x Wᵀ + b) through :class:`manualgrad.functional.LinearGELUFunction` (recomputes the
    pre-activation in backward instead of saving it). ``approximate`` is GELU's ('none' or
    'tanh'); otherwise a :class:`Linear` (same init and state_dict keys)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        approximate: str = "none",
    ) -> None:
        super().__init__(in_features, out_features, bias, device, dtype)
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        """Apply the affine map and GELU."""
        return F.linear_gelu(input, self.weight, self.bias, self.approximate)

    def extra_repr(self) -> str:
        """Linear's fields plus ``approximate``."""
        return f"{super().extra_repr()}, approximate={self.approximate!r}"


class LinearCrossEntropyLoss(torch.nn.Module):
    """``cross_entropy(linear(input, weight, bias), target)`` through
    :class:`manualgrad.functional.LinearCrossEntropyFunction`: the (N, V) logits are never
    materialised. Holds no parameters: the head's ``weight`` (often tied to an embedding) and
    ``bias`` are arguments of ``forward``, as in Liger-Kernel's fused loss.
    """

    def __init__(
        self,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
        chunk_size: int | None = None,
    ) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.label_smoothing = label_smoothing
        self.chunk_size = chunk_size

    def forward(
        self, input: Tensor, weight: Tensor, target: Tensor, bias: Tensor | None = None
    ) -> Tensor:
        """Loss of ``input`` (N, H) through the head ``weight`` (V, H) against ``target`` (N,)."""
        return F.linear_cross_entropy(
            input,
            weight,
            target,
            bias,
            self.ignore_index,
            self.reduction,
            self.label_smoothing,
            self.chunk_size,
        )

    def extra_repr(self) -> str:
        """The options that differ from torch.nn.CrossEntropyLoss's."""
        return (
            f"ignore_index={self.ignore_index}, reduction={self.reduction!r}, "
            f"label_smoothing={self.label_smoothing}, chunk_size={self.chunk_size}"
        )


__all__ = ["LinearCrossEntropyLoss", "LinearGELU", "LinearReLU"]
