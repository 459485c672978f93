"""Scaled dot-product attention, memory-efficient (FlashAttention-style), with a hand-derived
backward that is itself differentiable.

Queries are processed in blocks of rows: a block's score tile against every key it may see (a
causal block skips the keys after its last row) is built, used and dropped before the next
block, so no (L × S) matrix ever exists. Forward saves Q, K, V, the output O and each row's
log-sum-exp ℓ; backward recomputes each tile's probabilities as exp(Z − ℓ).

Block size: a tile of about :data:`WORKING_SET_BYTES` (a cache-sized working set; at least
:data:`MIN_BLOCK_ROWS` rows). Override it by setting the module attribute :data:`BLOCK_ROWS`
(an int, ``None`` = automatic) or, for a scope, ``with block_rows(n): ...``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import Tensor

from manualgrad.functional._elementwise import scratch_allowed
from manualgrad.functional._function import Function
from manualgrad.functional.dropout import keep_scale

BLOCK_ROWS: int | None = None
"""Query rows per block for every attention call; ``None`` chooses them from the sizes."""
WORKING_SET_BYTES = 1 << 20
"""Target bytes of one score tile when the block size is chosen automatically."""
MIN_BLOCK_ROWS = 16
"""Fewest query rows of an automatically chosen block (bounds the per-block Python cost)."""


class AttentionFunction(Function):
    r"""Attention  O = A V,  A = P ⊙ M / (1 − p),  P = softmax_rows(Z),  Z = s·Q Kᵀ + B,
    computed in blocks of query rows.

    Q: (..., L, E), K: (..., S, E), V: (..., S, Ev) (batch dims broadcast); s the scale; B the
    mask bias (a float mask added as is; a bool mask or the causal triangle adds −∞ where
    attention is not allowed); M the bool dropout keep-mask, drawn tile by tile from a generator
    seeded by (``seed``, block index) — regenerated in backward, never stored whole.
    Outputs: O, the row log-sum-exp ℓ = log Σ_j exp Z_ij (−∞ for a fully masked row, whose P
    is taken as 0, as torch does), and A itself when ``need_weights``.

    Forward, block b (rows R_b, keys C_b = all keys, or those < the block's end if causal):
    m = rowmax Z_b (0 where −∞), P̃ = exp(Z_b − m), l = rowsum P̃, O_b = (P̃ ⊙ M/(1−p)) V / l,
    ℓ_b = m + log l. Half-precision inputs are computed in float32 and cast back (as torch).

    Saved: Q, K, V, O, ℓ and the mask — O(L + S) per head, as torch's flash kernel (whose
    outputs O and ℓ are the same tensors the caller gets). P and M are not saved.

    With G = dL/dO, Gℓ = dL/dℓ and GA = dL/dA (zero when absent), per block:

        D     = rowsum(G ⊙ O) + rowsum(GA ⊙ A) − Gℓ        (= rowsum(dL/dP ⊙ P) − Gℓ)
        P     = exp(Z − ℓ)                                   (recomputed)
        dL/dV = Σ_b A_bᵀ G_b                                 (summed over broadcast batch dims)
        dL/dP = (G V_{C_b}ᵀ + GA) ⊙ M / (1 − p)
        dL/dZ = P ⊙ (dL/dP − D)                              (softmax and log-sum-exp rules)
        dL/dQ_b = s · dL/dZ K_{C_b},   dL/dK += s · (dL/dZ)ᵀ Q_b,   dL/dB_b = dL/dZ

    Double backward: the backward is built from differentiable tensor ops (matmul, exp, products,
    row sums, slice accumulation) of the saved tensors and the incoming gradients; O and ℓ are
    outputs, so their dependence on Q, K, V comes back through G and Gℓ. Memory: first-order
    backward holds O(tile) temporaries; double backward (create_graph) records every block's
    tiles, so it needs O(L·S) per head, as the dense path does (about four tiles per block:
    scores, P, dL/dP, dL/dZ).
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
        rows: int,
        need_weights: bool,
    ):
        tiles = _Tiles(query, key, attn_mask, scale, is_causal, dropout_p, seed, rows)
        value = value.to(tiles.dtype)
        blocks = [tiles.forward_block(block, value, need_weights) for block in tiles.blocks()]
        output, lse, *weights = (torch.cat(parts, -2) for parts in zip(*blocks, strict=True))
        output, lse = output.to(query.dtype), lse.squeeze(-1)
        return (output, lse, weights[0].to(query.dtype)) if need_weights else (output, lse)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        query, key, value, attn_mask, scale, is_causal, dropout_p, seed, rows, need = inputs
        ctx.options = (scale, is_causal, dropout_p, seed, rows)
        ctx.need_weights = need
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
        tiles = _Tiles(query, key, attn_mask, *ctx.options)
        dtype = tiles.dtype
        grads = [
            torch.zeros_like(t, dtype=dtype, memory_format=torch.contiguous_format)
            if needed
            else None
            for t, needed in zip(inputs, ctx.needs_input_grad[:4], strict=True)
        ]
        grad_output = grad_output.to(dtype)
        delta = (grad_output * output.to(dtype)).sum(-1, keepdim=True) - grad_lse.unsqueeze(-1)
        incoming = (grad_output, delta, grad_weights if ctx.need_weights else None)
        value_t = _transposed(value.to(dtype))
        for block in tiles.blocks():
            tiles.backward_block(block, value_t, lse, incoming, grads)
        grads = [g if g is None else g.to(t.dtype) for g, t in zip(grads, inputs, strict=True)]
        return (*grads, None, None, None, None, None, None)


