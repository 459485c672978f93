"""``Embedding``: torch.nn.Embedding's parameters, init, state_dict and ``from_pretrained``;
manualgrad's index_add backward."""

from __future__ import annotations

import torch
from torch import Tensor

from manualgrad import functional as F


class Embedding(torch.nn.Embedding):
    """A lookup table through :class:`manualgrad.functional.EmbeddingFunction`.

    Subclasses ``torch.nn.Embedding``: constructor, ``reset_parameters`` (N(0, 1) with the padding
    row zeroed), ``extra_repr``, the ``weight`` parameter and ``from_pretrained`` (a classmethod,
    so ``Embedding.from_pretrained`` builds this class) are torch's own.
    """

    def forward(self, input: Tensor) -> Tensor:
        """Look up rows of ``weight`` (renormalising them in place first if ``max_norm``)."""
        return F.embedding(
            input,
            self.weight,
            self.padding_idx,
            self.max_norm,
            self.norm_type,
            self.scale_grad_by_freq,
            self.sparse,
        )


__all__ = ["Embedding"]
