"""Scaled dot-product attention with the softmax backward derived by hand.

One Function computes scores, softmax, dropout and the weighted sum. It saves the per-row
log-sum-exp instead of the (L × S) probability matrix and recomputes the probabilities in
backward (the FlashAttention trade: one more ``q kᵀ`` product for O(L) instead of O(L·S) memory).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from manualgrad.functional._function import Function
from manualgrad.functional.dropout import dropout_mask, keep_scale


class AttentionFunction(Function):
    r"""Attention  O = A V,  A = P ⊙ M / (1 − p),  P = softmax_rows(Z),  Z = s·Q Kᵀ + B.

    Q: (..., L, E), K: (..., S, E), V: (..., S, Ev) (batch dims broadcast); s the scale; B the
    mask bias (a float mask added as is; a bool mask or the causal triangle adds −∞ where
    attention is not allowed); M the bool dropout keep-mask (an input, drawn by the caller).
    Outputs: O, the row log-sum-exp ℓ = log Σ_j exp Z_ij (−∞ for a fully masked row, whose P
    is taken as 0, as torch does), and A itself when ``need_weights``.

    Saved: Q, K, ℓ, the mask and M (bool); V only when dL/dQ, dL/dK or dL/dB is needed. P is not
    saved: backward recomputes it as exp(Z − ℓ). torch's CPU flash kernel also keeps the output
    (and a float copy of a bool mask); its math path (dropout, GQA, masks needing grad) keeps
    several (L × S) matrices.

    With G = dL/dO, Gℓ = dL/dℓ and GA = dL/dA (zero when absent):

        dL/dV = Aᵀ G                                  (summed over broadcast batch dims)
        dL/dA = G Vᵀ + GA,      dL/dP = dL/dA ⊙ M / (1 − p)
        dL/dZ = P ⊙ (dL/dP − rowsum(dL/dP ⊙ P)) + P ⊙ Gℓ      (softmax and log-sum-exp rules)
        dL/dQ = s · dL/dZ K,    dL/dK = s · (dL/dZ)ᵀ Q,    dL/dB = dL/dZ (float mask only)

    Every step is a matmul, product or row sum of saved tensors and the incoming gradients, so
    double backward differentiates these formulas (ℓ is an output: its dependence on Q and K
    comes back through Gℓ).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(
        query: Tensor,
        key: Tensor,
        value: Tensor,
        attn_mask: Tensor | None,
        drop_mask: Tensor | None,
        scale: float,
        is_causal: bool,
        dropout_p: float,
        need_weights: bool,
    ):
        scores = _scores(query, key, attn_mask, scale, is_causal)
        lse = scores.logsumexp(-1)
        weights = _weights(scores, lse, drop_mask, dropout_p)
        output = weights.matmul(value)
        return (output, lse, weights) if need_weights else (output, lse)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        query, key, value, attn_mask, drop_mask, scale, is_causal, dropout_p, _ = inputs
        ctx.scale, ctx.is_causal, ctx.dropout_p = scale, is_causal, dropout_p
        ctx.shapes = (query.shape, key.shape, value.shape)
        ctx.mask_shape = None if attn_mask is None else attn_mask.shape
        needs_scores_grad = any(ctx.needs_input_grad[i] for i in (0, 1, 3))
        ctx.save_for_backward(
            query, key, value if needs_scores_grad else None, output[1], attn_mask, drop_mask
        )

    @staticmethod
    def backward(ctx, grad_output: Tensor | None, grad_lse: Tensor | None, grad_weights=None):
        query, key, value, lse, attn_mask, drop_mask = ctx.saved_tensors
        needs_query, needs_key, needs_value, needs_mask = ctx.needs_input_grad[:4]
        query_shape, key_shape, value_shape = ctx.shapes
        scores = _scores(query, key, attn_mask, ctx.scale, ctx.is_causal)
        probs = _weights(scores, lse, None, 0.0)
        weights = probs if drop_mask is None else _weights(scores, lse, drop_mask, ctx.dropout_p)
        grad_query = grad_key = grad_value = grad_mask = None
        if needs_value and grad_output is not None:
            grad_value = weights.transpose(-2, -1).matmul(grad_output).sum_to_size(value_shape)
        if not (needs_query or needs_key or needs_mask):
            return grad_query, grad_key, grad_value, None, None, None, None, None, None
        grad_probs = _sum_present(
            None if grad_output is None else grad_output.matmul(value.transpose(-2, -1)),
            grad_weights,
        )
        grad_scores = _sum_present(
            None if grad_probs is None else _softmax_rule(probs, grad_probs, drop_mask, ctx),
            None if grad_lse is None else probs * grad_lse.unsqueeze(-1),
        )
        if grad_scores is None:
            grad_scores = torch.zeros_like(probs)
        if needs_query:
            grad_query = grad_scores.matmul(key).mul(ctx.scale).sum_to_size(query_shape)
        if needs_key:
            grad_key = grad_scores.transpose(-2, -1).matmul(query).mul(ctx.scale)
            grad_key = grad_key.sum_to_size(key_shape)
        if needs_mask:
            grad_mask = grad_scores.sum_to_size(ctx.mask_shape)
        return grad_query, grad_key, grad_value, grad_mask, None, None, None, None, None


