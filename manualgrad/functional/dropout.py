"""Dropout: zero each element with probability p, scale the survivors by 1/(1-p).

The random mask is drawn in the functional wrapper exactly as torch's CPU ``dropout`` draws it
(``empty_like(input).bernoulli_(1 - p)``: one uniform draw per element, in memory order, whatever
the dtype), so with the same seed the mask equals torch's. The Function itself is deterministic:
it takes the mask as an input, which keeps it usable under ``vmap`` and ``torch.compile``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from manualgrad.functional._function import Function


class DropoutFunction(Function):
    r"""Masked scaling  y = x ⊙ m / (1 − p),  m ∈ {0, 1} a fixed bool mask (an input,
    broadcastable to x).

    Saved: the bool mask m only (1 byte per element; never x, never a float noise tensor —
    torch's CPU dropout saves its float noise, 4–8 bytes per element).
    dL/dx = dL/dy ⊙ m / (1 − p)   (linear in dL/dy, so double backward is the same map).
    p = 1: m is a single 0-d False and the scale is taken as 1, so y = x ⊙ 0 as in torch
    (which saves a 0-d zero tensor).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, mask: Tensor, p: float) -> Tensor:
        return input * keep_scale(mask, p, input.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _, mask, p = inputs
        ctx.p = p
        ctx.save_for_backward(mask)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (mask,) = ctx.saved_tensors
        return grad_output * keep_scale(mask, ctx.p, grad_output.dtype), None, None


def keep_scale(mask: Tensor, p: float, dtype: torch.dtype) -> Tensor:
    """m / (1 − p) in ``dtype`` (0 for p = 1), computed as torch computes its noise (divide,
    then multiply)."""
    noise = mask.to(dtype)
    return noise if p == 1 else noise.div_(1 - p)


def dropout_mask(like: Tensor, p: float) -> Tensor:
    """A bool keep-mask with P(keep) = 1 − p, drawn like torch's CPU dropout noise: shaped and
    strided like ``like`` and filled in its memory order. For p = 1 a single False (0-d)."""
    if p == 1:
        return torch.zeros((), dtype=torch.bool, device=like.device)
    return torch.empty_like(like, dtype=torch.bool).bernoulli_(1 - p)


def check_probability(p: float) -> None:
    """torch's check: ValueError naming the dropout probability when p ∉ [0, 1]."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """``torch.nn.functional.dropout`` with the hand-derived backward of :class:`DropoutFunction`.

    As torch: returns ``input`` itself when not training, when p = 0 or when it is empty (no
    random numbers are drawn then), and draws no random numbers for p = 1. ``inplace`` is
    accepted and ignored: the result is always a new tensor.
    """
    check_probability(p)
    if not training or p == 0 or input.numel() == 0:
        return input
    mask = dropout_mask(input, p)
    return DropoutFunction.apply(input, mask, p)


__all__ = ["DropoutFunction", "dropout"]
