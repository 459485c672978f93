"""Low precision as torch's CPU kernels do it: float16/bfloat16 inputs are computed in float32
("opmath") and the result is cast back to the input's dtype.

A wrapper upcasts its reduced-precision tensors with :func:`upcast` before calling its Function
and casts the result back with :func:`downcast`; the casts are ordinary autograd nodes, so the
gradient reaching a float16 input is computed in float32 and rounded once, as torch's.
"""

from __future__ import annotations

import torch
from torch import Tensor

LOW_PRECISION = (torch.float16, torch.bfloat16)


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for float16/bfloat16, the dtype itself otherwise."""
    return torch.float32 if dtype in LOW_PRECISION else dtype


def upcast(*tensors: Tensor | None) -> tuple[Tensor | None, ...]:
    """Each float16/bfloat16 tensor as float32; other tensors and None unchanged."""
    return tuple(
        tensor.float() if tensor is not None and tensor.dtype in LOW_PRECISION else tensor
        for tensor in tensors
    )


def downcast(output: Tensor, dtype: torch.dtype) -> Tensor:
    """``output`` in ``dtype`` (no copy when it already is)."""
    return output if output.dtype == dtype else output.to(dtype)
