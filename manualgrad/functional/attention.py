"""Scaled dot-product attention, memory-efficient (FlashAttention-style), with a hand-derived
backward that is itself differentiable.

The call is cut into blocks: groups of heads (batch entries), each in blocks of query rows. A
block's score tile against every key it may see (a causal block skips the keys after its last
row) is built, used and dropped before the next block, so no (L × S) matrix ever exists.
Forward saves Q, K, V, the output O and each row's log-sum-exp ℓ; backward recomputes each
tile's probabilities as exp(Z − ℓ).

Block size (:func:`choose_blocks`): as many query rows as keep one head's tile within
:data:`WORKING_SET_BYTES` (a cache-sized working set; at least :data:`MIN_BLOCK_ROWS`; a causal
call in at least :data:`CAUSAL_BLOCKS` row blocks), then as many heads as fit that tile. One
head per block makes every product a single matrix product (faster than a batched one on this
CPU, and its transposed right operands are views, where a batched product needs contiguous
copies). Override the rows with the module attribute :data:`BLOCK_ROWS` and the heads with
:data:`BLOCK_HEADS` (ints, ``None`` = automatic) or, for a scope,
``with block_rows(rows, heads): ...``.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from manualgrad.functional._checks import broadcast_shapes
from manualgrad.functional._elementwise import scratch_allowed
from manualgrad.functional._function import Function, transforms_or_tracing
from manualgrad.functional.dropout import keep_scale

BLOCK_ROWS: int | None = None
"""Query rows per block for every attention call; ``None`` chooses them from the sizes."""
BLOCK_HEADS: int | None = None
"""Heads (batch entries) per block for every attention call; ``None`` chooses them."""
WORKING_SET_BYTES = 1 << 19
"""Target bytes of one score tile when the block size is chosen automatically."""
MIN_BLOCK_ROWS = 16
"""Fewest query rows of an automatically chosen block (bounds the per-block Python cost)."""
CAUSAL_BLOCKS = 4
"""Fewest row blocks of an automatically cut causal call (each skips the keys after its last
row: four compute 5/8 of the full score matrix, one all of it)."""
UNSHIFTED_BOUND = 40.0
"""Forward skips the row-max shift when every |score| is provably below this: exp(±40) keeps
row sums far from float32's overflow and every probability far from its subnormals."""


