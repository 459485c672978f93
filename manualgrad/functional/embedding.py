"""Embedding lookup (row gather forward, scatter-add ``index_add`` backward) and bags of
lookups reduced by sum, mean or max (``embedding_bag``)."""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from manualgrad.functional._function import Function, transforms_or_tracing


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
        keep = indices != ctx.padding_idx if ctx.padding_idx >= 0 else None
        grad_weight = _weight_grad(
            indices, rows, ctx.num_weights, keep, ctx.scale_grad_by_freq, ctx.sparse
        )
        return None, grad_weight, None, None, None


def _weight_grad(
    indices: Tensor,
    rows: Tensor,
    num_weights: int,
    keep: Tensor | None,
    scale_grad_by_freq: bool,
    sparse: bool,
) -> Tensor:
    """dL/dW = Σ_k e_{i_k} R_kᵀ for the occurrences k that ``keep`` selects (all when None):
    row i_k accumulates R_k (``index_add``), or, with ``sparse``, the same sum uncoalesced as a
    sparse COO (V, D) tensor. ``scale_grad_by_freq`` first divides R_k by the count of i_k among
    all of ``indices``."""
    if scale_grad_by_freq and sparse:
        raise RuntimeError(
            "embedding_backward: scale_grad_by_freq not supported with sparse gradients"
        )
    if scale_grad_by_freq:
        counts = torch.bincount(indices, minlength=num_weights)
        rows = rows / counts[indices].unsqueeze(1).to(rows.dtype)
    shape = (num_weights, rows.shape[1])
    if sparse:
        if keep is not None:
            indices, rows = indices[keep], rows[keep]
        return torch.sparse_coo_tensor(indices.unsqueeze(0), rows, shape, check_invariants=False)
    if keep is not None:
        rows = rows * keep.unsqueeze(1)
    return _add_into(rows.new_zeros(shape), "index_add", indices, rows)


def _add_into(zeros: Tensor, method: str, index: Tensor, source: Tensor) -> Tensor:
    """``zeros.index_add(0, index, source)`` or ``.scatter_add(…)`` (``method``), written into
    ``zeros`` (a fresh tensor of the caller's) — out of place only when a transform batches
    ``source``, which cannot be written into an unbatched tensor. Either way autograd records
    it, so a double backward differentiates it."""
    if transforms_or_tracing(source):
        return getattr(zeros, method)(0, index, source)
    return getattr(zeros, f"{method}_")(0, index, source)


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


def _check_indices(indices: Tensor, op: str) -> None:
    """torch's index dtype check (int64 or int32), for the indices and the offsets alike."""
    if indices.dtype not in (torch.int64, torch.int32):
        raise RuntimeError(
            "Expected tensor for argument #1 'indices' to have one of the following scalar "
            f"types: Long, Int; but got {indices.type()} instead (while checking arguments for "
            f"{op})"
        )


def _check(input: Tensor, weight: Tensor, padding_idx: int | None) -> int:
    """torch's checks; returns padding_idx made non-negative (−1 when there is none)."""
    _check_indices(input, "embedding")
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


_MODES = ("sum", "mean", "max")


def _bag_slots(
    input: Tensor, offsets: Tensor, include_last_offset: bool, padding_idx: int
) -> tuple[Tensor, int]:
    """(slot of each index, number of bags B): slot s_k ∈ [0, B) is the bag that index k is
    reduced into — the last offset ≤ k — and s_k = B for an index no bag takes (padding_idx, or
    at or after the last offset with include_last_offset). int64, for scatter and index_add."""
    bags = offsets.shape[0] - int(include_last_offset)
    positions = torch.arange(input.shape[0], device=input.device)
    slots = torch.searchsorted(offsets.long(), positions, right=True) - 1
    if offsets.shape[0] == 0:  # no bags: every index gets slot B = 0 (offsets[0] = 0 otherwise)
        slots = slots.clamp_min(0)
    if padding_idx >= 0:
        slots = slots.masked_fill(input == padding_idx, bags)
    return slots, bags


