r"""Normalisation to unit norm and cosine similarity: forward, what is saved, the gradient.

==================  ===========================================================================
op                  twins
==================  ===========================================================================
normalize           torch.nn.functional.normalize (any p, ``dim``, ``eps``)
cosine_similarity   torch.nn.functional.cosine_similarity / torch.cosine_similarity
                    (broadcasting inputs, ``dim``, ``eps``)
==================  ===========================================================================

Both divide by a norm clamped from below by ``eps``. Where the clamp is active the divisor is
the constant eps for normalize (its gradient stops there, as torch's clamp_min); cosine
similarity follows torch, whose clamp only guards the division: the norm's own derivative is
used even there. Saved: the inputs (and the output for cosine similarity); the norms are
recomputed in backward, which is built from plain tensor ops, so it is differentiable again.
"""

from __future__ import annotations

import torch
from torch import Tensor

from manualgrad.functional._checks import wrap_dim
from manualgrad.functional._function import Function
from manualgrad.functional.arithmetic import reduce_to
from manualgrad.functional.reductions import norm_vjp


class NormalizeFunction(Function):
    r"""y = x / n,  n = max(‖x‖_p, ε) over ``dim`` (kept as size 1).

    ∂y_i/∂x_k = δ_ik / n − x_i ∂n/∂x_k / n², with ∂n/∂x = ∂‖x‖_p/∂x where ‖x‖_p > ε, else 0.
    So with g = dL/dy and s = Σ_dim g·x:
    Saved: x (n is recomputed in backward: one reduction, and a norm that double backward
    differentiates).
    dL/dx = g / n − (s / n²) · ∂‖x‖_p/∂x   (the second term only where ‖x‖_p > ε).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, p: float, dim: int, eps: float) -> Tensor:
        norm = torch.linalg.vector_norm(input, p, dim, keepdim=True).clamp_min(eps)
        return input / norm

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, ctx.p, ctx.dim, ctx.eps = inputs
        ctx.save_for_backward(input)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (input,) = ctx.saved_tensors
        norm = torch.linalg.vector_norm(input, ctx.p, ctx.dim, keepdim=True).clamp_min(ctx.eps)
        through = (grad * input).sum(ctx.dim, keepdim=True) / (norm * norm)
        through = torch.where(norm > ctx.eps, through, 0)
        grad_input = grad / norm - norm_vjp(through, input, norm, ctx.p, (ctx.dim,))
        return grad_input, None, None, None


class CosineSimilarityFunction(Function):
    r"""c = Σ_dim (x₁ / n₁)(x₂ / n₂),  n_k = max(‖x_k‖₂, ε)   (x₁, x₂ broadcast together
    first, as torch: the norms are over the broadcast ``dim``).

    With u = x₁/n₁, v = x₂/n₂ and r_k = ‖x_k‖₂, as torch (the clamp guards the division only,
    ∂n_k/∂x_k = x_k / r_k):  ∂c/∂x₁ = v / n₁ − c · x₁ / (r₁ n₁), and symmetrically for x₂.
    Saved: x₁, x₂ and c (r₁, r₂ are recomputed in backward, so double backward sees them).
    dL/dx₁ = Σ_broadcast g · (v / n₁ − c · x₁ / (r₁ n₁)),   g = dL/dc (kept as size 1 on dim);
    dL/dx₂ = Σ_broadcast g · (u / n₂ − c · x₂ / (r₂ n₂)).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x1: Tensor, x2: Tensor, dim: int, eps: float) -> Tensor:
        x1, x2 = torch.broadcast_tensors(x1, x2)
        n1 = torch.linalg.vector_norm(x1, 2, dim, keepdim=True).clamp_min(eps)
        n2 = torch.linalg.vector_norm(x2, 2, dim, keepdim=True).clamp_min(eps)
        return ((x1 / n1) * (x2 / n2)).sum(dim)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x1, x2, ctx.dim, ctx.eps = inputs
        ctx.save_for_backward(x1, x2, output)

    @staticmethod
    def backward(ctx, grad: Tensor):
        saved1, saved2, output = ctx.saved_tensors
        x1, x2 = torch.broadcast_tensors(saved1, saved2)
        r1 = torch.linalg.vector_norm(x1, 2, ctx.dim, keepdim=True)
        r2 = torch.linalg.vector_norm(x2, 2, ctx.dim, keepdim=True)
        needs1, needs2 = ctx.needs_input_grad[:2]
        n1, n2 = r1.clamp_min(ctx.eps), r2.clamp_min(ctx.eps)
        grad, cosine = grad.unsqueeze(ctx.dim), output.unsqueeze(ctx.dim)
        grad1 = grad2 = None
        if needs1:
            grad1 = reduce_to(grad * _cosine_slope(x1, x2 / n2, n1, r1, cosine), saved1.shape)
        if needs2:
            grad2 = reduce_to(grad * _cosine_slope(x2, x1 / n1, n2, r2, cosine), saved2.shape)
        return grad1, grad2, None, None


def _cosine_slope(x: Tensor, other: Tensor, n: Tensor, r: Tensor, cosine: Tensor) -> Tensor:
    """∂c/∂x = other / n − c · x / (r n)   (the second term 0 where r = 0)."""
    return other / n - x * torch.where(r == 0, 0, cosine / (r * n))


def normalize(
    input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out: Tensor | None = None
) -> Tensor:
    """``torch.nn.functional.normalize`` with the hand-derived backward of
    :class:`NormalizeFunction` (``out=`` is torch's: no gradient through it)."""
    if out is not None:
        return torch.div(
            input, torch.linalg.vector_norm(input, p, dim, True).clamp_min(eps), out=out
        )
    return NormalizeFunction.apply(input, float(p), wrap_dim(dim, input.dim(), "normalize"), eps)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """``torch.nn.functional.cosine_similarity`` with the hand-derived backward of
    :class:`CosineSimilarityFunction`."""
    ndim = len(torch.broadcast_shapes(x1.shape, x2.shape))  # torch broadcasts first
    return CosineSimilarityFunction.apply(x1, x2, wrap_dim(dim, ndim, "cosine_similarity"), eps)


__all__ = ["CosineSimilarityFunction", "NormalizeFunction", "cosine_similarity", "normalize"]