def _scores(query: Tensor, key: Tensor, mask: Tensor | None, scale: float, causal: bool) -> Tensor:
    """Z = s·Q Kᵀ + B."""
    scores = query.matmul(key.transpose(-2, -1)).mul(scale)
    if causal:
        mask = torch.ones(scores.shape[-2:], dtype=torch.bool, device=scores.device).tril()
    if mask is None:
        return scores
    if mask.dtype == torch.bool:
        return scores.masked_fill(mask.logical_not(), -math.inf)
    return scores + mask


def _weights(scores: Tensor, lse: Tensor, drop_mask: Tensor | None, dropout_p: float) -> Tensor:
    """A = exp(Z − ℓ) ⊙ M / (1 − p), with P = 0 on fully masked rows (ℓ = −∞)."""
    finite_lse = lse.masked_fill(lse == -math.inf, 0.0)
    probs = scores.sub(finite_lse.unsqueeze(-1)).exp()
    return probs if drop_mask is None else probs * keep_scale(drop_mask, dropout_p, probs.dtype)


def _softmax_rule(probs: Tensor, grad_weights: Tensor, drop_mask: Tensor | None, ctx) -> Tensor:
    """dL/dZ = P ⊙ (dL/dP − rowsum(dL/dP ⊙ P)), with dL/dP = dL/dA ⊙ M / (1 − p)."""
    if drop_mask is not None:
        grad_weights = grad_weights * keep_scale(drop_mask, ctx.dropout_p, grad_weights.dtype)
    row = (grad_weights * probs).sum(-1, keepdim=True)
    return probs * (grad_weights - row)