class _Block:
    """Query rows ``rows`` (a slice), the keys ``[0, keys)`` they may see, the block's index."""

    __slots__ = ("index", "keys", "rows", "start")

    def __init__(self, index: int, start: int, stop: int, keys: int) -> None:
        self.index, self.start, self.rows, self.keys = index, start, slice(start, stop), keys


class _Tiles:
    """What forward and backward share: the inputs in the computation dtype, the blocks, and
    each block's score tile and dropout keep-mask."""

    def __init__(
        self,
        query: Tensor,
        key: Tensor,
        mask: Tensor | None,
        scale: float,
        is_causal: bool,
        dropout_p: float,
        seed: int,
        rows: int,
    ) -> None:
        self.dtype = _computation_dtype(query.dtype)
        self.query, self.key = query.to(self.dtype), key.to(self.dtype)
        self.key_t = _transposed(self.key)
        self.mask, self.scale, self.is_causal = mask, scale, is_causal
        self.dropout_p, self.seed, self.rows = dropout_p, seed, rows
        batch = torch.broadcast_shapes(query.shape[:-2], key.shape[:-2])
        self.length, self.source = query.shape[-2], key.shape[-2]
        self.tile_shape = (*batch, self.source)

    def blocks(self) -> Iterator[_Block]:
        """Blocks of ``rows`` query rows (one empty block for an empty query)."""
        for index, start in enumerate(range(0, max(self.length, 1), self.rows)):
            stop = min(start + self.rows, self.length)
            keys = min(self.source, stop) if self.is_causal else self.source
            yield _Block(index, start, stop, keys)

    def scores(self, block: _Block) -> Tensor:
        """Z = (s·Q) Kᵀ + B on the block's rows and keys (a fresh tensor; s scales the block's
        few query rows, not the tile)."""
        keys = block.keys
        scores = self.scaled_query(block).matmul(self.key_t[..., :keys])
        if self.is_causal and keys > block.start + 1:
            rows = block.rows.stop - block.start
            bias = torch.full((rows, keys), -math.inf, dtype=self.dtype, device=scores.device)
            scores = _into(scores, "add", bias.triu_(block.start + 1))
        if self.mask is None:
            return scores
        tile = self.mask if self.mask.shape[-2] == 1 else self.mask[..., block.rows, :]
        tile = tile[..., :keys]
        if tile.dtype == torch.bool:
            return _into(scores, "masked_fill", tile.logical_not(), -math.inf)
        return _into(scores, "add", tile.to(self.dtype))

    def scaled_query(self, block: _Block) -> Tensor:
        """s·Q on the block's rows."""
        return self.query[..., block.rows, :] * self.scale

    def keep(self, block: _Block) -> Tensor | None:
        """M / (1 − p) on the block's rows and keys, or None without dropout."""
        if self.dropout_p == 0.0:
            return None
        rows = block.rows.stop - block.start
        mask = keep_mask(self.tile_shape, rows, self.dropout_p, self.seed, block.index)
        return keep_scale(mask[..., : block.keys], self.dropout_p, self.dtype)

    def forward_block(self, block: _Block, value: Tensor, need_weights: bool) -> tuple[Tensor, ...]:
        """The block's output rows (..., rows, Ev), log-sum-exp (..., rows, 1) and, if asked,
        weights (..., rows, S); its tiles are freed on return."""
        scores = self.scores(block)
        row_max = _finite(_row_max(scores))
        probs = _into(_into(scores, "sub", row_max), "exp")
        total = probs.sum(-1, keepdim=True)
        keep = self.keep(block)
        kept = probs if keep is None else _into(probs, "mul", keep)
        # l ≥ 1 on every row with a finite score (its maximum contributes exp 0 = 1); l = 0
        # only on a fully masked row, whose numerator is 0 too: clamping gives O = 0.
        norm = total.clamp_min(1.0)
        output = _into(kept.matmul(value[..., : block.keys, :]), "div", norm)
        lse = row_max.add(total.log())
        if not need_weights:
            return output, lse
        return output, lse, self.padded(_into(kept, "div", norm))

    def backward_block(
        self,
        block: _Block,
        value_t: Tensor,
        lse: Tensor,
        incoming: tuple[Tensor, Tensor, Tensor | None],
        grads: list[Tensor | None],
    ) -> None:
        """Add the block's terms to ``grads`` (dL/dQ, dL/dK, dL/dV, dL/dB; None where not
        needed), from ``incoming`` = (G, D, GA or None)."""
        grad_query, grad_key, grad_value, grad_mask = grads
        grad_output, delta, grad_weights = incoming
        rows, keys = block.rows, slice(0, block.keys)
        probs = _into(_into(self.scores(block), "sub", _finite(lse[..., rows, None])), "exp")
        keep = self.keep(block)
        weights = probs if keep is None else probs * keep
        grad_rows = grad_output[..., rows, :]
        if grad_value is not None:
            _accumulate_product(grad_value, keys, weights.transpose(-2, -1), grad_rows, 1.0)
        if grad_query is None and grad_key is None and grad_mask is None:
            return
        grad_probs = grad_rows.matmul(value_t[..., keys])
        row_delta = delta[..., rows, :]
        if grad_weights is not None:
            grad_a = grad_weights[..., rows, keys].to(self.dtype)
            grad_probs = _into(grad_probs, "add", grad_a)
            row_delta = row_delta + (grad_a * weights).sum(-1, keepdim=True)
        if keep is not None:
            grad_probs = _into(grad_probs, "mul", keep)
        grad_scores = _into(_into(grad_probs, "sub", row_delta), "mul", probs)
        if grad_query is not None:
            key = self.key[..., keys, :]
            _accumulate_product(grad_query, rows, grad_scores, key, self.scale)
        if grad_key is not None:
            query = self.scaled_query(block)
            _accumulate_product(grad_key, keys, grad_scores.transpose(-2, -1), query, 1.0)
        if grad_mask is not None:
            _accumulate(grad_mask, slice(None) if grad_mask.shape[-2] == 1 else rows, grad_scores)

    def padded(self, tile: Tensor) -> Tensor:
        """A (..., rows, keys) tile as (..., rows, S), zeros for the keys a causal block skips."""
        missing = self.source - tile.shape[-1]
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