class AttentionFunction(Function):
    r"""Attention  O = A V,  A = P ⊙ M / (1 − p),  P = softmax_rows(Z),  Z = s·Q Kᵀ + B,
    computed in blocks (groups of heads × blocks of query rows, :class:`Blocks`).

    Q: (..., L, E), K: (..., S, E), V: (..., S, Ev) (batch dims broadcast); s the scale; B the
    mask bias (a float mask added as is; a bool mask or the causal triangle adds −∞ where
    attention is not allowed); M the bool dropout keep-mask, drawn tile by tile from a generator
    seeded by (``seed``, block number) — regenerated in backward, never stored whole.
    Outputs: O, the row log-sum-exp ℓ = log Σ_j exp Z_ij (−∞ for a fully masked row, whose P
    is taken as 0, as torch does), and A itself when ``need_weights``.

    Forward, block b (rows R_b, keys C_b = all keys, or those < the block's end if causal):
    m = rowmax Z_b (0 where −∞), P̃ = exp(Z_b − m), l = rowsum P̃, O_b = (P̃ ⊙ M/(1−p)) V / l,
    ℓ_b = m + log l. The shift m only keeps exp in range: when no float mask is given and
    |Z_ij| ≤ ‖q_i‖·‖s·k_j‖ (Cauchy–Schwarz) is below :data:`UNSHIFTED_BOUND` for every pair,
    m = 0 is used instead (no row max, no subtraction: two passes over each tile fewer).
    Half-precision inputs are computed in float32 and cast back (as torch).

    Saved: Q, K, V, O, ℓ and the mask — O(L + S) per head, as torch's flash kernel (whose
    outputs O and ℓ are the same tensors the caller gets). P and M are not saved.

    With G = dL/dO, Gℓ = dL/dℓ and GA = dL/dA (zero when absent), per block:

        D     = rowsum(G ⊙ O) + rowsum(GA ⊙ A) − Gℓ        (= rowsum(dL/dP ⊙ P) − Gℓ)
        P     = exp(Z − ℓ)                                   (recomputed)
        dL/dV = Σ_b A_bᵀ G_b                                 (summed over broadcast batch dims)
        dL/dP = (G V_{C_b}ᵀ + GA) ⊙ M / (1 − p)
        dL/dZ = P ⊙ (dL/dP − D)                              (softmax and log-sum-exp rules)
        dL/dQ_b = s · dL/dZ K_{C_b},   dL/dK += s · (dL/dZ)ᵀ Q_b,   dL/dB_b = dL/dZ

    The shifts go inside the products, as one more column: Z − ℓ = [Q | −ℓ] [s·Kᵀ ; 1] and,
    without dropout or GA, dL/dP − D = [G | −D] [Vᵀ ; 1] (the augmented operands are built once
    per group of heads), so neither costs a pass of its own over the tile. D's first term is
    computed once for all rows.

    Double backward: the backward is built from differentiable tensor ops (products, exp,
    element-wise products, row sums, slice accumulation) of the saved tensors and the incoming
    gradients; O and ℓ are outputs, so their dependence on Q, K, V comes back through G and Gℓ.
    Memory: first-order backward holds O(tile) temporaries; double backward (create_graph)
    records every block's tiles, so it needs O(L·S) per head, as the dense path does (about four
    tiles per block: scores, P, dL/dP, dL/dZ).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(
        query: Tensor,
        key: Tensor,
        value: Tensor,
        attn_mask: Tensor | None,
        scale: float,
        is_causal: bool,
        dropout_p: float,
        seed: int,
        blocks: tuple[int, int],
        need_weights: bool,
    ):
        plan = _Plan(query, key, attn_mask, (scale, is_causal, dropout_p, seed), blocks)
        value = value.to(plan.dtype)
        unshifted = plan.unshifted()
        parts = [tiles.forward(value, need_weights, unshifted) for tiles in plan.tiles()]
        output, lse, *weights = (plan.blocks.assemble(p) for p in zip(*parts, strict=True))
        output, lse = _laid_out_as(query, output.to(query.dtype)), lse.squeeze(-1)
        return (output, lse, weights[0].to(query.dtype)) if need_weights else (output, lse)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        query, key, value, attn_mask, scale, is_causal, dropout_p, seed, blocks, need = inputs
        ctx.options = (scale, is_causal, dropout_p, seed)
        ctx.blocks, ctx.need_weights = blocks, need
        # An empty query or key sequence: every gradient is zero, nothing needs saving.
        ctx.empty = query.shape[-2] == 0 or key.shape[-2] == 0
        inputs = (query, key, value, attn_mask)
        ctx.input_types = [None if t is None else (t.shape, t.dtype) for t in inputs]
        saved = (*inputs[:3], output[0], output[1], attn_mask)
        ctx.save_for_backward(*(None if ctx.empty else t for t in saved))

    @staticmethod
    def backward(ctx, grad_output: Tensor, grad_lse: Tensor, grad_weights: Tensor | None = None):
        if ctx.empty:
            zeros = [
                grad_output.new_zeros(kind[0], dtype=kind[1]) if needed else None
                for kind, needed in zip(ctx.input_types, ctx.needs_input_grad, strict=False)
            ]
            return (*zeros, None, None, None, None, None, None)
        query, key, value, output, lse, attn_mask = ctx.saved_tensors
        inputs = (query, key, value, attn_mask)
        plan = _Plan(query, key, attn_mask, ctx.options, ctx.blocks)
        dtype = plan.dtype
        grad_output = grad_output.to(dtype)
        # −D's first part, before the accumulators exist (its G ⊙ O temporary is freed first)
        neg_delta = grad_lse.unsqueeze(-1) - (grad_output * output.to(dtype)).sum(-1, keepdim=True)
        grads = [
            torch.zeros_like(t, dtype=dtype, memory_format=torch.contiguous_format)
            if needed
            else None
            for t, needed in zip(inputs, ctx.needs_input_grad[:4], strict=True)
        ]
        shift = _finite(lse).neg().unsqueeze(-1)
        incoming = (grad_output, neg_delta, grad_weights if ctx.need_weights else None)
        value = value.to(dtype)
        for tiles in plan.tiles():
            tiles.gradients(value, shift, incoming, grads)
        grads = [g if g is None else g.to(t.dtype) for g, t in zip(grads, inputs, strict=True)]
        return (*grads, None, None, None, None, None, None)


Group = tuple[int | slice, ...]


class Blocks:
    """How a call is cut: ``groups`` of batch entries (index tuples over the broadcast batch
    dims, :func:`_groups`), each in blocks of ``rows`` query rows starting at ``starts``.
    Block (g, r) — group g, row block r — has the number g·len(starts) + r (its dropout seed
    offset)."""

    def __init__(self, batch: Sequence[int], length: int, heads: int, rows: int) -> None:
        self.batch, self.rows = tuple(batch), rows
        self.groups = _groups(self.batch, heads)
        self.starts = range(0, max(length, 1), rows)

    @classmethod
    def choose(
        cls,
        batch: Sequence[int],
        length: int,
        source: int,
        dtype: torch.dtype,
        is_causal: bool = False,
    ) -> Blocks:
        """The cut :func:`choose_blocks` gives a call with these sizes."""
        return cls(batch, length, *choose_blocks(length, source, dtype, is_causal))

    def select(self, tensor: Tensor, group: Group) -> Tensor:
        """``tensor``'s entries of ``group`` (its batch dims aligned right with the call's; a
        size-1 or missing dim broadcasts), a view."""
        missing = len(self.batch) - (tensor.dim() - 2)
        index = [
            (0 if isinstance(i, int) else slice(None)) if tensor.shape[dim - missing] == 1 else i
            for dim, i in enumerate(group)
            if dim >= missing
        ]
        return tensor[tuple(index)]

    def group_batch(self, group: Group) -> tuple[int, ...]:
        """The batch shape of ``group``'s tiles."""
        spans = [
            len(range(*i.indices(self.batch[d])))
            for d, i in enumerate(group)
            if isinstance(i, slice)
        ]
        return (*spans, *self.batch[len(group) :])

    def assemble(self, parts: Sequence[Tensor]) -> Tensor:
        """One (..., L, X) tensor per group, in order → the call's (*batch, L, X)."""
        if self.groups == [()]:
            return parts[0]
        parts = [
            part if isinstance(group[-1], slice) else part.unsqueeze(0)
            for part, group in zip(parts, self.groups, strict=True)
        ]
        whole = torch.cat(parts, 0)
        return whole.reshape(*self.batch, *whole.shape[-2:])


