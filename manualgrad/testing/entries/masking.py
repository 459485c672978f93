"""Registry entries (see manualgrad.testing.registry): the pruning mask product behind
:mod:`manualgrad.prune` (masked_weight). The torch reference is ``orig * mask`` by autograd."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

import manualgrad.functional as F
from manualgrad.testing.registry import OpInfo, Sample, tensor


def _masked_weight_reference(orig: Tensor, mask: Tensor) -> Tensor:
    return orig * mask


def mask_like(*shape: int, dtype: torch.dtype) -> Tensor:
    """A 0/1 mask keeping about half the entries."""
    return (torch.rand(shape) < 0.5).to(dtype)


def masked_weight_samples(dtype: torch.dtype) -> Iterator[Sample]:
    """A weight and its constant mask (a pruning buffer), same shape."""
    mask = frozenset({1})
    yield Sample("regular", (tensor(4, 3, dtype=dtype), mask_like(4, 3, dtype=dtype)), {}, mask)
    yield Sample("empty", (tensor(0, 3, dtype=dtype), mask_like(0, 3, dtype=dtype)), {}, mask)
    yield Sample("scalar", (tensor(dtype=dtype), mask_like(dtype=dtype)), {}, mask)
    yield Sample(
        "noncontiguous",
        (tensor(2, 3, 4, dtype=dtype, noncontiguous=True), mask_like(2, 3, 4, dtype=dtype)),
        {},
        mask,
        noncontiguous_grad=True,
    )


OPS = [
    OpInfo(
        "masked_weight",
        F.masked_weight,
        _masked_weight_reference,
        F.MaskFunction,
        masked_weight_samples,
    ),
]
