"""Copies and indexing: forward, what is saved, and where each gradient element goes back to.

Every op twins the ``torch`` function (or ``Tensor`` method) of the same name and signature:

==============  =============================================================================
op              twins
==============  =============================================================================
cat (= concat)  torch.cat / torch.concat (legacy 1-d empty tensors are skipped, as torch)
stack           torch.stack
gather          torch.gather, Tensor.gather (``sparse_grad`` accepted, the gradient is dense)
scatter         torch.scatter, Tensor.scatter (``src`` a tensor, or ``value`` a number;
                ``reduce`` only without gradients)
scatter_add     torch.scatter_add, Tensor.scatter_add
index_select    torch.index_select, Tensor.index_select
index           ``Tensor.__getitem__`` with tensor (or list) indices: ``x[idx]``, ``x[:, idx]``,
                ``x[mask]``, ``x[i, j]``, mixed with ints, slices, None and ``...``; the basic
                part (ints, slices, None, ``...``) is torch's views, the tensor part this Function
pad             torch.nn.functional.pad: 'constant' (negative pads crop), 'reflect',
                'replicate', 'circular'
repeat          Tensor.repeat (``repeat(input, *sizes)``)
roll            torch.roll, Tensor.roll
flip            torch.flip, Tensor.flip
tril, triu      torch.tril / torch.triu, Tensor methods
==============  =============================================================================

All of them move or copy elements, so every gradient is the adjoint move: split, unbind,
scatter-add, index-add, crop, sum over the copies, roll back, mask again — built from plain
tensor ops, hence differentiable again. Integer index tensors are saved (as torch does); the
data is never saved.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from numbers import Number

import torch
from torch import Tensor

from manualgrad.functional._function import Function


def _is_legacy_empty(tensor: Tensor, output: Tensor) -> bool:
    """torch.cat skips 1-d empty tensors whatever the other operands' rank."""
    return tensor.dim() == 1 and tensor.numel() == 0 and output.dim() != 1


class CatFunction(Function):
    r"""Concatenation along ``dim``.  y = [x₁ | x₂ | … ] .

    Each x_k occupies its own slice of y: dL/dx_k is that slice of dL/dy.
    Saved: nothing (the sizes along dim).
    dL/dx_k = split(dL/dy, sizes, dim)[k].
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(dim: int, *tensors: Tensor) -> Tensor:
        return torch.cat(tensors, dim)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        dim, *tensors = inputs
        ctx.dim = dim
        ctx.shapes = [t.shape for t in tensors]
        ctx.sizes = [0 if _is_legacy_empty(t, output) else t.shape[dim] for t in tensors]

    @staticmethod
    def backward(ctx, grad: Tensor):
        pieces = grad.split(ctx.sizes, ctx.dim)
        return None, *(
            piece if piece.shape == shape else piece.reshape(shape)
            for piece, shape in zip(pieces, ctx.shapes, strict=True)
        )


class StackFunction(Function):
    r"""Stacking along a new ``dim``.  y[…, k, …] = x_k.

    Saved: nothing.
    dL/dx_k = dL/dy selected at k along dim (``unbind``).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(dim: int, *tensors: Tensor) -> Tensor:
        return torch.stack(tensors, dim)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.dim = inputs[0]

    @staticmethod
    def backward(ctx, grad: Tensor):
        return None, *grad.unbind(ctx.dim)