def _bag_sizes(slots: Tensor, bags: int) -> Tensor:
    """c_b: how many indices each bag reduces (padding excluded), int64 of shape (B,)."""
    counts = torch.zeros(bags + 1, dtype=slots.dtype, device=slots.device)
    return counts.index_add(0, slots, torch.ones_like(slots))[:bags]


def _bag_argmax(padded: Tensor, slots: Tensor, bags: int) -> Tensor:
    """For mode="max", from the gathered rows R (``padded``: R and a zero row after them):
    the position k of the index that supplies entry d of bag b, as torch's kernel picks it (a
    running maximum from the bag's first index, replaced only by a strictly larger entry): the
    first position reaching the bag's largest entry, a NaN never winning unless it is the
    bag's first, which then stays; n (the zero row) for an empty bag. Shape (B, D)."""
    rows = padded[:-1]
    count, dim = rows.shape
    index = slots.unsqueeze(1).expand(count, dim)
    positions = torch.arange(count, device=rows.device).unsqueeze(1).expand(count, dim)
    never = torch.full((bags + 1, dim), count, dtype=torch.int64, device=rows.device)
    # eager: the NaN rules cost only rows that may hold NaN (a NaN sum: NaN, or inf − inf),
    # with the same result either way; bool reductions are slow on CPU, a float sum is not
    with_nan = transforms_or_tracing(rows) or bool(rows.sum().isnan())
    values = rows.masked_fill(rows.isnan(), float("-inf")) if with_nan else rows
    best = values.new_zeros(bags + 1, dim).scatter_reduce(
        0, index, values, "amax", include_self=False
    )
    reaching = torch.where(values == best.gather(0, index), positions, count)
    first = never.scatter_reduce(0, index, reaching, "amin")
    if with_nan:
        leads = never.scatter_reduce(0, index, positions, "amin")  # each bag's first position
        first = torch.where(padded.gather(0, leads).isnan(), leads, first)
    return first[:bags]


