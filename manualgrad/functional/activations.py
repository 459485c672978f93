"""Element-wise activations φ(z): forward, what is saved, and dφ/dz, side by side.

Each Function saves the least its derivative needs: the output when φ' is a function of φ
(ReLU, Sigmoid, Tanh, ELU with α > 0, Hardtanh), the input otherwise. Kinks get the subgradient
torch chooses, stated in each docstring.
"""

from __future__ import annotations

import torch
from torch import Tensor


class ReLUFunction(torch.autograd.Function):
    r"""ReLU.  y = max(z, 0).

    Saved: y only (y > 0 ⇔ z > 0), so the stored tensor is the one the next layer already holds.
    dL/dz = dL/dy · 1[y > 0]   (subgradient 0 chosen at z = 0, as torch does).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor) -> Tensor:
        return input.clamp_min(0)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:
        (output,) = ctx.saved_tensors
        return grad_output * (output > 0)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """``torch.nn.functional.relu``; ``inplace`` is accepted and ignored (always out of place)."""
    return ReLUFunction.apply(input)


__all__ = ["ReLUFunction", "relu"]
