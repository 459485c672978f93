"""Registry entries (see manualgrad.testing.registry): scaled dot-product attention and
multi-head attention."""

import math

import torch
import torch.nn.functional as TF

import manualgrad.functional as F
import manualgrad.nn as mnn
from manualgrad.functional import attention as attention_impl
from manualgrad.testing.entries.dropout import seeded
from manualgrad.testing.registry import ErrorCase, ModuleInfo, OpInfo, Sample, tensor


def _qkv(dtype, batch=(1, 2), kv_batch=None, L=3, S=4, E=3, Ev=2, noncontiguous=False):
    kv_batch = batch if kv_batch is None else kv_batch
    return (
        tensor(*batch, L, E, dtype=dtype, noncontiguous=noncontiguous),
        tensor(*kv_batch, S, E, dtype=dtype, noncontiguous=noncontiguous),
        tensor(*kv_batch, S, Ev, dtype=dtype, noncontiguous=noncontiguous),
    )


def _bool_mask(L=3, S=4, fully_masked_row=None):
    mask = torch.tensor([[True, False, True, True], [False, True, True, False], [True] * 4])
    mask = mask[:L, :S]
    if fully_masked_row is not None:
        mask[fully_masked_row] = False
    return mask


def sdpa_samples(dtype):
    yield Sample("regular", _qkv(dtype))
    yield Sample("no_heads", _qkv(dtype, batch=(2,)))
    yield Sample("unbatched", _qkv(dtype, batch=()))
    yield Sample("size1", _qkv(dtype, batch=(1,), L=1, S=1, E=1, Ev=1))
    yield Sample("empty_batch", _qkv(dtype, batch=(0, 2)))
    yield Sample("broadcast_batch", _qkv(dtype, batch=(2, 2), kv_batch=(1, 2)))
    yield Sample("bool_mask", _qkv(dtype), {"attn_mask": _bool_mask()})
    yield Sample("fully_masked_row", _qkv(dtype), {"attn_mask": _bool_mask(fully_masked_row=1)})
    yield Sample("float_mask", (*_qkv(dtype), tensor(1, 1, 3, 4, dtype=dtype)))
    yield Sample("causal", _qkv(dtype, batch=(1,)), {"is_causal": True})
    yield Sample("causal_long_query", _qkv(dtype, batch=(), L=4, S=3), {"is_causal": True})
    yield Sample("scale", _qkv(dtype), {"scale": 0.3})
    yield Sample("gqa", _qkv(dtype, batch=(1, 4), kv_batch=(1, 2)), {"enable_gqa": True})
    yield Sample(
        "gqa_head_mask",
        (*_qkv(dtype, batch=(1, 4), kv_batch=(1, 2), E=2), tensor(4, 3, 4, dtype=dtype)),
        {"enable_gqa": True},
    )
    yield Sample(
        "noncontiguous", _qkv(dtype, batch=(2, 2), noncontiguous=True), noncontiguous_grad=True
    )
    # more than 1024 query × key pairs a head: the compiled one-tile path's products
    long = _qkv(dtype, batch=(1,), L=40, S=33, E=2, Ev=2)
    yield Sample("long_causal", long, {"is_causal": True})
    allowed = torch.arange(40 * 33).reshape(40, 33) % 3 != 0
    yield Sample("long_bool_mask", long, {"attn_mask": allowed})
    yield Sample("long_float_mask", (*long, tensor(40, 33, dtype=dtype)))


def sdpa_dropout_samples(dtype):
    yield Sample("dropout", _qkv(dtype), {"dropout_p": 0.3})
    yield Sample("dropout_mask", _qkv(dtype), {"dropout_p": 0.5, "attn_mask": _bool_mask()})
    yield Sample(
        "dropout_gqa",
        _qkv(dtype, batch=(2, 4), kv_batch=(2, 2)),
        {"dropout_p": 0.4, "enable_gqa": True},
    )
    yield Sample("dropout_1", _qkv(dtype), {"dropout_p": 1.0})


