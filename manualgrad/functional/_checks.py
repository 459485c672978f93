"""Argument checks shared by the functional wrappers: torch's exception type, a message naming
the argument. They read only shapes and dtypes, never data, so they are safe under vmap/compile."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def broadcast_shapes(shape: Sequence[int], other: Sequence[int]) -> torch.Size:
    """``torch.broadcast_shapes(shape, other)`` of two shapes without its Python reference
    implementation (~33 µs a call, a fifth of a small attention call's cost); shapes that do not
    broadcast go to it for torch's error."""
    if tuple(shape) == tuple(other):
        return torch.Size(shape)
    width = max(len(shape), len(other))
    padded = [(1,) * (width - len(s)) + tuple(s) for s in (shape, other)]
    if any(a != b and 1 not in (a, b) for a, b in zip(*padded, strict=True)):
        return torch.broadcast_shapes(shape, other)
    return torch.Size(b if a == 1 else a for a, b in zip(*padded, strict=True))


def require_floating(input: Tensor, op: str) -> None:
    """Raise ``NotImplementedError`` (as torch's kernels do) unless ``input`` is floating point."""
    if not input.is_floating_point():
        raise NotImplementedError(
            f"{op}: `input` must be a floating-point tensor, got dtype {input.dtype}"
        )


def require_tensor(input: object, op: str, error: type[Exception] = TypeError) -> None:
    """Raise ``error`` unless ``input`` is a tensor (torch raises AttributeError for the ops it
    implements as ``input.<method>()``)."""
    if not isinstance(input, Tensor):
        raise error(f"{op}: `input` must be a Tensor, not {type(input).__name__}")


def wrap_dim(dim: int, ndim: int, op: str) -> int:
    """``dim`` as a non-negative index into a tensor of ``ndim`` dims (0-d counts as 1-d)."""
    rank = max(ndim, 1)
    if not -rank <= dim < rank:
        raise IndexError(
            f"{op}: `dim` out of range (expected to be in range of [{-rank}, {rank - 1}], "
            f"but got {dim})"
        )
    return dim % rank
