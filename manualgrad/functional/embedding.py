"""Embedding lookup: row gather forward, scatter-add (``index_add``) backward."""

from __future__ import annotations

import torch
from torch import Tensor

from manualgrad.functional._function import Function


class EmbeddingFunction(Function):
    r"""Row lookup  y[..., :] = W[i[...], :],  W: (V, D),  i: integer indices of any shape.

    With G = dL/dy flattened to (n, D) and i flattened to (n,):

        dL/dW = Σ_k e_{i_k} G_kᵀ  — row i_k of the gradient accumulates G_k (index_add)
        (padding_idx p: occurrences with i_k = p contribute nothing, row p gets no gradient)
        (scale_grad_by_freq: G_k is divided by c(i_k), the count of i_k in this batch)

    sparse=True returns the same sum uncoalesced as a sparse COO (V, D) tensor, one entry per
    non-padding occurrence, as torch does (and, as torch, refuses scale_grad_by_freq with it).
    Saved: the indices only (the weight is never needed: the lookup is linear in W). No gradient
    flows to the integer indices. dL/dW is linear in G, so double backward is the gather again.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(
        input: Tensor, weight: Tensor, padding_idx: int, scale_grad_by_freq: bool, sparse: bool
    ) -> Tensor:
        return weight.index_select(0, input.reshape(-1)).reshape(*input.shape, weight.shape[1])

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, weight, padding_idx, scale_grad_by_freq, sparse = inputs
        ctx.num_weights = weight.shape[0]
        ctx.padding_idx, ctx.sparse = padding_idx, sparse
        ctx.scale_grad_by_freq = scale_grad_by_freq
        ctx.save_for_backward(input)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        if not ctx.needs_input_grad[1]:
            return None, None, None, None, None
        (input,) = ctx.saved_tensors
        indices = input.reshape(-1)
        rows = grad_output.reshape(indices.shape[0], grad_output.shape[-1])
        if ctx.scale_grad_by_freq and ctx.sparse:
            raise RuntimeError(
                "embedding_backward: scale_grad_by_freq not supported with sparse gradients"
            )
        if ctx.scale_grad_by_freq:
            counts = torch.bincount(indices, minlength=ctx.num_weights)
            rows = rows / counts[indices].unsqueeze(1).to(rows.dtype)
        shape = (ctx.num_weights, rows.shape[1])
        if ctx.sparse:
            if ctx.padding_idx >= 0:
                keep = indices != ctx.padding_idx
                indices, rows = indices[keep], rows[keep]
            grad_weight = torch.sparse_coo_tensor(
                indices.unsqueeze(0), rows, shape, check_invariants=False
            )
            return None, grad_weight, None, None, None
        if ctx.padding_idx >= 0:
            rows = rows * (indices != ctx.padding_idx).unsqueeze(1)
        grad_weight = rows.new_zeros(shape).index_add(0, indices, rows)
        return None, grad_weight, None, None, None


def renorm_rows_(weight: Tensor, input: Tensor, max_norm: float, norm_type: float) -> None:
    """torch's ``embedding_renorm_``: in place, without autograd, every row of ``weight`` that
    ``input`` references and whose ``norm_type``-norm exceeds ``max_norm`` is scaled by
    max_norm / (norm + 1e-7)."""
    with torch.no_grad():
        rows = torch.unique(input.reshape(-1)).long()  # index_copy_ takes int64 indices only
        norms = weight.index_select(0, rows).norm(norm_type, dim=1).double()
        scale = torch.where(norms > max_norm, norms.new_tensor(max_norm) / (norms + 1e-7), 1.0)
        selected = weight.index_select(0, rows) * scale.to(weight.dtype).unsqueeze(1)
        weight.detach().index_copy_(0, rows, selected)


def _check(input: Tensor, weight: Tensor, padding_idx: int | None) -> int:
    """torch's checks; returns padding_idx made non-negative (−1 when there is none)."""
    if input.dtype not in (torch.int64, torch.int32):
        raise RuntimeError(
            "Expected tensor for argument #1 'indices' to have one of the following scalar "
            f"types: Long, Int; but got {input.type()} instead (while checking arguments for "
            "embedding)"
        )
    if weight.dim() != 2:
        raise RuntimeError("'weight' must be 2-D")
    if padding_idx is None:
        return -1
    rows = weight.shape[0]
    if padding_idx >= rows > 0 or padding_idx >= 1 > rows or padding_idx < -rows:
        raise AssertionError("Padding_idx must be within num_embeddings")
    return padding_idx + rows if padding_idx < 0 else padding_idx  # 0 of no rows: as torch


def embedding(
    input: Tensor,
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """``torch.nn.functional.embedding`` with the hand-derived backward of
    :class:`EmbeddingFunction`.

    ``max_norm`` renormalises the referenced rows of ``weight`` in place before the lookup, as
    torch does (the weight is modified; the gradient treats the renormalised rows as the weight).
    Indices outside [0, V) raise ``IndexError`` like torch.
    """
    padding = _check(input, weight, padding_idx)
    if max_norm is not None:
        renorm_rows_(weight, input, max_norm, norm_type)
    return EmbeddingFunction.apply(input, weight, padding, scale_grad_by_freq, sparse)


__all__ = ["EmbeddingFunction", "embedding"]
