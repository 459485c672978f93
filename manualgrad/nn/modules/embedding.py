"""``Embedding`` and ``EmbeddingBag``: torch.nn's parameters, init, state_dict and
``from_pretrained``; manualgrad's index_add / scatter_add backwards."""

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


class EmbeddingBag(torch.nn.EmbeddingBag):
    """Bags of lookups reduced by sum, mean or max, through
    :class:`manualgrad.functional.EmbeddingBagFunction`.

    Subclasses ``torch.nn.EmbeddingBag``: constructor, ``reset_parameters``, ``extra_repr``, the
    ``weight`` parameter and ``from_pretrained`` (a classmethod, so
    ``EmbeddingBag.from_pretrained`` builds this class) are torch's own.
    """

    def forward(
        self,
        input: Tensor,
        offsets: Tensor | None = None,
        per_sample_weights: Tensor | None = None,
    ) -> Tensor:
        """Reduce the bags of ``input`` (2-d: one bag per row; 1-d: cut at ``offsets``)."""
        return F.embedding_bag(
            input,
            self.weight,
            offsets,
            self.max_norm,
            self.norm_type,
            self.scale_grad_by_freq,
            self.mode,
            self.sparse,
            per_sample_weights,
            self.include_last_offset,
            self.padding_idx,
        )


__all__ = ["Embedding", "EmbeddingBag"]