def _sum_present(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    """a + b, where a missing term counts as zero (None when both are)."""
    if a is None or b is None:
        return b if a is None else a
    return a + b


_DTYPE_NAMES = {torch.float32: "float", torch.float64: "double", torch.int64: "long int"}


def _dtype_name(dtype: torch.dtype) -> str:
    return _DTYPE_NAMES.get(dtype, str(dtype).removeprefix("torch."))


def _check(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None,
    dropout_p: float,
    is_causal: bool,
) -> None:
    """torch's argument checks for scaled_dot_product_attention (all RuntimeError)."""
    if min(query.dim(), key.dim(), value.dim()) < 2:
        raise RuntimeError(
            "Expected query, key, and value to all be  at least 2 dimensional, but got "
            f"query.dim: {query.dim()} key.dim: {key.dim()} and value.dim: {value.dim()} instead."
        )
    if not query.dtype == key.dtype == value.dtype:
        raise RuntimeError(
            "Expected query, key, and value to have the same dtype, but got query.dtype: "
            f"{_dtype_name(query.dtype)} key.dtype: {_dtype_name(key.dtype)} and value.dtype: "
            f"{_dtype_name(value.dtype)} instead."
        )
    if attn_mask is not None and attn_mask.dtype not in (torch.bool, torch.float32, query.dtype):
        raise RuntimeError(
            "Expected attn_mask dtype to be bool or float or to match query dtype, but got "
            f"attn_mask.dtype: {_dtype_name(attn_mask.dtype)} and  query.dtype: "
            f"{_dtype_name(query.dtype)} instead."
        )
    if attn_mask is not None and is_causal:
        raise RuntimeError(
            "_scaled_dot_product_attention: Explicit attn_mask should not be set when "
            "is_causal=True"
        )
    if not 0.0 <= dropout_p <= 1.0:
        raise RuntimeError(f"dropout probability has to be between 0 and 1, but got {dropout_p}")


def _gqa_groups(query: Tensor, key: Tensor, value: Tensor) -> int:
    """g = Hq / Hk for grouped-query attention (heads at dim −3); torch's error if Hk ∤ Hq."""
    if min(query.dim(), key.dim(), value.dim()) < 3 or query.shape[-3] == key.shape[-3]:
        return 1
    heads, kv_heads = query.shape[-3], key.shape[-3]
    if heads % kv_heads or value.shape[-3] != kv_heads:
        raise RuntimeError(
            "Number of heads in key and value must divide the number of heads in query"
        )
    return heads // kv_heads


def _group_heads(tensor: Tensor, heads: int, groups: int) -> Tensor:
    """(..., H, L, X) with H = heads·groups → (..., heads, groups, L, X); a size-1 or missing
    head dim gets a broadcastable group dim."""
    if tensor.dim() < 3:
        return tensor
    if tensor.shape[-3] == heads * groups:
        return tensor.unflatten(-3, (heads, groups))
    return tensor.unsqueeze(-3)


def attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
    need_weights: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """:func:`scaled_dot_product_attention` that also returns the attention weights A (after
    dropout, shape (..., L, S)) when ``need_weights``, else None.

    Grouped-query attention (``enable_gqa``, Hq = g·Hk heads) never repeats K and V: Q is viewed
    as (..., Hk, g, L, E) against K, V viewed as (..., Hk, 1, S, E), and backward sums over g.
    The dropout mask is drawn over the full (..., Hq, L, S) attention shape, the same random
    numbers torch's math path draws for the same seed.
    """
    _check(query, key, value, attn_mask, dropout_p, is_causal)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    groups = _gqa_groups(query, key, value) if enable_gqa else 1
    key_batch = key.shape[:-2] if groups == 1 else (*key.shape[:-3], key.shape[-3] * groups)
    batch = torch.broadcast_shapes(query.shape[:-2], key_batch)
    attn_shape = (*batch, query.shape[-2], key.shape[-2])
    drop_mask = None
    if dropout_p > 0.0:
        drop_mask = dropout_mask(query.new_empty(attn_shape, dtype=torch.bool), dropout_p)
    if groups > 1:
        kv_heads = key.shape[-3]
        query = query.unflatten(-3, (kv_heads, groups))
        key, value = key.unsqueeze(-3), value.unsqueeze(-3)
        attn_mask = None if attn_mask is None else _group_heads(attn_mask, kv_heads, groups)
        drop_mask = None if drop_mask is None else _group_heads(drop_mask, kv_heads, groups)
    outputs = AttentionFunction.apply(
        query, key, value, attn_mask, drop_mask, scale, is_causal, dropout_p, need_weights
    )
    output, weights = outputs[0], outputs[2] if need_weights else None
    if groups > 1:
        output = output.flatten(-4, -3)
        weights = None if weights is None else weights.flatten(-4, -3)
    return output, weights


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """``torch.nn.functional.scaled_dot_product_attention`` with the hand-derived backward of
    :class:`AttentionFunction`.

    A bool ``attn_mask`` marks with True the positions that may be attended; a float mask is
    added to the scores (and gets a gradient if it requires one). ``is_causal`` uses the
    top-left-aligned lower triangle. Fully masked rows give zeros, as in torch.
    """
    output, _ = attention(
        query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa, need_weights=False
    )
    return output


__all__ = ["AttentionFunction", "scaled_dot_product_attention"]
