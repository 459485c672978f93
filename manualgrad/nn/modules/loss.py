"""Loss modules: torch.nn's classes (constructor, defaults, ``weight``/``pos_weight`` buffers,
legacy ``size_average``/``reduce``) with manualgrad's hand-derived losses in ``forward``.
``HingeLoss`` has no torch twin and is written on torch's ``_Loss`` base."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn.modules.loss import _Loss

from manualgrad import functional as F


class MSELoss(torch.nn.MSELoss):
    """Mean squared error through :class:`manualgrad.functional.MSELossFunction`."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Apply the loss."""
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(torch.nn.L1Loss):
    """Mean absolute error through :class:`manualgrad.functional.L1LossFunction`."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Apply the loss."""
        return F.l1_loss(input, target, reduction=self.reduction)


class HuberLoss(torch.nn.HuberLoss):
    """Huber loss through :class:`manualgrad.functional.HuberLossFunction`."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Apply the loss."""
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class HingeLoss(_Loss):
    """Binary hinge loss max(0, margin − target·input), targets in {−1, +1}, through
    :class:`manualgrad.functional.HingeLossFunction` (torch has no twin)."""

    def __init__(self, margin: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.margin = margin

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Apply the loss."""
        return F.hinge_loss(input, target, margin=self.margin, reduction=self.reduction)


class MultiMarginLoss(torch.nn.MultiMarginLoss):
    """Multi-class margin loss through :class:`manualgrad.functional.MultiMarginLossFunction`."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Apply the loss."""
        return F.multi_margin_loss(
            input,
            target,
            p=self.p,
            margin=self.margin,
            weight=self.weight,
            reduction=self.reduction,
        )


class CrossEntropyLoss(torch.nn.CrossEntropyLoss):
    """Cross-entropy (class indices or probabilities) through
    :class:`manualgrad.functional.CrossEntropyFunction` / ``CrossEntropyProbsFunction``."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Apply the loss."""
        return F.cross_entropy(
            input,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )


class NLLLoss(torch.nn.NLLLoss):
    """Negative log-likelihood through :class:`manualgrad.functional.NLLLossFunction`."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Apply the loss."""
        return F.nll_loss(
            input,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )


class BCEWithLogitsLoss(torch.nn.BCEWithLogitsLoss):
    """Binary cross-entropy on logits through
    :class:`manualgrad.functional.BCEWithLogitsFunction`."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Apply the loss."""
        return F.binary_cross_entropy_with_logits(
            input,
            target,
            self.weight,
            pos_weight=self.pos_weight,
            reduction=self.reduction,
        )


__all__ = [
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "HingeLoss",
    "HuberLoss",
    "L1Loss",
    "MSELoss",
    "MultiMarginLoss",
    "NLLLoss",
]