class GatherFunction(Function):
    r"""Gather along ``dim``, element by element (``gather``, ``slices`` False:
    y[i][j][k] = x[i][index[i][j][k]][k] for dim = 1) or whole slices (``index_select``,
    ``slices`` True: y[…, k, …] = x[…, index[k], …]).

    Every y element is one x element; an x element picked several times gets the sum.
    Saved: index.
    dL/dx = zeros with dL/dy added at index along dim (``scatter_add`` for gather,
    ``index_add`` for index_select).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, dim: int, index: Tensor, slices: bool) -> Tensor:
        return (torch.index_select if slices else torch.gather)(input, dim, index)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, ctx.dim, index, ctx.slices = inputs
        ctx.shape = input.shape
        ctx.save_for_backward(index)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (index,) = ctx.saved_tensors
        zeros = grad.new_zeros(ctx.shape)
        add = zeros.index_add if ctx.slices else zeros.scatter_add
        return add(ctx.dim, index, grad), None, None, None


class ScatterFunction(Function):
    r"""Scatter along ``dim``: y = x, then y[i][index[i][j]] = s[i][j] (``scatter``; s = src or
    a number ``value``) or += s[i][j] (``scatter_add``, ``accumulate`` True)   (dim = 1 shown).

    An overwritten x element does not reach y (scatter); an added-to one passes unchanged
    (scatter_add). Each s element reaches y once.
    Saved: index.
    dL/dx = dL/dy with 0 written at index (scatter) or dL/dy (scatter_add),
    dL/ds = dL/dy gathered at index.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(
        input: Tensor, dim: int, index: Tensor, src: Tensor | Number, accumulate: bool
    ) -> Tensor:
        return (torch.scatter_add if accumulate else torch.scatter)(input, dim, index, src)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.dim, ctx.accumulate = inputs[1], inputs[4]
        ctx.save_for_backward(inputs[2])

    @staticmethod
    def backward(ctx, grad: Tensor):
        (index,) = ctx.saved_tensors
        needs_input, _, _, needs_src, _ = ctx.needs_input_grad
        grad_input = None
        if needs_input:
            grad_input = grad if ctx.accumulate else grad.scatter(ctx.dim, index, 0)
        grad_src = grad.gather(ctx.dim, index) if needs_src else None
        return grad_input, None, None, grad_src, None


class IndexFunction(Function):
    r"""Advanced indexing of the leading dims.  y = x[i₁, …, i_k]  (integer or bool tensors,
    broadcast together; :func:`index` brings every other key to this form with views).

    Every y element is one x element; one picked several times gets the sum.
    Saved: the index tensors.
    dL/dx = zeros with dL/dy accumulated at (i₁, …, i_k) (``index_put``, accumulate=True).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, *indices: Tensor) -> Tensor:
        return input[indices]

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, *indices = inputs
        ctx.shape = input.shape
        ctx.save_for_backward(*indices)

    @staticmethod
    def backward(ctx, grad: Tensor):
        indices = ctx.saved_tensors
        grad_input = grad.new_zeros(ctx.shape).index_put(indices, grad, accumulate=True)
        return grad_input, *(None for _ in indices)


class PadFunction(Function):
    r"""Padding of the last len(pad)/2 dims: ``pad`` = (left_last, right_last, left_prev, …).

    Each output element is one input element or the constant:
        constant   y = [v…v | x | v…v]   (negative pads crop)
        reflect    y_j = x_{r(j)},  r(j) = |j| mirrored at both ends (edge not repeated)
        replicate  y_j = x_{clamp(j, 0, n−1)}
        circular   y_j = x_{j mod n}   (negative pads crop first)
    Saved: nothing (the pads and sizes; index maps are rebuilt in backward).
    dL/dx = constant: dL/dy with the pads negated (the padding cropped, a crop padded with 0);
            the others: for each padded dim, zeros with dL/dy index-added at the source index
            (an element copied to several places gets the sum).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, pad: tuple[int, ...], mode: str, value: float) -> Tensor:
        output = input
        for dim, left, right in _padded_dims(input.dim(), pad):
            if mode == "constant":
                output = _constant_pad(output, dim, left, right, value)
            else:
                source = _source_index(output.shape[dim], left, right, mode, output.device)
                output = output.index_select(dim, source)
        return output

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, ctx.pad, ctx.mode, _ = inputs
        ctx.shape = input.shape

    @staticmethod
    def backward(ctx, grad: Tensor):
        for dim, left, right in _padded_dims(len(ctx.shape), ctx.pad):
            if ctx.mode == "constant":
                grad = _constant_pad(grad, dim, -left, -right, 0.0)
            else:
                size = ctx.shape[dim]
                index = _source_index(size, left, right, ctx.mode, grad.device)
                zeros = grad.new_zeros((*grad.shape[:dim], size, *grad.shape[dim + 1 :]))
                grad = zeros.index_add(dim, index, grad)
        return grad, None, None, None