def _transposed(tensor: Tensor) -> Tensor:
    """(..., S, E) → a contiguous (..., E, S) copy. One copy per call: products with a
    transposed *view* as right operand run 2–8× slower on this CPU (MKL, 64×64 · 64×1024)."""
    return tensor.transpose(-2, -1).contiguous()


def _computation_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for float16/bfloat16 (torch accumulates attention in float32), else ``dtype``."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _into(fresh: Tensor, method: str, *args: object) -> Tensor:
    """``fresh.<method>(*args)``, written into ``fresh`` (a temporary nobody else holds) when
    :func:`scratch_allowed`; out of place while a graph is recorded or under transforms."""
    name = f"{method}_" if scratch_allowed() else method
    return getattr(fresh, name)(*args)


def _row_max(scores: Tensor) -> Tensor:
    """Max over the last dim, keepdim (−∞ when there are no keys)."""
    if scores.shape[-1] == 0:
        return scores.new_full((*scores.shape[:-1], 1), -math.inf)
    return scores.amax(-1, keepdim=True)


def _finite(shift: Tensor) -> Tensor:
    """``shift`` with −∞ replaced by 0 (a fully masked row subtracts nothing: exp(−∞) = 0)."""
    return shift.masked_fill(shift == -math.inf, 0.0)


