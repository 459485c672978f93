"""Bytes saved for backward, counted with ``torch.autograd.graph.saved_tensors_hooks``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def saved_bytes(fn: Callable[[], object]) -> int:
    """Run ``fn`` and return the bytes of the distinct storages autograd saved for backward.

    Each storage is counted once, however many saved tensors view it, so a layer that saves the
    tensor the next layer also saves is charged for it only once.
    """
    storages: dict[int, int] = {}

    def pack(tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn()
    return sum(storages.values())