def _padded_dims(ndim: int, pad: Sequence[int]) -> list[tuple[int, int, int]]:
    """(dim, left, right) for each padded dim, the last dim first."""
    return [(ndim - 1 - k, pad[2 * k], pad[2 * k + 1]) for k in range(len(pad) // 2)]


def _constant_pad(tensor: Tensor, dim: int, left: int, right: int, value: float) -> Tensor:
    """``tensor`` cropped by the negative pads and extended with ``value`` by the positive ones
    along ``dim`` (out of place: ``narrow`` and ``cat``)."""
    size = tensor.shape[dim]
    start, stop = max(-left, 0), size - max(-right, 0)
    core = tensor.narrow(dim, start, max(stop - start, 0))
    if left <= 0 and right <= 0:
        return core

    def fill(width: int) -> Tensor:
        shape = (*core.shape[:dim], width, *core.shape[dim + 1 :])
        return core.new_full(shape, value)

    return torch.cat([fill(max(left, 0)), core, fill(max(right, 0))], dim)


def _source_index(size: int, left: int, right: int, mode: str, device: torch.device) -> Tensor:
    """The input index each output position along a padded dim copies (see PadFunction):
    positions j ∈ [−left, n + right) mirrored (reflect) or clamped (replicate); circular crops
    the negative pads first and wraps around what is left, as torch does."""
    if mode == "circular":
        start = max(-left, 0)
        kept = size - start - max(-right, 0)
        positions = torch.arange(-max(left, 0), kept + max(right, 0), device=device)
        return positions.remainder(kept) + start
    positions = torch.arange(-left, size + right, device=device)
    if mode == "replicate":
        return positions.clamp(0, size - 1)
    return (size - 1) - ((size - 1) - positions.abs()).abs()  # reflect: mirror at 0 and n − 1


class RepeatFunction(Function):
    r"""Tiling.  y = x repeated r_d times along each dim d (``Tensor.repeat``; extra leading
    repeats add dims).

    y viewed as (r₀, s₀, r₁, s₁, …) holds one copy of x per (r₀, r₁, …) index.
    Saved: nothing.
    dL/dx = dL/dy viewed as (r₀, s₀, r₁, s₁, …) summed over the r axes.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, repeats: tuple[int, ...]) -> Tensor:
        return input.repeat(repeats)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, ctx.repeats = inputs
        ctx.shape = input.shape

    @staticmethod
    def backward(ctx, grad: Tensor):
        sizes = (1,) * (len(ctx.repeats) - len(ctx.shape)) + tuple(ctx.shape)
        interleaved = [n for pair in zip(ctx.repeats, sizes, strict=True) for n in pair]
        copies = tuple(range(0, len(interleaved), 2))
        return grad.reshape(interleaved).sum(copies).reshape(ctx.shape), None


class RollFunction(Function):
    r"""Roll.  y = x shifted cyclically by ``shifts`` along ``dims`` (flattened when None).

    A permutation: its adjoint is the inverse permutation, the roll by −shifts.
    Saved: nothing.
    dL/dx = roll(dL/dy, −shifts, dims).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, shifts: int | tuple[int, ...], dims: int | tuple | None) -> Tensor:
        return torch.roll(input, shifts, dims)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _, shifts, ctx.dims = inputs
        ctx.back = -shifts if isinstance(shifts, int) else tuple(-s for s in shifts)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return torch.roll(grad, ctx.back, ctx.dims), None, None


class FlipFunction(Function):
    r"""Reversal along ``dims``.  y[…, i, …] = x[…, n − 1 − i, …].

    A permutation that is its own inverse: its adjoint is the same flip.
    Saved: nothing.
    dL/dx = flip(dL/dy, dims).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, dims: tuple[int, ...]) -> Tensor:
        return torch.flip(input, dims)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.dims = inputs[1]

    @staticmethod
    def backward(ctx, grad: Tensor):
        return torch.flip(grad, ctx.dims), None


class TriangleFunction(Function):
    r"""Lower / upper triangle (``upper`` picks ``triu``) of the last two dims, from the
    ``diagonal``-th diagonal.  y = x · M,  M the 0/1 triangle mask.

    Linear with a constant mask, so the gradient is masked the same way.
    Saved: nothing.
    dL/dx = tril(dL/dy, diagonal)   (triu for triu).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, diagonal: int, upper: bool) -> Tensor:
        return (torch.triu if upper else torch.tril)(input, diagonal)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _, ctx.diagonal, ctx.upper = inputs

    @staticmethod
    def backward(ctx, grad: Tensor):
        return (torch.triu if ctx.upper else torch.tril)(grad, ctx.diagonal), None, None