def _accumulate(total: Tensor, rows: slice, contribution: Tensor) -> None:
    """total[..., rows, :] += contribution, reduced over the dims it broadcast over."""
    part = total[..., rows, :]
    part += contribution.sum_to_size(part.shape)


def _accumulate_product(total: Tensor, rows: slice, a: Tensor, b: Tensor, alpha: float) -> None:
    """total[..., rows, :] += alpha · a b. In a first-order backward, when a b has the part's
    batch shape, one ``baddbmm_`` into the (contiguous) accumulator: no (keys × E) temporary
    per block, where dL/dK and dL/dV get a full-size term from every query block."""
    part = total[..., rows, :]
    if not (scratch_allowed() and a.shape[:-2] == b.shape[:-2] == part.shape[:-2]):
        _accumulate(total, rows, _into(a.matmul(b), "mul", alpha))
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


def choose_block_rows(batch: int, length: int, source: int, dtype: torch.dtype) -> int:
    """Query rows per block: :data:`BLOCK_ROWS` if set, else as many as keep one score tile
    (``batch`` heads × rows × ``source`` keys, in the computation dtype of ``dtype`` inputs)
    within :data:`WORKING_SET_BYTES`, at least :data:`MIN_BLOCK_ROWS`, at most ``length``."""
    if BLOCK_ROWS is not None:
        return max(1, BLOCK_ROWS)
    element_size = torch.empty((), dtype=_computation_dtype(dtype)).element_size()
    row_bytes = max(1, batch * source * element_size)
    return max(1, min(max(length, 1), max(MIN_BLOCK_ROWS, WORKING_SET_BYTES // row_bytes)))


@contextlib.contextmanager
def block_rows(rows: int | None) -> Iterator[None]:
    """Within the ``with`` block, attention uses ``rows`` query rows per block (``None``:
    automatic); :data:`BLOCK_ROWS` is restored afterwards."""
    global BLOCK_ROWS
    previous, BLOCK_ROWS = BLOCK_ROWS, rows
    try:
        yield
    finally:
        BLOCK_ROWS = previous


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
    Dropout draws one seed from torch's global generator; block b's keep-mask over
    (..., Hq, rows, S) comes from a generator seeded by seed + b (:func:`keep_mask`).
    """
    _check(query, key, value, attn_mask, dropout_p, is_causal)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    groups = _gqa_groups(query, key, value) if enable_gqa else 1
    key_batch = key.shape[:-2] if groups == 1 else (*key.shape[:-3], key.shape[-3] * groups)
    batch = torch.broadcast_shapes(query.shape[:-2], key_batch)
    if attn_mask is not None:
        _check_mask_shape(attn_mask, (*batch, query.shape[-2], key.shape[-2]))
        attn_mask = attn_mask.reshape((1,) * (2 - attn_mask.dim()) + attn_mask.shape)
    seed = draw_seed() if dropout_p > 0.0 else 0
    if groups > 1:
        kv_heads = key.shape[-3]
        query = query.unflatten(-3, (kv_heads, groups))
        key, value = key.unsqueeze(-3), value.unsqueeze(-3)
        attn_mask = None if attn_mask is None else _group_heads(attn_mask, kv_heads, groups)
    rows = choose_block_rows(math.prod(batch), query.shape[-2], key.shape[-2], query.dtype)
    outputs = AttentionFunction.apply(
        query, key, value, attn_mask, scale, is_causal, dropout_p, seed, rows, need_weights
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