class EmbeddingBagFunction(Function):
    r"""Bags of rows  y_b = ⊕_{k ∈ bag b} w_k W[i_k, :],  W: (V, D),  i: (n,) indices,
    offsets o: bag b holds positions o_b ≤ k < o_{b+1}; ⊕ is Σ (mode "sum", w_k the
    per_sample_weights, else 1), Σ/c_b (mode "mean", c_b the bag's size) or the entry-wise max
    (mode "max"). Indices equal to padding_idx, and those at or after the last offset with
    include_last_offset, belong to no bag; an empty bag gives a zero row.

    Forward: gather R = W[i] (n, D), then a segment reduction over each index's bag id s_k
    (``index_add`` for the sums; ``scatter_reduce`` amax, then the first position reaching it,
    for the max, whose winners m[b, d] — the row of W that supplies y[b, d] — are the second,
    integer output).

    Saved: sum/mean: the indices and the offsets (the bag ids s_k and sizes c_b are recomputed
    from them in backward — never the gathered rows), plus per_sample_weights when W needs a
    gradient and W when per_sample_weights does; max: the winners m only (B × D integers).

    With G = dL/dy (B, D):

        sum:   dL/dW[v] = Σ_{k: i_k = v} w_k G[s_k]         dL/dw_k = ⟨W[i_k], G[s_k]⟩
        mean:  dL/dW[v] = Σ_{k: i_k = v} G[s_k] / c_{s_k}
        max:   dL/dW[v, d] = Σ_{b: m[b, d] = v} G[b, d]      (the winner takes the gradient)

    (``index_add`` of the gathered rows G[s] as in :class:`EmbeddingFunction`, a zero row
    standing for the indices no bag takes; ``scatter_add`` into V + 1 rows for the max, the
    last dropped). scale_grad_by_freq divides each occurrence's contribution by the count of
    i_k in ``input``; sparse=True returns the contributions uncoalesced as a sparse COO tensor,
    as torch does. Both gradients are linear in G (and dL/dw bilinear in W and G), so the double
    backward is these gathers and sums again. No gradient flows to the integer inputs.

    Where torch 2.13's CPU kernel departs from this definition (each bag's own indices), this
    follows the definition: its scale_grad_by_freq divides an index by the count of another
    index of the sorted list when counts differ, and with include_last_offset it reduces the
    indices after the last offset into the last bag (forward of mean and max, every backward).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(
        input: Tensor,
        weight: Tensor,
        offsets: Tensor,
        per_sample_weights: Tensor | None,
        mode: str,
        include_last_offset: bool,
        padding_idx: int,
        scale_grad_by_freq: bool,
        sparse: bool,
    ) -> tuple[Tensor, Tensor]:
        slots, bags = _bag_slots(input, offsets, include_last_offset, padding_idx)
        rows = weight.index_select(0, input)
        if mode == "max":
            padded = torch.cat([rows, rows.new_zeros(1, rows.shape[1])])
            first = _bag_argmax(padded, slots, bags)
            rows_of = torch.cat([input.long(), input.new_full((1,), weight.shape[0]).long()])
            return padded.gather(0, first), rows_of[first]
        if per_sample_weights is not None:
            rows = rows * per_sample_weights.unsqueeze(1)
        sums = _add_into(rows.new_zeros(bags + 1, weight.shape[1]), "index_add", slots, rows)
        output = sums[:bags]
        if mode == "mean":
            output = output / _bag_sizes(slots, bags).clamp_min(1).unsqueeze(1).to(output.dtype)
        return output, slots.new_empty(0)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, weight, offsets, per_sample_weights, mode = inputs[:5]
        ctx.include_last_offset, ctx.padding_idx, ctx.scale_grad_by_freq, ctx.sparse = inputs[5:]
        ctx.mode, ctx.num_weights = mode, weight.shape[0]
        winners = output[1]
        ctx.mark_non_differentiable(winners)
        if mode == "max":
            ctx.save_for_backward(winners)
            return
        needs_weight, needs_psw = ctx.needs_input_grad[1], ctx.needs_input_grad[3]
        ctx.save_for_backward(
            input,
            offsets,
            weight if needs_psw else None,
            per_sample_weights if needs_weight else None,
        )

    @staticmethod
    def backward(ctx, grad_output: Tensor, grad_winners: Tensor | None):
        options = (None,) * 5  # mode, include_last_offset, padding_idx, scale_grad…, sparse
        if ctx.mode == "max":
            if not ctx.needs_input_grad[1]:
                return None, None, None, None, *options
            (winners,) = ctx.saved_tensors
            zeros = grad_output.new_zeros(ctx.num_weights + 1, grad_output.shape[1])
            grad_weight = _add_into(zeros, "scatter_add", winners, grad_output)[:-1]
            return None, grad_weight, None, None, *options
        input, offsets, weight, per_sample_weights = ctx.saved_tensors
        slots, bags = _bag_slots(input, offsets, ctx.include_last_offset, ctx.padding_idx)
        per_bag = grad_output
        if ctx.mode == "mean":
            sizes = _bag_sizes(slots, bags).clamp_min(1).unsqueeze(1)
            per_bag = grad_output / sizes.to(grad_output.dtype)
        per_bag = torch.cat([per_bag, per_bag.new_zeros(1, per_bag.shape[1])])
        rows = per_bag.index_select(0, slots)  # G[s_k]; zero for the indices no bag takes
        grad_weight = grad_psw = None
        if ctx.needs_input_grad[1]:
            weighted = rows if per_sample_weights is None else rows * per_sample_weights[:, None]
            keep = slots < bags if ctx.sparse else None  # dense: their rows are zero already
            grad_weight = _weight_grad(
                input, weighted, ctx.num_weights, keep, ctx.scale_grad_by_freq, ctx.sparse
            )
        if ctx.needs_input_grad[3]:
            grad_psw = (weight.index_select(0, input) * rows).sum(1)
        return None, grad_weight, None, grad_psw, *options


def _check_bags(
    input: Tensor,
    weight: Tensor,
    offsets: Tensor,
    per_sample_weights: Tensor | None,
    include_last_offset: bool,
    padding_idx: int | None,
) -> int:
    """torch's checks of 1-d indices and offsets (the data ones only outside transforms and
    tracing, which cannot read data); returns padding_idx made non-negative (−1: none)."""
    _check_indices(input, "embedding_bag")
    _check_indices(offsets, "embedding_bag")
    if per_sample_weights is not None and per_sample_weights.dtype != weight.dtype:
        raise RuntimeError(
            "Expected tensor for argument #1 'weight' to have the same type as tensor for "
            f"argument #1 'per_sample_weights'; but type {weight.type()} does not equal "
            f"{per_sample_weights.type()} (while checking arguments for embedding_bag)"
        )
    if include_last_offset and offsets.shape[0] < 1:
        raise RuntimeError("include_last_offset: number of offset should be at least 1")
    rows = weight.shape[0]
    if padding_idx is not None and not -rows <= padding_idx < rows:
        raise RuntimeError(
            f"padding_idx must be within the number of embeddings, -{rows} through {rows - 1}, "
            f"but got {padding_idx}"
        )
    if not transforms_or_tracing(input, offsets) and offsets.shape[0] > 0:
        first, last = int(offsets[0]), int(offsets[-1])
        if first != 0:
            raise RuntimeError(
                "offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to "
                f"start from position 0. However, got {first}"
            )
        if last > input.shape[0]:
            raise RuntimeError(
                f"offsets[-1] can not be greater than input's length {input.shape[0]} but got "
                f"offsets[-1] of {last}"
            )
        if (offsets.diff() < 0).any():  # offsets[0] = 0: a negative offset is a decrease too
            if (offsets < 0).any():
                raise IndexError("embedding_bag: offsets hold a negative position")
            raise RuntimeError("embedding_bag: offsets must be non-decreasing")
    if not transforms_or_tracing(input) and input.numel() > 0:
        low, high = (int(bound) for bound in input.aminmax())
        if low < 0 or high >= rows:
            raise RuntimeError(
                f"embedding_bag: input holds index {low if low < 0 else high}, out of range "
                f"for a weight of {rows} rows"
            )
    if padding_idx is None:
        return -1
    return padding_idx + rows if padding_idx < 0 else padding_idx


def embedding_bag(
    input: Tensor,
    weight: Tensor,
    offsets: Tensor | None = None,
    max_norm: float | None = None,
    norm_type: float = 2,
    scale_grad_by_freq: bool = False,
    mode: str = "mean",
    sparse: bool = False,
    per_sample_weights: Tensor | None = None,
    include_last_offset: bool = False,
    padding_idx: int | None = None,
) -> Tensor:
    """``torch.nn.functional.embedding_bag`` with the hand-derived backward of
    :class:`EmbeddingBagFunction`: the sums, means or maxima of bags of rows of ``weight``.

    A 2-d ``input`` (B, N) is B bags of N indices (``offsets`` must be None); a 1-d ``input``
    is cut into bags at ``offsets`` (with ``include_last_offset``, the last offset ends the last
    bag, as in CSR). ``per_sample_weights`` (mode="sum" only) scales each index's row and gets a
    gradient; ``padding_idx`` is left out of every bag and of the mean's count; ``max_norm``
    renormalises the referenced rows in place first, as torch does. Bad calls raise torch's
    exceptions.
    """
    if weight.dtype == torch.long and input.is_floating_point():
        warnings.warn(
            "Argument order of nn.functional.embedding_bag was changed. "
            "Usage `embedding_bag(weight, input, ...)` is deprecated, "
            "and should now be `embedding_bag(input, weight, ...)`.",
            stacklevel=2,
        )
        weight, input = input, weight
    if per_sample_weights is not None and input.size() != per_sample_weights.size():
        raise ValueError(
            f"embedding_bag: If per_sample_weights ({per_sample_weights.shape}) is not None, "
            f"then it must have the same shape as the input ({input.shape})"
        )
    if weight.dim() != 2:
        raise ValueError(
            f"weight has to be a 2D Tensor, but got Tensor of dimension {weight.dim()}"
        )
    if input.dim() == 2:
        if offsets is not None:
            raise ValueError(
                "if input is 2D, then offsets has to be None, as input is treated is a "
                "mini-batch of fixed length sequences. However, found offsets of type "
                f"{type(offsets)}"
            )
        offsets = torch.arange(
            0, input.numel(), input.size(1), dtype=input.dtype, device=input.device
        )
        include_last_offset = False
        input = input.reshape(-1)
        if per_sample_weights is not None:
            per_sample_weights = per_sample_weights.reshape(-1)
    elif input.dim() == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        if offsets.dim() != 1:
            raise ValueError("offsets has to be a 1D Tensor")
    else:
        raise ValueError(
            f"input has to be 1D or 2D Tensor, but got Tensor of dimension {input.dim()}"
        )
    if mode not in _MODES:
        raise ValueError("mode has to be one of sum, mean or max")
    if mode == "max" and scale_grad_by_freq:
        raise ValueError("max mode does not support scaling the gradient by the frequency")
    if mode == "max" and sparse:
        raise ValueError("max mode does not support sparse weights")
    if max_norm is not None:
        renorm_rows_(weight, input, max_norm, norm_type)
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(
            "embedding_bag: per_sample_weights was not None. "
            "per_sample_weights is only supported for mode='sum' "
            f"(got mode='{mode}'). Please open a feature request on GitHub."
        )
    padding = _check_bags(
        input, weight, offsets, per_sample_weights, include_last_offset, padding_idx
    )
    return EmbeddingBagFunction.apply(
        input,
        weight,
        offsets,
        per_sample_weights,
        mode,
        include_last_offset,
        padding,
        scale_grad_by_freq,
        sparse,
    )[0]


def embedding_bag_aten(
    weight: Tensor,
    indices: Tensor,
    offsets: Tensor,
    scale_grad_by_freq: bool = False,
    mode: int = 0,
    sparse: bool = False,
    per_sample_weights: Tensor | None = None,
    include_last_offset: bool = False,
    padding_idx: int | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``torch.embedding_bag`` (aten's form: weight first, ``mode`` 0/1/2 for sum/mean/max,
    1-d indices and offsets) through :class:`EmbeddingBagFunction`; what
    :func:`manualgrad.hand_derived` routes that call to. Kept out of ``__all__``, whose names
    are routed by name: ``torch.nn.functional.embedding_bag`` is :func:`embedding_bag`.

    Returns torch's four tensors: the bags; offset2bag, each index's bag (empty for mode sum
    without padding_idx); bag_size, each bag's count of indices other than padding_idx (zeros
    for mode sum); max_indices, the winning rows (B, D) for mode max (0 for an empty bag), else
    bag_size again. The three are integers of the indices' dtype, without gradient.
    """
    if mode not in range(len(_MODES)):
        raise RuntimeError("`mode` must be sum, mean, or max.")
    if offsets.dim() != 1:
        raise RuntimeError(
            f"offsets has to be a 1D Tensor, but got Tensor of dimension {offsets.dim()}"
        )
    if per_sample_weights is not None and mode != 0:
        raise RuntimeError("embedding_bag: per_sample_weights only supported with mode='sum'")
    if per_sample_weights is not None and per_sample_weights.numel() != indices.numel():
        raise RuntimeError("embedding_bag: per_sample_weights must have one weight per index")
    padding = _check_bags(
        indices, weight, offsets, per_sample_weights, include_last_offset, padding_idx
    )
    output, winners = EmbeddingBagFunction.apply(
        indices,
        weight,
        offsets,
        per_sample_weights,
        _MODES[mode],
        include_last_offset,
        padding,
        scale_grad_by_freq,
        sparse,
    )
    slots, bags = _bag_slots(indices, offsets, include_last_offset, padding)
    sizes = _bag_sizes(slots, bags).to(indices.dtype)
    if mode == 0:
        sizes = torch.zeros_like(sizes)
    if mode == 0 and padding < 0:
        offset2bag = indices.new_empty(0)
    else:
        offset2bag = _bag_slots(indices, offsets, include_last_offset, -1)[0].to(indices.dtype)
    if mode == 2:
        max_indices = winners.masked_fill(winners == weight.shape[0], 0).to(indices.dtype)
    else:
        max_indices = sizes.clone()
    return output, offset2bag, sizes, max_indices


__all__ = ["EmbeddingBagFunction", "EmbeddingFunction", "embedding", "embedding_bag"]