def in_blocks(fn, rows=2, heads=1):
    """``fn`` run with attention in blocks of ``heads`` heads × ``rows`` query rows (several
    blocks per sample)."""

    def call(*args, **kwargs):
        with attention_impl.block_rows(rows, heads):
            return fn(*args, **kwargs)

    call.__name__ = getattr(fn, "__name__", "in_blocks")
    return call


def sdpa_block_samples(dtype):
    def qkv(L, S, heads=2, kv_heads=None):
        return _qkv(dtype, batch=(1, heads), kv_batch=(1, kv_heads or heads), L=L, S=S)

    yield Sample("regular", qkv(5, 6))
    yield Sample("causal_long_query", qkv(7, 4), {"is_causal": True})
    yield Sample("causal_long_key", qkv(5, 9), {"is_causal": True})
    yield Sample("float_mask_broadcast_rows", (*qkv(5, 6), tensor(1, 6, dtype=dtype)))
    yield Sample("float_mask", (*qkv(5, 6), tensor(1, 2, 5, 6, dtype=dtype)))
    mask = torch.rand(5, 6) > 0.4
    mask[3] = False
    yield Sample("bool_mask_fully_masked_row", qkv(5, 6), {"attn_mask": mask})
    yield Sample("gqa_causal", qkv(5, 5, 4, 2), {"is_causal": True, "enable_gqa": True})
    yield Sample("dropout_causal", qkv(5, 6), {"dropout_p": 0.3, "is_causal": True})
    yield Sample(
        "dropout_gqa_mask",
        (*qkv(5, 6, 4, 2), tensor(5, 6, dtype=dtype)),
        {"dropout_p": 0.5, "enable_gqa": True},
    )
    yield Sample("empty_query", qkv(0, 4))
    yield Sample("empty_key", qkv(3, 0))


def sdpa_errors():
    q, k, v = _qkv(torch.float32)
    yield ErrorCase((q, k.double(), v), {}, RuntimeError, "to have the same dtype")
    yield ErrorCase((q[0, 0, 0], k, v), {}, RuntimeError, "at least 2 dimensional")
    yield ErrorCase(
        (q, k, v), {"attn_mask": _bool_mask(), "is_causal": True}, RuntimeError, "is_causal=True"
    )
    yield ErrorCase(
        (q, k, v), {"attn_mask": _bool_mask().long()}, RuntimeError, "attn_mask dtype to be bool"
    )
    yield ErrorCase((q, k, v), {"dropout_p": 1.5}, RuntimeError, "between 0 and 1, but got 1.5")
    q3, k2, v2 = _qkv(torch.float32, batch=(1, 3), kv_batch=(1, 2))
    yield ErrorCase((q3, k2, v2), {"enable_gqa": True}, RuntimeError, "must divide")


def blockwise_keep_mask(batch, length, source, dropout_p, dtype, is_causal=False):
    """The whole (*batch, L, S) keep-mask manualgrad's attention draws block by block for
    ``dtype`` inputs (causal or not), from the seed it draws first (tests only: the library
    never builds it). ``batch`` is the batch the blocks cut: with GQA, the (..., Hk, g) grid of
    query heads."""
    seed = attention_impl.draw_seed()
    blocks = attention_impl.Blocks.choose(batch, length, source, dtype, is_causal)
    parts, number = [], 0
    for group in blocks.groups:
        shape = (*blocks.group_batch(group), source)
        tiles = []
        for start in blocks.starts:
            rows = min(blocks.rows, length - start)
            tiles.append(attention_impl.keep_mask(shape, rows, dropout_p, seed, number))
            number += 1
        parts.append(torch.cat(tiles, -2))
    return blocks.assemble(parts)


_TORCH_SDPA = TF.scaled_dot_product_attention  # kept: tests patch the module attribute


