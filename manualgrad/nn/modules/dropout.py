"""``Dropout``: torch.nn.Dropout's constructor and repr; manualgrad's masked-scaling backward."""

from __future__ import annotations

import torch
from torch import Tensor

from manualgrad import functional as F


class Dropout(torch.nn.Dropout):
    """Zero elements with probability ``p`` while training, through
    :class:`manualgrad.functional.DropoutFunction` (saves a bool mask; identity in eval mode).
    ``inplace`` is kept for compatibility; the result is always a new tensor."""

    def forward(self, input: Tensor) -> Tensor:
        """Apply dropout (same random mask as torch for the same seed)."""
        return F.dropout(input, self.p, self.training, self.inplace)


__all__ = ["Dropout"]
