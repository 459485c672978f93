r"""The pruning mask product, hand-derived: w = orig ⊙ mask.

The user-facing pruning API (``l1_unstructured``, ``global_unstructured``, ``remove``, ...) and
why a mask persists through any optimizer are in :mod:`manualgrad.prune`; the Function lives here
with every other Function.
"""

from __future__ import annotations

from torch import Tensor

from manualgrad.functional._function import Function

__all__ = ["MaskFunction", "masked_weight"]


class MaskFunction(Function):
    r"""w = orig ⊙ mask   (mask of 0/1, not differentiated).

    Saved: mask (only when orig needs a gradient).   dL/dorig = dL/dw ⊙ mask: exactly 0 at
    pruned entries. Linear in dL/dw, so differentiable again.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(orig: Tensor, mask: Tensor) -> Tensor:
        return orig * mask

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(inputs[1] if ctx.needs_input_grad[0] else None)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (mask,) = ctx.saved_tensors
        return (grad_output * mask if ctx.needs_input_grad[0] else None), None


def masked_weight(orig: Tensor, mask: Tensor) -> Tensor:
    """orig ⊙ mask with the gradient orig gets (dL/dw ⊙ mask) and none for the mask, through
    :class:`MaskFunction`."""
    return MaskFunction.apply(orig, mask)