# --- the torch-named functional ops ----------------------------------------------------------


def cat(tensors: Sequence[Tensor], dim: int = 0, *, out: Tensor | None = None) -> Tensor:
    """``torch.cat`` with the hand-derived backward of :class:`CatFunction`."""
    if out is not None:
        return torch.cat(tensors, dim, out=out)
    return CatFunction.apply(dim, *tensors)


def stack(tensors: Sequence[Tensor], dim: int = 0, *, out: Tensor | None = None) -> Tensor:
    """``torch.stack`` with the hand-derived backward of :class:`StackFunction`."""
    if out is not None:
        return torch.stack(tensors, dim, out=out)
    return StackFunction.apply(dim, *tensors)


def gather(
    input: Tensor,
    dim: int,
    index: Tensor,
    *,
    sparse_grad: bool = False,
    out: Tensor | None = None,
) -> Tensor:
    """``torch.gather`` with the hand-derived backward of :class:`GatherFunction` (the gradient
    is dense whatever ``sparse_grad`` says)."""
    if out is not None:
        return torch.gather(input, dim, index, out=out)
    return GatherFunction.apply(input, dim, index, False)


def scatter(
    input: Tensor,
    dim: int,
    index: Tensor,
    src: Tensor | Number | None = None,
    *,
    value: Number | None = None,
    reduce: str | None = None,
    out: Tensor | None = None,
) -> Tensor:
    """``torch.scatter`` (``src`` a tensor, or a number ``value``), hand-derived backward.
    ``reduce`` (torch defines no gradient for it) runs torch's op when nothing needs a
    gradient and raises ``NotImplementedError`` otherwise."""
    if src is None:
        if value is None:
            raise TypeError("scatter(): give `src` (a tensor) or `value` (a number)")
        src = value
    if reduce is not None or out is not None:
        wants_grad = any(isinstance(t, Tensor) and t.requires_grad for t in (input, src))
        if reduce is not None and wants_grad and torch.is_grad_enabled():
            raise NotImplementedError("scatter(): `reduce` has no gradient (use scatter_reduce)")
        extra = {} if reduce is None else {"reduce": reduce}
        return torch.scatter(input, dim, index, src, **extra, out=out)
    return ScatterFunction.apply(input, dim, index, src, False)


def scatter_add(
    input: Tensor, dim: int, index: Tensor, src: Tensor, *, out: Tensor | None = None
) -> Tensor:
    """``torch.scatter_add`` with the hand-derived backward of :class:`ScatterFunction`."""
    if out is not None:
        return torch.scatter_add(input, dim, index, src, out=out)
    return ScatterFunction.apply(input, dim, index, src, True)


def index_select(input: Tensor, dim: int, index: Tensor, *, out: Tensor | None = None) -> Tensor:
    """``torch.index_select`` with the hand-derived backward of :class:`GatherFunction`."""
    if out is not None:
        return torch.index_select(input, dim, index, out=out)
    return GatherFunction.apply(input, dim, index, True)


