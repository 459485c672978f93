"""``MultiheadAttention``: torch.nn.MultiheadAttention's parameters, init and state_dict; the
projections run :class:`~manualgrad.functional.LinearFunction` and the attention itself one
:class:`~manualgrad.functional.AttentionFunction` (blocked, memory-efficient)."""

from __future__ import annotations

import torch
from torch import Tensor

from manualgrad import functional as F
from manualgrad.functional.attention import attention


class MultiheadAttention(torch.nn.MultiheadAttention):
    """Multi-head attention  MHA(Q, K, V) = concat_h(attn(Q W_qʰ, K W_kʰ, V W_vʰ)) W_oᵀ + b_o.

    Subclasses ``torch.nn.MultiheadAttention``: constructor (``embed_dim, num_heads, dropout,
    bias, add_bias_kv, add_zero_attn, kdim, vdim, batch_first``), initialisation and parameter
    names (``in_proj_weight`` or ``q/k/v_proj_weight``, ``in_proj_bias``, ``bias_k``, ``bias_v``,
    ``out_proj.weight``, ``out_proj.bias``) are torch's own, so state_dicts interchange.

    ``forward`` follows ``torch.nn.functional.multi_head_attention_forward``: same masks and
    their conventions (bool True = *not* allowed, float added), dropout with torch's distribution
    (keep-masks drawn per query block from one seed, see
    :func:`~manualgrad.functional.attention.attention`), same returned weights (after dropout;
    averaged over heads if asked). Attention runs in query blocks (memory-efficient; the weights
    are only materialised when ``need_weights``). Differences: the
    masks stay bool when both are bool (torch turns them into float −∞ masks), and a fully
    masked query row yields zeros in both paths (torch's ``need_weights=True`` path gives NaN).
    """

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from ``query`` (L, N, E) to ``key``/``value`` (S, N, ·) — (N, ·, ·) if
        ``batch_first``, no N if unbatched; returns (output, weights or None)."""
        is_batched = _check_batched(query, key, value)
        if not is_batched:
            query, key, value = _each(lambda x: x.unsqueeze(1), query, key, value)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:
            query, key, value = _each(lambda x: x.transpose(1, 0), query, key, value)
        if is_causal and attn_mask is None:
            raise RuntimeError(
                "Need attn_mask if specifying the is_causal hint. You may use the Transformer "
                "module method `generate_square_subsequent_mask` to create this mask."
            )
        causal = is_causal and key_padding_mask is None and not need_weights
        output, weights = self._attend(
            query,
            key,
            value,
            _keep_mask(key_padding_mask, "key_padding_mask"),
            None if causal else _keep_mask(attn_mask, "attn_mask"),
            need_weights,
            causal,
        )
        if need_weights and average_attn_weights:
            weights = weights.mean(dim=1)
        if not is_batched:
            return output.squeeze(1), None if weights is None else weights.squeeze(0)
        if self.batch_first:
            output = output.transpose(1, 0)
        return output, weights

    def _attend(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None,
        attn_mask: Tensor | None,
        need_weights: bool,
        is_causal: bool,
    ) -> tuple[Tensor, Tensor | None]:
        """Sequence-first (L, N, E) inputs, masks as keep-masks or additive float masks."""
        tgt_len, batch, embed_dim = query.shape
        heads, head_dim = self.num_heads, self.head_dim
        attn_mask = _attn_mask_4d(attn_mask, batch, heads, tgt_len, key.shape[0])
        q, k, v = self._in_projection(query, key, value)
        if self.bias_k is not None and self.bias_v is not None:
            k = torch.cat([k, self.bias_k.repeat(1, batch, 1)])
            v = torch.cat([v, self.bias_v.repeat(1, batch, 1)])
            attn_mask, key_padding_mask = _extend(attn_mask), _extend(key_padding_mask)
        q = q.reshape(tgt_len, batch, heads, head_dim).permute(1, 2, 0, 3)
        k = k.reshape(k.shape[0], batch, heads, head_dim).permute(1, 2, 0, 3)
        v = v.reshape(v.shape[0], batch, heads, head_dim).permute(1, 2, 0, 3)
        if self.add_zero_attn:
            zeros = k.new_zeros(batch, heads, 1, head_dim)
            k, v = torch.cat([k, zeros], dim=2), torch.cat([v, zeros], dim=2)
            attn_mask, key_padding_mask = _extend(attn_mask), _extend(key_padding_mask)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.view(batch, 1, 1, k.shape[2])
        mask = _merge_masks(attn_mask, key_padding_mask, query.dtype)
        dropout_p = self.dropout if self.training else 0.0
        output, weights = attention(q, k, v, mask, dropout_p, is_causal, need_weights=need_weights)
        output = output.permute(2, 0, 1, 3).reshape(tgt_len * batch, embed_dim)
        output = F.linear(output, self.out_proj.weight, self.out_proj.bias)
        return output.view(tgt_len, batch, -1), weights

    def _in_projection(
        self, query: Tensor, key: Tensor, value: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Q W_qᵀ + b_q, K W_kᵀ + b_k, V W_vᵀ + b_v (one packed product for self-attention)."""
        embed_dim = self.embed_dim
        bias = self.in_proj_bias
        biases = (None, None, None) if bias is None else bias.chunk(3)
        if not self._qkv_same_embed_dim:
            weights = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        elif query is key and key is value:
            return F.linear(query, self.in_proj_weight, bias).chunk(3, dim=-1)
        elif key is value:
            q = F.linear(query, self.in_proj_weight[:embed_dim], biases[0])
            kv_bias = None if bias is None else bias[embed_dim:]
            k, v = F.linear(key, self.in_proj_weight[embed_dim:], kv_bias).chunk(2, dim=-1)
            return q, k, v
        else:
            weights = self.in_proj_weight.chunk(3)
        inputs = (query, key, value)
        q, k, v = (F.linear(x, w, b) for x, w, b in zip(inputs, weights, biases, strict=True))
        return q, k, v