def sdpa_with_blockwise_dropout(
    query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False
):
    """torch's math SDPA (``_scaled_dot_product_attention_math``) applying the keep-mask that
    manualgrad's blocks draw: the dropout reference with the same random numbers."""
    if dropout_p in (0.0, 1.0):  # nothing random to match
        attention_impl.draw_seed()
        return _TORCH_SDPA(
            query, key, value, attn_mask, dropout_p, is_causal, scale=scale, enable_gqa=enable_gqa
        )
    query_batch, key_batch = query.shape[:-2], key.shape[:-2]
    grouped = enable_gqa and query.dim() >= 3 and query.shape[-3] != key.shape[-3]
    if grouped:  # the blocks cut the (..., Hk, g) grid the query heads are viewed as
        query_batch = (*query_batch[:-1], key.shape[-3], query.shape[-3] // key.shape[-3])
        key_batch = (*key_batch, 1)
    batch = torch.broadcast_shapes(query_batch, key_batch)
    length, source = query.shape[-2], key.shape[-2]
    keep = blockwise_keep_mask(batch, length, source, dropout_p, query.dtype, is_causal)
    if grouped:
        keep = keep.flatten(-4, -3)  # (..., Hk, g, L, S) → (..., Hq, L, S)
    if attn_mask is not None and attn_mask.dtype == torch.bool:  # the public op converts it
        attn_mask = torch.zeros(attn_mask.shape, dtype=query.dtype).masked_fill(
            ~attn_mask, -math.inf
        )
    return torch.ops.aten._scaled_dot_product_attention_math(
        query, key, value, attn_mask, dropout_p, is_causal, keep, scale=scale, enable_gqa=enable_gqa
    )[0]


OPS = [
    OpInfo(
        "scaled_dot_product_attention",
        F.scaled_dot_product_attention,
        TF.scaled_dot_product_attention,
        F.AttentionFunction,
        sdpa_samples,
        sdpa_errors,
        compile=True,
        # Q, K, V, O, ℓ: torch's flash kernel's set; at L = S = E = 1 torch takes its math path,
        # which saves four 1-element tensors to our five.
        saved_bytes_slack=1.25,
    ),
    # Random: both draw the same seed, the reference applies the blocks' keep-mask; no
    # vmap/compile (see tests/test_attention.py).
    OpInfo(
        "scaled_dot_product_attention_dropout",
        seeded(F.scaled_dot_product_attention),
        seeded(sdpa_with_blockwise_dropout),
        F.AttentionFunction,
        sdpa_dropout_samples,
        vmap=False,
    ),
    # Blocks of 2 query rows: causal blocks skipping keys (L ≠ S), masks split across blocks,
    # per-block dropout regenerated in backward, empty sequences.
    OpInfo(
        "scaled_dot_product_attention_blocks",
        seeded(in_blocks(F.scaled_dot_product_attention)),
        seeded(in_blocks(sdpa_with_blockwise_dropout)),
        F.AttentionFunction,
        sdpa_block_samples,
        saved_bytes_slack=1.25,  # a float mask is saved where torch's math path saves P: at
        # these sizes (L·S = 30) P is no larger than the mask, and O and ℓ add 20 %
    ),
]


def _mha_inputs(kw, dtype):
    def make(length, features):
        shape = (2, length, features) if kw.get("batch_first") else (length, 2, features)
        return tensor(*shape, dtype=dtype)

    embed = kw["embed_dim"]
    return make(3, embed), make(4, kw.get("kdim") or embed), make(4, kw.get("vdim") or embed)


MODULES = [
    ModuleInfo(
        "MultiheadAttention",
        mnn.MultiheadAttention,
        torch.nn.MultiheadAttention,
        [
            {"embed_dim": 4, "num_heads": 2},
            {"embed_dim": 6, "num_heads": 3, "bias": False, "batch_first": True},
            {"embed_dim": 4, "num_heads": 1, "kdim": 3, "vdim": 5},
            {"embed_dim": 4, "num_heads": 2, "add_bias_kv": True, "add_zero_attn": True},
        ],
        _mha_inputs,
    ),
]