def _groups(batch: tuple[int, ...], heads: int) -> list[Group]:
    """Index tuples over the batch dims, each selecting at most ``heads`` entries (at least one):
    integers on the leading dims, then a range of one dim (an integer for a range of one), the
    trailing dims whole; ``[()]`` (everything at once) when the whole batch fits or is empty."""
    trailing = 1
    for dim in reversed(range(len(batch))):
        if trailing * batch[dim] > heads and math.prod(batch) > 0:
            span = max(1, heads // trailing)
            spans = [
                start if span == 1 else slice(start, min(start + span, batch[dim]))
                for start in range(0, batch[dim], span)
            ]
            leading = itertools.product(*map(range, batch[:dim]))
            return [(*lead, part) for lead in leading for part in spans]
        trailing *= batch[dim]
    return [()]


class _Block:
    """Query rows ``rows`` (a slice), the keys ``[0, keys)`` they may see, the block's number."""

    __slots__ = ("index", "keys", "rows", "start")

    def __init__(self, index: int, start: int, stop: int, keys: int) -> None:
        self.index, self.start, self.rows, self.keys = index, start, slice(start, stop), keys


class _Plan:
    """What every block of one call shares: the inputs in the computation dtype, the options,
    the cut (:class:`Blocks`), the causal diagonal's bias and whether temporaries may be
    overwritten (:func:`scratch_allowed`, read once per call)."""

    def __init__(
        self,
        query: Tensor,
        key: Tensor,
        mask: Tensor | None,
        options: tuple[float, bool, float, int],
        blocks: tuple[int, int],
    ) -> None:
        self.dtype = _computation_dtype(query.dtype)
        self.query, self.key, self.mask = query.to(self.dtype), key.to(self.dtype), mask
        self.scale, self.is_causal, self.dropout_p, self.seed = options
        self.length, self.source = query.shape[-2], key.shape[-2]
        batch = broadcast_shapes(query.shape[:-2], key.shape[:-2])
        self.blocks = Blocks(batch, self.length, *blocks)
        rows = self.blocks.rows
        self.bias = None
        if self.is_causal:  # j > i on a block's diagonal square
            self.bias = torch.full((rows, rows), -math.inf, dtype=self.dtype, device=query.device)
            self.bias.triu_(1)
        # a row may have no finite score (a mask, or no keys at all): guard its max and sum
        self.guarded = mask is not None or self.source == 0
        self.inplace = scratch_allowed()
        self.into = functools.partial(_into, self.inplace)

    def unshifted(self) -> bool:
        """Whether forward may take exp(Z) unshifted: no float mask and max‖q_i‖·max‖s·k_j‖ below
        :data:`UNSHIFTED_BOUND` (read with ``.item()``, so eager calls only)."""
        floating = self.mask is not None and self.mask.dtype != torch.bool
        if floating or not self.inplace or 0 in (self.query.numel(), self.key.numel()):
            return False
        norms = [torch.linalg.vector_norm(t, dim=-1).amax() for t in (self.query, self.key)]
        return (norms[0] * norms[1]).item() * abs(self.scale) < UNSHIFTED_BOUND

    def tiles(self) -> Iterator[_Tiles]:
        """Each group's :class:`_Tiles`, in order."""
        for number, group in enumerate(self.blocks.groups):
            yield _Tiles(self, number, group)


class _Tiles:
    """One group of heads: its views of the inputs, its blocks, and each block's score tile
    and dropout keep-mask."""

    def __init__(self, plan: _Plan, number: int, group: Group) -> None:
        self.plan, self.number, self.group = plan, number, group
        self.query = self.select(plan.query)
        self.key = self.select(plan.key)
        self.mask = self.select(plan.mask)
        self.tile_shape = (*plan.blocks.group_batch(group), plan.source)

    def select(self, tensor: Tensor | None) -> Tensor | None:
        """The group's view of ``tensor`` (None stays None)."""
        return None if tensor is None else self.plan.blocks.select(tensor, self.group)

    def blocks(self) -> Iterator[_Block]:
        """Blocks of ``rows`` query rows (one empty block for an empty query)."""
        plan, starts = self.plan, self.plan.blocks.starts
        for row, start in enumerate(starts):
            stop = min(start + starts.step, plan.length)
            keys = min(plan.source, stop) if plan.is_causal else plan.source
            yield _Block(self.number * len(starts) + row, start, stop, keys)

    def rows(self, tensor: Tensor) -> tuple[Tensor, ...]:
        """``tensor`` (..., L, ·) cut into the blocks' rows (one call for all blocks; itself
        for a single block)."""
        if len(self.plan.blocks.starts) == 1:
            return (tensor,)
        return tensor.split(self.plan.blocks.rows, -2)

    def seen(self, block: _Block, tensor: Tensor, dim: int) -> Tensor:
        """``tensor`` narrowed along ``dim`` to the keys the block sees (itself if all)."""
        return tensor if block.keys == self.plan.source else tensor.narrow(dim, 0, block.keys)

    def scores(self, block: _Block, query: Tensor, key_t: Tensor) -> Tensor:
        """Z = Q (s·Kᵀ) + B on the block's rows and keys, from the block's rows ``query`` and the
        group's ``key_t`` (or [Q | −ℓ] and [s·Kᵀ ; 1]: Z − ℓ); a fresh tensor."""
        plan = self.plan
        scores = query.matmul(self.seen(block, key_t, -1))
        if plan.bias is not None and block.keys > block.start + 1:
            width, seen = block.rows.stop - block.start, block.keys - block.start
            diagonal = plan.bias[:width, :seen]
            scores = _add_columns(plan.inplace, scores, block.start, diagonal)
        if self.mask is None:
            return scores
        tile = self.mask if self.mask.shape[-2] == 1 else self.mask[..., block.rows, :]
        tile = tile[..., : block.keys]
        if tile.dtype == torch.bool:
            return plan.into(scores, "masked_fill", tile.logical_not(), -math.inf)
        return plan.into(scores, "add", tile.to(plan.dtype))

    def keep(self, block: _Block) -> Tensor | None:
        """M / (1 − p) on the block's rows and keys, or None without dropout."""
        plan = self.plan
        if plan.dropout_p == 0.0:
            return None
        rows = block.rows.stop - block.start
        mask = keep_mask(self.tile_shape, rows, plan.dropout_p, plan.seed, block.index)
        return keep_scale(mask[..., : block.keys], plan.dropout_p, plan.dtype)

    def forward(self, value: Tensor, need_weights: bool, unshifted: bool) -> tuple[Tensor, ...]:
        """The group's output (..., L, Ev), log-sum-exp (..., L, 1) and, if asked, weights;
        ``unshifted``: exp(Z) without the row max (see :meth:`_Plan.unshifted`)."""
        operands = (_right(self.key * self.plan.scale), self.select(value))  # s·Kᵀ, V
        parts = [
            self.forward_block(block, query, operands, need_weights, unshifted)
            for block, query in zip(self.blocks(), self.rows(self.query), strict=True)
        ]
        if len(parts) == 1:  # one block: its fresh tensors as they are
            return parts[0]
        return tuple(torch.cat(part, -2) for part in zip(*parts, strict=True))

    def forward_block(
        self,
        block: _Block,
        query: Tensor,
        operands: tuple[Tensor, Tensor],
        need_weights: bool,
        unshifted: bool,
    ) -> tuple[Tensor, ...]:
        """The block's output rows (..., rows, Ev), log-sum-exp (..., rows, 1) and, if asked,
        weights (..., rows, S), from its ``query`` rows and ``operands`` = (s·Kᵀ, V); its
        tiles are freed on return."""
        key_t, value = operands
        into, guarded = self.plan.into, self.plan.guarded
        scores = self.scores(block, query, key_t)
        if unshifted:
            row_max, probs = None, into(scores, "exp")
        else:
            row_max = _finite(_row_max(scores)) if guarded else _row_max(scores)
            probs = into(into(scores, "sub", row_max), "exp")
        total = probs.sum(-1, keepdim=True)
        keep = self.keep(block)
        kept = probs if keep is None else into(probs, "mul", keep)
        # l ≥ 1 on every row with a finite score (its maximum contributes exp 0 = 1; unshifted,
        # every finite score contributes more than exp(−bound)); l = 0 only on a fully masked
        # row, whose numerator is 0 too: clamping gives O = 0.
        floor = math.exp(-UNSHIFTED_BOUND) if unshifted else 1.0
        norm = total.clamp_min(floor) if guarded else total
        output = into(kept.matmul(self.seen(block, value, -2)), "div", norm)
        lse = total.log() if row_max is None else row_max.add(total.log())
        if not need_weights:
            return output, lse
        return output, lse, self.padded(into(kept, "div", norm))

    def gradients(
        self,
        value: Tensor,
        shift: Tensor,
        incoming: tuple[Tensor, Tensor, Tensor | None],
        grads: list[Tensor | None],
    ) -> None:
        """Add the group's terms to ``grads`` (dL/dQ, dL/dK, dL/dV, dL/dB; None where not
        needed), from V, −ℓ (``shift``) and ``incoming`` = (G, −D, GA or None)."""
        grad_output, neg_delta, grad_weights = (self.select(t) for t in incoming)
        shift = self.select(shift)
        query = self.query.expand(*shift.shape[:-1], self.query.shape[-1])
        views = [self.select(g) for g in grads]
        rows = (
            torch.cat((query, shift), -1),  # [Q | −ℓ]
            torch.cat((grad_output, neg_delta), -1),  # [G | −D]
            self.query,
            grad_output,
            neg_delta,
        )
        operands = (
            _right(_ones_column(self.key * self.plan.scale)),  # [s·Kᵀ ; 1]
            _right(_ones_column(self.select(value))),  # [Vᵀ ; 1]
            self.key,
        )
        split = [self.rows(t) for t in rows]
        for block, *block_rows in zip(self.blocks(), *split, strict=True):
            if not self.plan.inplace:  # autograd refuses writes through views made before
                views = [self.select(g) for g in grads]  # another view's write: fresh ones
            self.block_gradients(block, block_rows, operands, (*views, grad_weights))

    def block_gradients(
        self,
        block: _Block,
        rows: Sequence[Tensor | None],
        operands: tuple[Tensor, Tensor, Tensor],
        others: Sequence[Tensor | None],
    ) -> None:
        """Add the block's terms to the group's gradients ``others`` = (dL/dQ, dL/dK, dL/dV,
        dL/dB, then GA; None where not needed or absent), from the block's ``rows`` of ([Q | −ℓ],
        [G | −D], Q, G, −D) and the group's ``operands`` ([s·Kᵀ ; 1], [Vᵀ ; 1], K)."""
        query_shifted, grad_shifted, query, grad_rows, row_delta = rows
        key_t, value_t, key = operands
        grad_query, grad_key, grad_value, grad_mask, grad_weights = others
        plan = self.plan
        into, inplace, scale = plan.into, plan.inplace, plan.scale
        probs = into(self.scores(block, query_shifted, key_t), "exp")
        keep = self.keep(block)
        weights = probs if keep is None else probs * keep
        if grad_value is not None:
            part = self.seen(block, grad_value, -2)
            _accumulate_product(inplace, part, weights.mT, grad_rows, 1.0)
        if grad_query is None and grad_key is None and grad_mask is None:
            return
        if grad_weights is None and keep is None:  # dL/dP − D in one product
            grad_scores = grad_shifted.matmul(self.seen(block, value_t, -1))
        else:
            grad_probs = grad_rows.matmul(self.seen(block, value_t[..., :-1, :], -1))
            if grad_weights is not None:
                grad_a = grad_weights[..., block.rows, : block.keys].to(plan.dtype)
                grad_probs = into(grad_probs, "add", grad_a)
                row_delta = row_delta - (grad_a * weights).sum(-1, keepdim=True)
            if keep is not None:
                grad_probs = into(grad_probs, "mul", keep)
            grad_scores = into(grad_probs, "add", row_delta)
        grad_scores = into(grad_scores, "mul", probs)
        if grad_query is not None:  # narrowed here: a split's views cannot be written in grad mode
            part = grad_query.narrow(-2, block.start, block.rows.stop - block.start)
            _accumulate_product(inplace, part, grad_scores, self.seen(block, key, -2), scale)
        if grad_key is not None:
            part = self.seen(block, grad_key, -2)
            _accumulate_product(inplace, part, grad_scores.mT, query, scale)
        if grad_mask is not None:
            part = grad_mask if grad_mask.shape[-2] == 1 else grad_mask[..., block.rows, :]
            _accumulate(part, grad_scores)

    def padded(self, tile: Tensor) -> Tensor:
        """A (..., rows, keys) tile as (..., rows, S), zeros for the keys a causal block skips."""
        missing = self.plan.source - tile.shape[-1]
        if missing == 0:
            return tile
        return torch.cat([tile, tile.new_zeros((*tile.shape[:-1], missing))], -1)


def keep_mask(shape: tuple[int, ...], rows: int, p: float, seed: int, index: int) -> Tensor:
    """Block ``index``'s bool dropout keep-mask, shape (*batch, rows, S) for ``shape`` = (*batch,
    S): Bernoulli(1 − p) per element as torch's dropout draws it, from a CPU generator seeded by
    ``seed + index`` (so backward regenerates it)."""
    generator = torch.Generator().manual_seed(seed + index)
    mask = torch.empty((*shape[:-1], rows, shape[-1]), dtype=torch.bool)
    return mask.bernoulli_(1 - p, generator=generator)


def _right(tensor: Tensor) -> Tensor:
    """(..., N, K) → its transpose (..., K, N) as a product's right operand: a view for a matrix
    (MKL reads it transposed at full speed), a contiguous copy for a batch of them (batched
    products with a transposed view as right operand ran 1.5–8× slower on this CPU)."""
    transposed = tensor.transpose(-2, -1)
    return transposed if tensor.dim() == 2 else transposed.contiguous()


def _laid_out_as(query: Tensor, output: Tensor) -> Tensor:
    """``output`` in the memory layout of a non-contiguous ``query`` of its shape, as torch's CPU
    kernel returns it: for a query viewed (B, H, L, E) from a (B, L, H, E) projection, the
    ``transpose(1, 2).reshape`` a model applies next is then a view, not a copy that the output
    projection saves a second time (a BERT/GPT-2/Llama step saved one (B, L, H·E) tensor per
    attention call more than torch). Eager only: under transforms the output stays as it is."""
    if query.is_contiguous() or query.shape != output.shape or transforms_or_tracing(output):
        return output
    return torch.empty_like(query, dtype=output.dtype).copy_(output)


def _computation_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for float16/bfloat16 (torch accumulates attention in float32), else ``dtype``."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _into(inplace: bool, fresh: Tensor, method: str, *args: object) -> Tensor:
    """``fresh.<method>(*args)``, written into ``fresh`` (a temporary nobody else holds) when
    ``inplace`` (:func:`scratch_allowed`); out of place while a graph is recorded or under
    transforms."""
    return getattr(fresh, f"{method}_" if inplace else method)(*args)


def _add_columns(inplace: bool, tile: Tensor, start: int, bias: Tensor) -> Tensor:
    """``tile`` with ``bias`` added to its columns from ``start`` on (the causal diagonal square:
    the columns before it need nothing); in place when ``inplace``."""
    if inplace:
        tile[..., start:].add_(bias)
        return tile
    return torch.cat((tile[..., :start], tile[..., start:] + bias), -1)


def _ones_column(tensor: Tensor) -> Tensor:
    """(..., N, K) → a fresh (..., N, K + 1) with a last column of ones."""
    return torch.cat((tensor, tensor.new_ones((*tensor.shape[:-1], 1))), -1)


def _row_max(scores: Tensor) -> Tensor:
    """Max over the last dim, keepdim (−∞ when there are no keys)."""
    if scores.shape[-1] == 0:
        return scores.new_full((*scores.shape[:-1], 1), -math.inf)
    return scores.amax(-1, keepdim=True)


def _finite(shift: Tensor) -> Tensor:
    """``shift`` with −∞ replaced by 0 (a fully masked row subtracts nothing: exp(−∞) = 0)."""
    return shift.masked_fill(shift == -math.inf, 0.0)


def _accumulate(part: Tensor, contribution: Tensor) -> None:
    """part += contribution, reduced over the dims it broadcast over (``part`` a view of an
    accumulator)."""
    part += contribution.sum_to_size(part.shape)


def _accumulate_product(inplace: bool, part: Tensor, a: Tensor, b: Tensor, alpha: float) -> None:
    """part += alpha · a b (``part`` a view of a contiguous accumulator). In a first-order
    backward (``inplace``), when a b has the part's batch shape, one ``addmm_`` / ``baddbmm_``
    into it: no (keys × E) temporary per block, where dL/dK and dL/dV get a full-size term from
    every query block. A part narrowed from its accumulator (a causal block's keys, a block's
    rows) is not one contiguous batch of matrices, and ``baddbmm_`` into it ran 2–3× slower than
    the product and an add: that is the path it takes."""
    if inplace and part.dim() == a.dim() == b.dim() == 2:
        part.addmm_(a, b, alpha=alpha)
        return
    batched = a.shape[:-2] == b.shape[:-2] == part.shape[:-2] and part.is_contiguous()
    if not (inplace and batched):
        _accumulate(part, _into(inplace, a.matmul(b), "mul", alpha))
        return
    batch = math.prod(part.shape[:-2])
    flat = part.view(batch, *part.shape[-2:])
    flat.baddbmm_(a.reshape(batch, *a.shape[-2:]), b.reshape(batch, *b.shape[-2:]), alpha=alpha)


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
    if key.shape[-1] != query.shape[-1]:
        raise RuntimeError(
            f"key's last dim ({key.shape[-1]}) must equal query's ({query.shape[-1]}): the "
            "embedding dims of query and key differ"
        )
    if value.shape[-2] != key.shape[-2]:
        raise RuntimeError(
            f"value's sequence length ({value.shape[-2]}) must equal key's ({key.shape[-2]})"
        )


def _check_mask_shape(attn_mask: Tensor, attn_shape: tuple[int, ...]) -> None:
    """torch's rule: the mask broadcasts to the attention shape (..., L, S) without growing it."""
    try:
        broadcast = torch.broadcast_shapes(attn_mask.shape, attn_shape)
    except RuntimeError:
        broadcast = None
    if broadcast != torch.Size(attn_shape):
        raise RuntimeError(
            f"attn_mask of shape {list(attn_mask.shape)} does not broadcast to the attention "
            f"shape {list(attn_shape)} (batch..., query length, key length)"
        )


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


def choose_blocks(
    length: int, source: int, dtype: torch.dtype, is_causal: bool = False
) -> tuple[int, int]:
    """(heads, rows) per block: :data:`BLOCK_ROWS` rows if set, else as many as keep one head's
    score tile (rows × ``source`` keys, in the computation dtype of ``dtype`` inputs) within
    :data:`WORKING_SET_BYTES` and, if ``is_causal``, cut the query into :data:`CAUSAL_BLOCKS`
    blocks or more — at least :data:`MIN_BLOCK_ROWS`, at most ``length``; then
    :data:`BLOCK_HEADS` heads if set, else as many as fit that tile (at least one)."""
    row_bytes = max(1, source * _computation_dtype(dtype).itemsize)
    rows = BLOCK_ROWS
    if rows is None:
        rows = WORKING_SET_BYTES // row_bytes
        if is_causal:
            rows = min(rows, -(-length // CAUSAL_BLOCKS))
        rows = min(max(length, 1), max(MIN_BLOCK_ROWS, rows))
    rows = max(1, rows)
    heads = BLOCK_HEADS if BLOCK_HEADS is not None else WORKING_SET_BYTES // (rows * row_bytes)
    return max(1, heads), rows


@contextlib.contextmanager
def block_rows(rows: int | None, heads: int | None = None) -> Iterator[None]:
    """Within the ``with`` block, attention uses ``rows`` query rows and ``heads`` heads per
    block (``None``: automatic); :data:`BLOCK_ROWS` and :data:`BLOCK_HEADS` are restored
    afterwards."""
    global BLOCK_ROWS, BLOCK_HEADS
    previous, (BLOCK_ROWS, BLOCK_HEADS) = (BLOCK_ROWS, BLOCK_HEADS), (rows, heads)
    try:
        yield
    finally:
        BLOCK_ROWS, BLOCK_HEADS = previous


def draw_seed() -> int:
    """A dropout seed from torch's global CPU generator (so ``torch.manual_seed`` fixes it)."""
    return int(torch.randint(0, 2**62, (), dtype=torch.int64).item())


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
    Dropout draws one seed from torch's global generator; block b's keep-mask over its group's
    (heads, rows, S) comes from a generator seeded by seed + b (:func:`keep_mask`, block numbers
    as :class:`Blocks` gives them; with GQA the heads are the (Hk, g) grid Q is viewed as).
    """
    _check(query, key, value, attn_mask, dropout_p, is_causal)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    groups = _gqa_groups(query, key, value) if enable_gqa else 1
    key_batch = key.shape[:-2] if groups == 1 else (*key.shape[:-3], key.shape[-3] * groups)
    batch = broadcast_shapes(query.shape[:-2], key_batch)
    if attn_mask is not None:
        _check_mask_shape(attn_mask, (*batch, query.shape[-2], key.shape[-2]))
        attn_mask = attn_mask.reshape((1,) * (2 - attn_mask.dim()) + attn_mask.shape)
    seed = draw_seed() if dropout_p > 0.0 else 0
    if groups > 1:
        kv_heads = key.shape[-3]
        query = query.unflatten(-3, (kv_heads, groups))
        key, value = key.unsqueeze(-3), value.unsqueeze(-3)
        attn_mask = None if attn_mask is None else _group_heads(attn_mask, kv_heads, groups)
    blocks = choose_blocks(query.shape[-2], key.shape[-2], query.dtype, is_causal)
    outputs = AttentionFunction.apply(
        query, key, value, attn_mask, scale, is_causal, dropout_p, seed, blocks, need_weights
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
    """``torch.nn.functional.scaled_dot_product_attention``, memory-efficient, with the
    hand-derived (and twice differentiable) backward of :class:`AttentionFunction`.

    A bool ``attn_mask`` marks with True the positions that may be attended; a float mask is
    added to the scores (and gets a gradient if it requires one). ``is_causal`` uses the
    top-left-aligned lower triangle. Fully masked rows give zeros, as in torch. float16/bfloat16
    inputs (with a float32 or same-dtype float mask) are computed in float32 and cast back.
    Dropout has torch's distribution (keep with probability 1 − p, scale 1/(1 − p)) but its own
    random stream (see :func:`attention`). Block size: see the module docstring.
    """
    output, _ = attention(
        query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa, need_weights=False
    )
    return output


__all__ = ["AttentionFunction", "scaled_dot_product_attention"]