def _check_batched(query: Tensor, key: Tensor, value: Tensor) -> bool:
    """torch's rank check: all three batched (3-D) or all unbatched (2-D)."""
    if query.dim() == 3 and key.dim() == 3 and value.dim() == 3:
        return True
    if query.dim() == 2 and key.dim() == 2 and value.dim() == 2:
        return False
    raise AssertionError(
        "query should be unbatched 2D or batched 3D tensor but received "
        f"{query.dim()}-D query tensor (with {key.dim()}-D key and {value.dim()}-D value)"
    )


def _each(fn, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``fn`` applied to each, keeping ``query is key`` / ``key is value`` identities (they
    select torch's packed in-projections)."""
    q = fn(query)
    k = q if key is query else fn(key)
    v = k if value is key else fn(value)
    return q, k, v


def _keep_mask(mask: Tensor | None, name: str) -> Tensor | None:
    """torch.nn.MultiheadAttention's masks (bool True = masked out, or float added) as
    attention's masks (bool True = may attend, or float added)."""
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        return mask.logical_not()
    if not mask.is_floating_point():
        raise AssertionError(f"only bool and floating types of {name} are supported")
    return mask


def _extend(mask: Tensor | None) -> Tensor | None:
    """Append one always-allowed key column (for ``bias_k``/``bias_v`` or the zero key)."""
    if mask is None:
        return None
    column = mask.new_full((*mask.shape[:-1], 1), mask.dtype == torch.bool)
    return torch.cat([mask, column], dim=-1)


def _attn_mask_4d(
    mask: Tensor | None, batch: int, heads: int, tgt_len: int, src_len: int
) -> Tensor | None:
    """A (L, S) or (N·H, L, S) attention mask as a (L, S) or (N, H, L, S) one, with torch's
    shape checks."""
    if mask is None:
        return None
    if mask.dim() == 2:
        if mask.shape != (tgt_len, src_len):
            raise RuntimeError(
                f"The shape of the 2D attn_mask is {mask.shape}, but should be "
                f"{(tgt_len, src_len)}."
            )
        return mask
    if mask.dim() == 3:
        if mask.shape != (batch * heads, tgt_len, src_len):
            raise RuntimeError(
                f"The shape of the 3D attn_mask is {mask.shape}, but should be "
                f"{(batch * heads, tgt_len, src_len)}."
            )
        return mask.view(batch, heads, tgt_len, src_len)
    raise RuntimeError(f"attn_mask's dimension {mask.dim()} is not supported")


def _merge_masks(
    attn_mask: Tensor | None, key_padding_mask: Tensor | None, dtype: torch.dtype
) -> Tensor | None:
    """One mask for attention: bool AND of keep-masks when both are bool, else the sum of their
    additive float forms (a bool keep-mask becomes 0 / −∞)."""
    masks = [m for m in (attn_mask, key_padding_mask) if m is not None]
    if len(masks) < 2:
        return masks[0] if masks else None
    if all(m.dtype == torch.bool for m in masks):
        return masks[0] & masks[1]
    additive = [
        m
        if m.is_floating_point()
        else m.new_zeros(m.shape, dtype=dtype).masked_fill(~m, -torch.inf)
        for m in masks
    ]
    return additive[0] + additive[1]


__all__ = ["MultiheadAttention"]
