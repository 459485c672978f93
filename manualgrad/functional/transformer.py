"""Fused ops transformer blocks use, each one Function (one graph node, little saved):
rotary position embedding, SwiGLU/GeGLU gates, and RMSNorm/LayerNorm fused with the residual
add that precedes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from manualgrad.functional._function import Function
from manualgrad.functional._precision import accumulation_dtype, downcast, upcast
from manualgrad.functional.activations import (
    GELUFunction,
    SigmoidFunction,
    SiLUFunction,
    check_gelu_approximate,
    gelu_derivative,
)
from manualgrad.functional.normalization import (
    LayerNormFunction,
    RMSNormFunction,
    _check_normalized_shape,
    layer_norm_grads,
    rms_norm_grads,
)


def rotate_half(input: Tensor) -> Tensor:
    """R x = cat(−x₂, x₁) for the halves x₁, x₂ of the last dim (HF's ``rotate_half``)."""
    first, second = input.chunk(2, dim=-1)
    return torch.cat([-second, first], dim=-1)


def _rotate_half_transposed(input: Tensor) -> Tensor:
    """Rᵀ u = cat(u₂, −u₁): the transpose (and inverse) of :func:`rotate_half`."""
    first, second = input.chunk(2, dim=-1)
    return torch.cat([second, -first], dim=-1)


class RotaryFunction(Function):
    r"""Rotary position embedding  y = x ⊙ cos + (R x) ⊙ sin,  R x = cat(−x₂, x₁) (HF's
    ``rotate_half`` convention; cos, sin broadcast to x, e.g. (L, D) against (B, H, L, D)).

    Saved: cos and sin (one (L, D) table each, shared by every layer); x only when cos or sin
    need a gradient.

        dL/dx   = G ⊙ cos + Rᵀ(G ⊙ sin),   Rᵀ u = cat(u₂, −u₁)
        dL/dcos = Σ_broadcast G ⊙ x,       dL/dsin = Σ_broadcast G ⊙ R x

    Linear in G (and in x), so the double backward is these maps again.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        return torch.addcmul(input * cos, rotate_half(input), sin)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, cos, sin = inputs
        needs_tables = ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
        ctx.save_for_backward(input if needs_tables else None, cos, sin)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        input, cos, sin = ctx.saved_tensors
        grad_input = grad_cos = grad_sin = None
        if ctx.needs_input_grad[0]:
            grad_input = (grad_output * cos).add_(_rotate_half_transposed(grad_output * sin))
        if ctx.needs_input_grad[1]:
            grad_cos = (grad_output * input).sum_to_size(cos.shape)
        if ctx.needs_input_grad[2]:
            grad_sin = (grad_output * rotate_half(input)).sum_to_size(sin.shape)
        return grad_input, grad_cos, grad_sin


def apply_rotary(input: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """``input * cos + rotate_half(input) * sin`` (HF transformers' ``apply_rotary_pos_emb``
    for one tensor) through :class:`RotaryFunction`; the last dim must be even."""
    if input.shape[-1] % 2:
        raise ValueError(f"input's last dim must be even for rotary embedding, got {input.shape}")
    return RotaryFunction.apply(input, cos, sin)


class GatedFunction(Function):
    r"""Gated linear unit product  y = f(a) ⊙ b  with f = SiLU (SwiGLU) or GELU (GeGLU).

    Saved: a and b (f(a) and f'(a) are recomputed).

        dL/da = G ⊙ b ⊙ f'(a),   dL/db = G ⊙ f(a)
        SiLU: f = a σ(a),  f' = σ(a)(1 + a(1 − σ(a)));   GELU: see :class:`GELUFunction`.

    Built from differentiable ops of a, b, G, so double backward differentiates them.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(gate: Tensor, up: Tensor, activation: str) -> Tensor:
        return _activation(gate, activation).mul_(up)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        gate, up, ctx.activation = inputs
        ctx.save_for_backward(gate, up)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        gate, up = ctx.saved_tensors
        grad_gate = grad_up = None
        if ctx.needs_input_grad[0]:
            grad_gate = (grad_output * up) * _activation_derivative(gate, ctx.activation)
            grad_gate = grad_gate.sum_to_size(gate.shape)
        if ctx.needs_input_grad[1]:
            grad_up = (grad_output * _activation(gate, ctx.activation)).sum_to_size(up.shape)
        return grad_gate, grad_up, None


def _activation(gate: Tensor, activation: str) -> Tensor:
    """f(a): 'silu', or 'gelu' / 'gelu_tanh' (a fresh tensor; the activation's own Function,
    so that the backward's f(a) is differentiable)."""
    if activation == "silu":
        return SiLUFunction.apply(gate)
    return GELUFunction.apply(gate, "tanh" if activation == "gelu_tanh" else "none")


def _activation_derivative(gate: Tensor, activation: str) -> Tensor:
    """f'(a), from differentiable ops of a."""
    if activation == "silu":
        sigma = SigmoidFunction.apply(gate)
        return (1 - sigma).mul_(gate).add_(1).mul_(sigma)
    return gelu_derivative(gate, "tanh" if activation == "gelu_tanh" else "none")


def swiglu(gate: Tensor, up: Tensor) -> Tensor:
    """SwiGLU gate ``silu(gate) * up`` (Llama's MLP) as one :class:`GatedFunction` node."""
    (wide_gate, wide_up) = upcast(gate, up)
    return downcast(GatedFunction.apply(wide_gate, wide_up, "silu"), gate.dtype)


def geglu(gate: Tensor, up: Tensor, approximate: str = "none") -> Tensor:
    """GeGLU gate ``gelu(gate, approximate) * up`` as one :class:`GatedFunction` node."""
    check_gelu_approximate(approximate, "geglu")
    (wide_gate, wide_up) = upcast(gate, up)
    activation = "gelu_tanh" if approximate == "tanh" else "gelu"
    return downcast(GatedFunction.apply(wide_gate, wide_up, activation), gate.dtype)


class AddNormFunction(Function):
    r"""Residual add then norm:  h = x + r,  y = norm(h)  (RMSNorm or LayerNorm over the last D
    dims, affine w (, b)); outputs (y, h) — the normed input of the next sublayer and the new
    residual stream.

    Saved: h (the returned sum itself: no copy), w, and the norm's row statistics; never x or r.

        dL/dh = dL/dh|_out + normᵀ(dL/dy)     (the norm's own derivation:
                :class:`RMSNormFunction`, :class:`LayerNormFunction`, run on h)
        dL/dx = dL/dr = dL/dh,   dL/dw, dL/db as the norm gives them.

    The norm's backward is built from differentiable ops, and so is this sum: double backward
    works as for the norm.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(
        input: Tensor,
        residual: Tensor,
        weight: Tensor | None,
        bias: Tensor | None,
        dims: int,
        eps: float,
        kind: str,
    ):
        total = input + residual
        if kind == "rms":
            output, *stats = RMSNormFunction.forward(total, weight, dims, eps)
        else:
            output, *stats = LayerNormFunction.forward(total, weight, bias, dims, eps)
        return output, total, *stats

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.set_materialize_grads(False)
        input, residual, weight, _, ctx.dims, _, ctx.kind = inputs
        ctx.shapes = (input.shape, residual.shape)
        ctx.save_for_backward(output[1], weight, *output[2:])

    @staticmethod
    def backward(ctx, grad_output, grad_total, *grad_stats):
        total, weight, *stats = ctx.saved_tensors
        needs = ctx.needs_input_grad
        needs_total = needs[0] or needs[1]
        saved = (total, weight, *stats)
        if ctx.kind == "rms":
            grad_h, grad_weight = rms_norm_grads(
                saved, (needs_total, needs[2]), ctx.dims, grad_output, *grad_stats
            )
            grad_bias = None
        else:
            norm_needs = (needs_total, needs[2], needs[3])
            grad_h, grad_weight, grad_bias = layer_norm_grads(
                saved, norm_needs, ctx.dims, grad_output, *grad_stats
            )
        if grad_total is not None:
            grad_h = grad_total if grad_h is None else grad_h + grad_total
        input_shape, residual_shape = ctx.shapes
        grad_input = grad_h.sum_to_size(input_shape) if needs[0] and grad_h is not None else None
        grad_residual = None
        if needs[1] and grad_h is not None:
            grad_residual = grad_h.sum_to_size(residual_shape)
        return grad_input, grad_residual, grad_weight, grad_bias, None, None, None


def _add_norm(
    kind: str,
    input: Tensor,
    residual: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None,
    bias: Tensor | None,
    eps: float,
) -> tuple[Tensor, Tensor]:
    """(norm(input + residual), input + residual) through :class:`AddNormFunction`."""
    op = "rms_norm" if kind == "rms" else "layer_norm"
    params = {"weight": weight} if kind == "rms" else {"weight": weight, "bias": bias}
    like = input  # the sum's shape, checked as torch would (a meta tensor costs ~10 µs a call)
    if residual.shape != input.shape:
        like = torch.empty(torch.broadcast_shapes(input.shape, residual.shape), device="meta")
    shape = _check_normalized_shape(op, like, normalized_shape, **params)
    wide = upcast(input, residual, weight, bias)
    output, total, *_ = AddNormFunction.apply(*wide, len(shape), eps, kind)
    dtype = torch.promote_types(input.dtype, residual.dtype)
    return downcast(output, dtype), downcast(total, dtype)


def add_rms_norm(
    input: Tensor,
    residual: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    eps: float | None = None,
) -> tuple[Tensor, Tensor]:
    """``(rms_norm(input + residual, normalized_shape, weight, eps), input + residual)`` as one
    node; ``eps=None`` is the computation dtype's machine epsilon, as torch's rms_norm."""
    dtype = torch.promote_types(input.dtype, residual.dtype)
    eps = torch.finfo(accumulation_dtype(dtype)).eps if eps is None else eps
    return _add_norm("rms", input, residual, normalized_shape, weight, None, eps)


def add_layer_norm(
    input: Tensor,
    residual: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> tuple[Tensor, Tensor]:
    """``(layer_norm(input + residual, normalized_shape, weight, bias, eps), input + residual)``
    as one node."""
    return _add_norm("layer", input, residual, normalized_shape, weight, bias, eps)


__all__ = [
    "AddNormFunction",
    "GatedFunction",
    "RotaryFunction",
    "add_layer_norm",
    "add_rms_norm",
    "apply_rotary",
    "geglu",
    "rotate_half",
    "swiglu",
]