def _advanced_key(key: object) -> tuple | None:
    """``key`` as a tuple with lists turned into tensors, or None when it holds no tensor (or
    holds a Python bool or a 0-d bool tensor, which :func:`index` leaves to torch)."""
    items = key if isinstance(key, tuple) else (key,)
    items = tuple(torch.tensor(k) if isinstance(k, list) else k for k in items)
    if not any(isinstance(k, Tensor) for k in items):
        return None
    if any(isinstance(k, bool) or (isinstance(k, Tensor) and _mask_rank(k) == 0) for k in items):
        return None
    return items


def _mask_rank(item: Tensor) -> int | None:
    """The number of dims a bool mask index covers; None for an integer index."""
    return item.dim() if item.dtype == torch.bool else None


def _span(item: object) -> int:
    """How many input dims one key item consumes (None and ``...``: none)."""
    if item is None or item is Ellipsis:
        return 0
    rank = _mask_rank(item) if isinstance(item, Tensor) else None
    return 1 if rank is None else rank


def index(input: Tensor, indices: object) -> Tensor:
    """``input[indices]`` (``Tensor.__getitem__``) with a hand-derived backward for the tensor
    indices (:class:`IndexFunction`). Ints, slices, None and ``...`` are applied first, as
    torch's views (torch does the same: an int is a ``select``, not an index tensor); the dims
    indexed by tensors are then moved to the front (a view), indexed, and the indexed block put
    where torch puts it: where the first tensor index was when the tensor indices are
    adjacent, in front otherwise. A key without tensors is plain torch indexing."""
    key = _advanced_key(indices)
    if key is None:
        return input[indices]
    ellipsis_dims = input.dim() - sum(_span(item) for item in key)
    view, dim, slots = input, 0, {}
    for item in key:
        if item is None:
            view, dim = view.unsqueeze(dim), dim + 1
        elif item is Ellipsis:
            dim += ellipsis_dims
        elif isinstance(item, int):
            view = view.select(dim, item)
        elif isinstance(item, slice):
            view, dim = view[(slice(None),) * dim + (item,)], dim + 1
        else:
            slots[dim] = item
            dim += _span(item)
    return _index_slots(view, slots)


def _index_slots(view: Tensor, slots: dict[int, Tensor]) -> Tensor:
    """``view`` indexed by tensors at the dims ``slots`` names (see :func:`index`)."""
    starts = sorted(slots)
    spans = [(start, start + _span(slots[start])) for start in starts]
    indexed = [d for start, stop in spans for d in range(start, stop)]
    rest = [d for d in range(view.dim()) if d not in indexed]
    result = IndexFunction.apply(view.permute(*indexed, *rest), *(slots[s] for s in starts))
    adjacent = all(stop == following for (_, stop), (following, _) in itertools.pairwise(spans))
    if adjacent and starts[0] > 0:
        block = result.dim() - len(rest)
        result = result.movedim(tuple(range(block)), tuple(range(starts[0], starts[0] + block)))
    return result


_NON_CONSTANT_RANKS = {2: (2, 3), 4: (3, 4), 6: (4, 5)}


