"""Affine layer: the lecture's "each layer is one matrix" (plus a bias)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from manualgrad.functional._function import Function


class LinearFunction(Function):
    r"""Affine map  y = x Wᵀ + b,  x: (..., in),  W: (out, in),  b: (out,).

    Flatten the leading dims: X = x.reshape(N, in), G = dL/dy reshaped to (N, out). Then

        dL/dx = G W                      (N, in) → reshaped back to x's shape
        dL/dW = Gᵀ X                     (out, in)
        dL/db = Σ_rows G                 (out,)

    Saved: x only if W needs a gradient, W only if x needs one (each gradient needs the *other*
    operand); b is never saved. Every gradient is a matmul or a sum of ``grad_y``, hence linear in
    it and differentiable again (double backward = the same three formulas).
    """

    generate_vmap_rule = True
    autocast = "lower"

    @staticmethod
    def forward(input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if input.dim() == 2 and bias is not None:
            return torch.addmm(bias, input, weight.t())
        output = input.matmul(weight.t())
        return output if bias is None else output + bias

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, weight, _ = inputs
        needs_input, needs_weight, _ = ctx.needs_input_grad
        ctx.save_for_backward(
            input if needs_weight else None,
            weight if needs_input else None,
        )

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        input, weight = ctx.saved_tensors
        return affine_grads(ctx.needs_input_grad[:3], grad_output, input, weight)


def affine_grads(
    needs: tuple[bool, bool, bool], grad_output: Tensor, input: Tensor | None, weight: Tensor | None
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """dL/dx = G W, dL/dW = Gᵀ X, dL/db = Σ_rows G of y = x Wᵀ + b from G = dL/dy (see
    :class:`LinearFunction`), each only where ``needs`` (x, W, b) asks for it, else None."""
    needs_input, needs_weight, needs_bias = needs
    grad_input = grad_output.matmul(weight) if needs_input else None
    grad_weight = _flat_rows(grad_output).t().matmul(_flat_rows(input)) if needs_weight else None
    grad_bias = _flat_rows(grad_output).sum(0) if needs_bias else None
    return grad_input, grad_weight, grad_bias


def _flat_rows(tensor: Tensor) -> Tensor:
    """View (..., k) as (N, k); a 1-d tensor is one row. N is explicit, so k may be 0."""
    return tensor.reshape(math.prod(tensor.shape[:-1]), tensor.shape[-1])


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``torch.nn.functional.linear`` with the hand-derived backward of :class:`LinearFunction`.

    A 1-d ``weight`` (in,) maps (..., in) to (...), as in torch, and then takes no bias (torch
    raises RuntimeError).
    """
    if weight.dim() != 1:  # the common case first: one dim() read per call
        return LinearFunction.apply(input, weight, bias)
    if bias is not None:
        raise RuntimeError(
            "linear: a 1-D `weight` takes no `bias` (mat2 must be a matrix, got 1-D tensor)"
        )
    return LinearFunction.apply(input, weight.unsqueeze(0), bias).squeeze(-1)


__all__ = ["LinearFunction", "linear"]
