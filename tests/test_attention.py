"""Attention beyond the generic matrix: MultiheadAttention's forward options against torch
(masks, causal hint, weights, dropout with the same keep-mask, packed self-attention), what SDPA
saves and its peak memory, the block choice, dropout's distribution, Hessian-vector products,
half precision with a float32 mask, and torch's errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as TF

import manualgrad.functional as F
import manualgrad.nn as mnn
from manualgrad.bench.memory import peak_bytes
from manualgrad.functional import attention as attention_impl
from manualgrad.functional.dropout import keep_scale
from manualgrad.testing.entries.attention import blockwise_keep_mask, sdpa_with_blockwise_dropout
from manualgrad.testing.memory import saved_bytes
from tests.autograd_graph import graph_nodes

L, S, N, E = 3, 4, 2, 8
PADDING = torch.tensor([[False, False, True, False], [False, True, False, False]])
BOOL_MASK = torch.tensor(
    [[False, True, False, False], [False, False, False, True], [True, False, False, False]]
)
CAUSAL = torch.nn.Transformer.generate_square_subsequent_mask(L, dtype=torch.float64)


def _pair(**kwargs):
    torch.manual_seed(0)
    ours = mnn.MultiheadAttention(**kwargs).double()
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(**kwargs).double()
    return ours, theirs


def _run(module, inputs, call_kwargs):
    """Output, weights and the gradients of a weighted sum of both w.r.t. inputs and params."""
    leaves = {id(x): x.detach().clone().requires_grad_() for x in inputs}
    args = [leaves[id(x)] for x in inputs]  # keeps query is key is value for self-attention
    torch.manual_seed(3)
    output, weights = module(*args, **call_kwargs)
    loss = (output * torch.linspace(-1, 1, output.numel()).view(output.shape)).sum()
    if weights is not None:
        loss = loss + (weights * torch.linspace(0, 1, weights.numel()).view(weights.shape)).sum()
    grads = torch.autograd.grad(loss, [*leaves.values(), *module.parameters()])
    return output, weights, grads, loss.grad_fn


def _data(*shape):
    return torch.randn(*shape, dtype=torch.float64)


X, K, V = _data(L, N, E), _data(S, N, E), _data(S, N, E)

CASES = {
    "self": ({}, (X, X, X), {}),
    "padding": ({}, (X, K, V), {"key_padding_mask": PADDING}),
    "bool_masks_kv_shared": ({}, (X, K, K), {"attn_mask": BOOL_MASK, "key_padding_mask": PADDING}),
    "float_3d_mask_per_head": (
        {},
        (X, K, V),
        {"attn_mask": _data(N * 2, L, S), "average_attn_weights": False},
    ),
    "mixed_masks": ({}, (X, K, V), {"attn_mask": BOOL_MASK, "key_padding_mask": -9.0 * PADDING}),
    "causal_hint_sdpa": (
        {},
        (X, X, X),
        {"attn_mask": CAUSAL, "is_causal": True, "need_weights": False},
    ),
    "causal_hint_weights": ({}, (X, X, X), {"attn_mask": CAUSAL, "is_causal": True}),
    "dropout_weights": ({"dropout": 0.3}, (X, X, X), {}),
    "dropout_sdpa": ({"dropout": 0.3}, (X, K, V), {"need_weights": False}),
    "batch_first_no_bias": (
        {"num_heads": 4, "bias": False, "batch_first": True},
        (X.transpose(0, 1),) * 3,
        {},
    ),
    "kdim_vdim": (
        {"kdim": 5, "vdim": 3},
        (X, _data(S, N, 5), _data(S, N, 3)),
        {"key_padding_mask": PADDING},
    ),
    "bias_kv_zero_attn": (
        {"add_bias_kv": True, "add_zero_attn": True},
        (X, K, V),
        {"attn_mask": _data(L, S), "key_padding_mask": PADDING},
    ),
    "unbatched": ({}, (X[:, 0], K[:, 0], V[:, 0]), {"key_padding_mask": PADDING[0]}),
}


def _blockwise_dropout(input, p=0.5, training=True, inplace=False):
    """torch.nn.functional.dropout of MHA's (N·H, L, S) weights with our blocks' keep-mask."""
    batch, length, source = input.shape
    keep = blockwise_keep_mask((batch,), length, source, p, input.dtype)
    return input * keep_scale(keep, p, input.dtype)


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")
@pytest.mark.filterwarnings("ignore:Dropout mask should only be used for testing")
@pytest.mark.parametrize("case", list(CASES))
def test_multihead_attention_matches_torch(case, monkeypatch):
    module_kwargs, inputs, call_kwargs = CASES[case]
    ours, theirs = _pair(**{"embed_dim": E, "num_heads": 2, **module_kwargs})
    out, weights, grads, _ = _run(ours, inputs, call_kwargs)
    # torch's MHA draws its dropout noise itself: give it the keep-mask our blocks drew
    monkeypatch.setattr(TF, "scaled_dot_product_attention", sdpa_with_blockwise_dropout)
    monkeypatch.setattr(TF, "dropout", _blockwise_dropout)
    expected_out, expected_weights, expected_grads, _ = _run(theirs, inputs, call_kwargs)
    torch.testing.assert_close(out, expected_out, rtol=1e-10, atol=1e-10)
    assert (weights is None) == (expected_weights is None)
    if weights is not None:
        torch.testing.assert_close(weights, expected_weights, rtol=1e-10, atol=1e-10)
    for g, e in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-10)


def _graph_functions(grad_fn):
    """Names of the nodes reachable from ``grad_fn``; a custom node by its autograd.Function."""
    return {cls.__name__ if cls else name for name, cls in graph_nodes(grad_fn)}


def test_multihead_attention_graph_runs_manualgrad_functions():
    ours, _ = _pair(embed_dim=E, num_heads=2)
    *_, grad_fn = _run(ours, (X, X, X), {})
    names = _graph_functions(grad_fn)
    assert {"LinearFunction", "AttentionFunction"} <= names
    assert not names & {"AddmmBackward0", "BmmBackward0", "SoftmaxBackward0", "MmBackward0"}


def test_is_causal_without_mask_raises_like_torch():
    ours, theirs = _pair(embed_dim=E, num_heads=2)
    for module in (ours, theirs):
        with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal"):
            module(X, X, X, is_causal=True)


@pytest.mark.filterwarnings("ignore:Dropout mask should only be used for testing")
@pytest.mark.parametrize("enable_gqa", [False, True])
def test_sdpa_dropout_equals_torch_math_path_with_the_blocks_keep_mask(enable_gqa):
    q = torch.randn(2, 4, 7, 5)
    heads = 2 if enable_gqa else 4
    k, v = torch.randn(2, heads, 6, 5), torch.eye(6).expand(2, heads, 6, 6)
    outputs = []
    with attention_impl.block_rows(3):
        for fn in (F.scaled_dot_product_attention, sdpa_with_blockwise_dropout):
            torch.manual_seed(11)
            outputs.append(fn(q, k, v, dropout_p=0.5, enable_gqa=enable_gqa))
    # V = I makes the output the attention weights themselves: zeros are the dropped entries
    assert torch.equal(outputs[0] == 0, outputs[1] == 0)
    torch.testing.assert_close(outputs[0], outputs[1])


def test_dropout_has_torchs_distribution_and_independent_blocks():
    p, shape = 0.3, (4, 8, 256, 256)
    torch.manual_seed(0)
    keep = blockwise_keep_mask(shape[:2], shape[2], shape[3], p, torch.float32)
    blocks = attention_impl.Blocks.choose(shape[:2], shape[2], shape[3], torch.float32)
    assert len(blocks.groups) > 1  # several blocks
    kept = keep.double().mean().item()
    assert abs(kept - (1 - p)) < 4 * math.sqrt(p * (1 - p) / keep.numel())
    first, second = (blocks.select(keep, group) for group in blocks.groups[:2])
    assert (first != second).double().mean().item() == pytest.approx(2 * p * (1 - p), abs=0.01)
    torch.manual_seed(0)
    assert torch.equal(keep, blockwise_keep_mask(shape[:2], shape[2], shape[3], p, torch.float32))
    q, ones = torch.randn(shape, requires_grad=True), torch.ones((*shape[:-1], 1))
    torch.manual_seed(0)
    out = F.scaled_dot_product_attention(q, q, ones, dropout_p=p)
    torch.manual_seed(0)
    torch.testing.assert_close(out, sdpa_with_blockwise_dropout(q, q, ones, dropout_p=p))
    # the output is rowsum(P ⊙ M)/(1 − p): its mean over rows is 1 in expectation (the rows'
    # values are independent: within 4 standard errors)
    assert abs(out.mean().item() - 1) < 4 * out.std().item() / math.sqrt(out.numel())


def test_sdpa_saves_q_k_v_output_and_row_statistics_only():
    q, k, v = (torch.randn(2, 4, 64, 16, requires_grad=True) for _ in range(3))
    ours = saved_bytes(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    native = saved_bytes(lambda: TF.scaled_dot_product_attention(q, k, v, is_causal=True))
    element = q.element_size()
    assert ours == 4 * q.numel() * element + 2 * 4 * 64 * element  # q, k, v, O and ℓ
    assert ours <= native
    with_dropout = saved_bytes(lambda: F.scaled_dot_product_attention(q, k, v, dropout_p=0.1))
    assert with_dropout == ours  # the dropout mask is regenerated, never stored


@pytest.mark.parametrize("is_causal", [False, True])
def test_peak_memory_is_tiles_not_the_score_matrix(is_causal):
    shape = (2, 4, 1024, 64)  # issue 12's size: ≤ 2× torch's flash kernel
    q, k, v = (torch.randn(shape, requires_grad=True) for _ in range(3))
    grad = torch.randn(shape)

    def step(fn):
        return lambda: torch.autograd.grad(fn(q, k, v, is_causal=is_causal), (q, k, v), grad)

    ours = peak_bytes(step(F.scaled_dot_product_attention))
    native = peak_bytes(step(TF.scaled_dot_product_attention))
    scores = 2 * 4 * 1024 * 1024 * 4
    assert ours <= 2.0 * native
    assert ours < scores / 2


def test_block_setting_and_automatic_choice():
    choose = attention_impl.choose_blocks
    assert choose(1024, 1024, torch.float32) == (1, 128)  # one head's 512 KiB tile
    assert choose(1024, 1024, torch.bfloat16) == (1, 128)  # float32 tiles
    assert choose(10, 16, torch.float32) == (819, 10)  # whole heads, many per block
    assert choose(4096, 4096, torch.float32) == (1, 32)
    assert choose(64, 1 << 16, torch.float32) == (1, 16)  # the floor
    assert choose(128, 128, torch.float32, is_causal=True) == (32, 32)  # 4 causal row blocks
    assert choose(1024, 1024, torch.float32, is_causal=True) == (1, 128)
    with attention_impl.block_rows(5):
        assert choose(1024, 1024, torch.float32) == (25, 5)
        with attention_impl.block_rows(5, 2):
            assert choose(1024, 1024, torch.float32) == (2, 5)
        assert attention_impl.BLOCK_HEADS is None
    assert attention_impl.BLOCK_ROWS is None


@pytest.mark.parametrize(
    ("heads", "groups"),
    [
        (1, [(b, h) for b in range(2) for h in range(4)]),
        (2, [(b, slice(h, h + 2)) for b in range(2) for h in (0, 2)]),
        (3, [(b, slice(h, min(h + 3, 4))) for b in range(2) for h in (0, 3)]),
        (4, [(0,), (1,)]),
        (7, [(0,), (1,)]),
        (8, [()]),
    ],
)
def test_groups_of_heads(heads, groups):
    blocks = attention_impl.Blocks((2, 4), 10, heads, 3)
    assert blocks.groups == groups
    assert list(blocks.starts) == [0, 3, 6, 9]
    x = torch.randn(2, 4, 10, 5)
    parts = [blocks.select(x, group) for group in blocks.groups]
    assert torch.equal(blocks.assemble(parts), x)
    broadcast = torch.randn(4, 1, 10, 5)[:1]  # (1, 1, 10, 5): every group sees all of it
    assert all(
        torch.equal(blocks.select(broadcast, g).squeeze(), broadcast.squeeze()) for g in groups
    )


CUT_CASES = {
    "gqa_causal_long_key": ((1, 4, 5, 3), (1, 2, 7, 3), {"is_causal": True, "enable_gqa": True}),
    "causal_long_query": ((2, 3, 7, 4), (2, 3, 4, 4), {"is_causal": True}),
    "float_mask_per_batch": ((2, 3, 5, 4), (2, 3, 6, 4), {"attn_mask": (2, 1, 5, 6)}),
    "bool_mask_broadcast_kv": ((2, 3, 5, 4), (1, 3, 6, 4), {"attn_mask": "bool"}),
}


@pytest.mark.parametrize("case", list(CUT_CASES))
@pytest.mark.parametrize(("rows", "heads"), [(2, 1), (3, 2), (2, 4), (4, 5)])
def test_every_cut_gives_the_same_output_and_gradients(case, rows, heads):
    q_shape, kv_shape, kwargs = CUT_CASES[case]
    torch.manual_seed(0)
    q, k, v = (_data(*shape).requires_grad_() for shape in (q_shape, kv_shape, kv_shape))
    mask = kwargs.get("attn_mask")
    if mask == "bool":
        kwargs = {**kwargs, "attn_mask": torch.rand(q_shape[-2], kv_shape[-2]) > 0.3}
    elif mask is not None:
        kwargs = {**kwargs, "attn_mask": _data(*mask).requires_grad_()}
    leaves = [t for t in (q, k, v, kwargs.get("attn_mask")) if t is not None and t.requires_grad]
    results = []
    for cut in ((rows, heads), (1000, 1000)):
        with attention_impl.block_rows(*cut):
            out = F.scaled_dot_product_attention(q, k, v, **kwargs)
        results.append((out, *torch.autograd.grad(out, leaves, torch.ones_like(out))))
    for a, e in zip(*results, strict=True):
        torch.testing.assert_close(a, e)


def test_hessian_vector_product_matches_dense_attention():
    q, k, v = (torch.randn(1, 2, 9, 4, dtype=torch.float64, requires_grad=True) for _ in range(3))
    tangent = [torch.randn_like(t) for t in (q, k, v)]

    def hvp(fn):
        out = fn(q, k, v, is_causal=True)
        grads = torch.autograd.grad((out * out.detach().cos()).sum(), (q, k, v), create_graph=True)
        dot = sum((g * t).sum() for g, t in zip(grads, tangent, strict=True))
        return torch.autograd.grad(dot, (q, k, v))

    with attention_impl.block_rows(2):
        ours = hvp(F.scaled_dot_product_attention)
    with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH):
        expected = hvp(TF.scaled_dot_product_attention)
    for a, e in zip(ours, expected, strict=True):
        torch.testing.assert_close(a, e)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_inputs_with_a_float32_mask_match_torch(dtype):
    shapes = ((2, 2, 5, 8), (2, 2, 6, 8), (2, 2, 6, 8))
    mask = torch.randn(5, 6)
    results = []
    for fn in (F.scaled_dot_product_attention, TF.scaled_dot_product_attention):
        torch.manual_seed(0)
        q, k, v = (torch.randn(s).to(dtype).requires_grad_() for s in shapes)
        m = mask.clone().requires_grad_()
        out = fn(q, k, v, attn_mask=m)
        grads = torch.autograd.grad(out, (q, k, v, m), torch.ones_like(out))
        results.append((out, *grads))
    for a, e in zip(*results, strict=True):
        assert a.dtype == e.dtype
        torch.testing.assert_close(a, e, atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_multihead_attention_without_weights(dtype):
    ours, theirs = _pair(embed_dim=E, num_heads=2)
    ours, theirs = ours.to(dtype), theirs.to(dtype)
    x = X.to(dtype)
    mask = torch.zeros(L, L).masked_fill(torch.ones(L, L, dtype=torch.bool).triu(1), -math.inf)
    out, _ = ours(x, x, x, attn_mask=mask, need_weights=False)
    expected, _ = theirs(x, x, x, attn_mask=mask, need_weights=False)
    assert out.dtype == expected.dtype == dtype
    torch.testing.assert_close(out, expected, atol=2e-2, rtol=2e-2)


BAD_CALLS = {
    "mask_not_broadcasting": ((3, 4), (5, 4), (5, 4), {"attn_mask": torch.zeros(2, 5)}),
    "mask_growing_2d_query": ((3, 4), (5, 4), (5, 4), {"attn_mask": torch.zeros(1, 3, 5)}),
    "head_dims_differ": ((2, 3, 4), (2, 5, 3), (2, 5, 4), {}),
    "value_length_differs": ((2, 3, 4), (2, 5, 4), (2, 6, 4), {}),
    "dropout_above_one": ((2, 3, 4), (2, 5, 4), (2, 5, 4), {"dropout_p": 1.1}),
}
MESSAGES = {
    "mask_not_broadcasting": "attn_mask of shape",
    "mask_growing_2d_query": "attn_mask of shape",
    "head_dims_differ": "key's last dim",
    "value_length_differs": "value's sequence length",
    "dropout_above_one": "dropout probability",
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_calls_raise_torchs_exception_naming_the_argument(case):
    q, k, v, kwargs = BAD_CALLS[case]
    args = [torch.randn(shape) for shape in (q, k, v)]
    with pytest.raises(RuntimeError):
        TF.scaled_dot_product_attention(*args, **kwargs)
    with pytest.raises(RuntimeError, match=MESSAGES[case]):
        F.scaled_dot_product_attention(*args, **kwargs)
