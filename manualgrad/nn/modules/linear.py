"""``Linear``: torch.nn.Linear's parameters, init and state_dict; manualgrad's backward."""

from __future__ import annotations

import torch
from torch import Tensor

from manualgrad import functional as F


class Linear(torch.nn.Linear):
    """y = x Wᵀ + b through :class:`manualgrad.functional.LinearFunction`.

    Subclasses ``torch.nn.Linear`` so that constructor, ``reset_parameters`` (Kaiming-uniform
    with a = √5, as torch), ``extra_repr``, parameter names and ``state_dict`` keys are torch's
    own and ``isinstance(layer, torch.nn.Linear)`` stays true in existing code.
    """

    def forward(self, input: Tensor) -> Tensor:
        """Apply the affine map with the hand-derived backward."""
        return F.linear(input, self.weight, self.bias)


__all__ = ["Linear"]