def _check_pad(input: Tensor, pad: Sequence[int], mode: str, value: float | None) -> None:
    """torch's checks on F.pad's arguments, its exception types, messages naming them."""
    if len(pad) % 2:
        raise RuntimeError(f"pad: `pad` length must be divisible by 2, got {len(pad)}")
    if len(pad) > 2 * input.dim():
        raise RuntimeError(
            f"pad: `pad` length should be at most two times the input dimension, got {len(pad)} "
            f"for a {input.dim()}-d `input`"
        )
    if mode == "constant":
        for dim, left, right in _padded_dims(input.dim(), pad):
            if input.shape[dim] - max(-left, 0) - max(-right, 0) < 0:
                raise RuntimeError(
                    f"pad: negative `pad` ({left}, {right}) crops more than the size "
                    f"{input.shape[dim]} of dimension {dim}"
                )
        return
    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(f"pad: unrecognised padding `mode` {mode}")
    if value is not None and value != 0:
        raise RuntimeError(f'pad: padding `mode` "{mode}" doesn\'t take in `value` argument')
    if input.dim() not in _NON_CONSTANT_RANKS.get(len(pad), ()):
        raise NotImplementedError(
            f"pad: `pad` of size {len(pad)} is not supported for {input.dim()}-d `input` with "
            f"mode {mode!r} (2-d or 3-d input: size 2; 3-d or 4-d: 4; 4-d or 5-d: 6)"
        )
    first = 1 if input.dim() == len(pad) // 2 + 2 else 0  # a batch dim may be empty
    if mode != "circular" and 0 in input.shape[first:]:
        raise RuntimeError(
            f"pad: `input` of shape {list(input.shape)} must have non-zero dimensions other "
            f"than the batch for mode {mode!r}"
        )
    for dim, left, right in _padded_dims(input.dim(), pad):
        size = input.shape[dim]
        too_wide = max(left, right) >= size if mode == "reflect" else max(left, right) > size
        if too_wide and mode != "replicate":
            raise RuntimeError(
                f"pad: `pad` ({left}, {right}) at dimension {dim} is too large for size {size} "
                f"in mode {mode!r}"
            )


def pad(
    input: Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None
) -> Tensor:
    """``torch.nn.functional.pad`` ('constant', 'reflect', 'replicate', 'circular') with the
    hand-derived backward of :class:`PadFunction`."""
    _check_pad(input, pad, mode, value)
    return PadFunction.apply(input, tuple(pad), mode, 0.0 if value is None else value)


def repeat(input: Tensor, *sizes: int | Sequence[int]) -> Tensor:
    """``Tensor.repeat(*sizes)`` (sizes as ints or one sequence), hand-derived backward."""
    repeats = tuple(sizes[0]) if len(sizes) == 1 and not isinstance(sizes[0], int) else sizes
    if len(repeats) < input.dim():
        raise RuntimeError(
            "repeat: number of dimensions of repeat dims (`sizes`) can not be smaller than "
            "number of dimensions of tensor"
        )
    return RepeatFunction.apply(input, tuple(repeats))


def roll(
    input: Tensor, shifts: int | Sequence[int], dims: int | Sequence[int] | None = None
) -> Tensor:
    """``torch.roll`` with the hand-derived backward of :class:`RollFunction`."""
    shifts = shifts if isinstance(shifts, int) else tuple(shifts)
    dims = dims if dims is None or isinstance(dims, int) else tuple(dims)
    return RollFunction.apply(input, shifts, dims)


def flip(input: Tensor, dims: int | Sequence[int]) -> Tensor:
    """``torch.flip`` (a copy, unlike a view) with the backward of :class:`FlipFunction`."""
    return FlipFunction.apply(input, (dims,) if isinstance(dims, int) else tuple(dims))


def tril(input: Tensor, diagonal: int = 0, *, out: Tensor | None = None) -> Tensor:
    """``torch.tril`` with the hand-derived backward of :class:`TriangleFunction`."""
    if out is not None:
        return torch.tril(input, diagonal, out=out)
    return TriangleFunction.apply(input, diagonal, False)


def triu(input: Tensor, diagonal: int = 0, *, out: Tensor | None = None) -> Tensor:
    """``torch.triu`` with the hand-derived backward of :class:`TriangleFunction`."""
    if out is not None:
        return torch.triu(input, diagonal, out=out)
    return TriangleFunction.apply(input, diagonal, True)


concat = cat

__all__ = [
    "CatFunction",
    "FlipFunction",
    "GatherFunction",
    "IndexFunction",
    "PadFunction",
    "RepeatFunction",
    "RollFunction",
    "ScatterFunction",
    "StackFunction",
    "TriangleFunction",
    "cat",
    "concat",
    "flip",
    "gather",
    "index",
    "index_select",
    "pad",
    "repeat",
    "roll",
    "scatter",
    "scatter_add",
    "stack",
    "tril",
    "triu",
]
