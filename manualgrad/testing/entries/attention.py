"""Registry entries (see manualgrad.testing.registry): scaled dot-product attention and
multi-head attention."""

import torch
import torch.nn.functional as TF

import manualgrad.functional as F
import manualgrad.nn as mnn
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


def sdpa_dropout_samples(dtype):
    yield Sample("dropout", _qkv(dtype), {"dropout_p": 0.3})
    yield Sample("dropout_mask", _qkv(dtype), {"dropout_p": 0.5, "attn_mask": _bool_mask()})
    yield Sample(
        "dropout_gqa",
        _qkv(dtype, batch=(2, 4), kv_batch=(2, 2)),
        {"dropout_p": 0.4, "enable_gqa": True},
    )
    yield Sample("dropout_1", _qkv(dtype), {"dropout_p": 1.0})


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


OPS = [
    OpInfo(
        "scaled_dot_product_attention",
        F.scaled_dot_product_attention,
        TF.scaled_dot_product_attention,
        F.AttentionFunction,
        sdpa_samples,
        sdpa_errors,
        compile=True,
    ),
    # Random: seeded wrappers draw torch's mask; no vmap/compile (see tests/test_attention.py).
    OpInfo(
        "scaled_dot_product_attention_dropout",
        seeded(F.scaled_dot_product_attention),
        seeded(TF.scaled_dot_product_attention),
        F.AttentionFunction,
        sdpa_dropout_samples,
        vmap=False,
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
