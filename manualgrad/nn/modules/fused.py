"""Fused layers: ``LinearReLU``, ``LinearGELU`` (a Linear with its activation in one Function)
and ``LinearCrossEntropyLoss`` (torch's classifier head + cross-entropy, without its logits)."""

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


class LinearCrossEntropyLoss(torch.nn.LinearCrossEntropyLoss):
    """torch's ``LinearCrossEntropyLoss`` (same constructor, ``linear`` head parameters,
    ``weight`` buffer, repr and state_dict keys, so a torch checkpoint loads unchanged) through
    :func:`manualgrad.functional.linear_cross_entropy`: the (N, V) logits are never
    materialised."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Loss of ``input`` (N, in_features) through the head against ``target``."""
        shape = (self.num_classes, *self.out_features)
        linear_weight = self.linear.weight.reshape(*shape, self.linear.in_features)
        linear_bias = self.linear.bias
        if linear_bias is not None:
            linear_bias = linear_bias.reshape(shape)
        return F.linear_cross_entropy(
            input,
            linear_weight,
            target,
            linear_bias=linear_bias,
            weight=self.weight,
            reduction=self.reduction,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
            options=self.options,
        )


__all__ = ["LinearCrossEntropyLoss", "LinearGELU", "LinearReLU"]
