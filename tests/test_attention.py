"""Attention beyond the generic matrix: MultiheadAttention's forward options against torch
(masks, causal hint, weights, dropout with the same seed, packed self-attention), what SDPA
saves, and its graph."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF

import manualgrad.functional as F
import manualgrad.nn as mnn
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


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")
@pytest.mark.parametrize("case", list(CASES))
def test_multihead_attention_matches_torch(case):
    module_kwargs, inputs, call_kwargs = CASES[case]
    ours, theirs = _pair(**{"embed_dim": E, "num_heads": 2, **module_kwargs})
    out, weights, grads, _ = _run(ours, inputs, call_kwargs)
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


@pytest.mark.parametrize("enable_gqa", [False, True])
def test_sdpa_dropout_mask_equals_torch_math_path(enable_gqa):
    q = torch.randn(2, 4, 3, 5)
    heads = 2 if enable_gqa else 4
    k, v = torch.randn(2, heads, 6, 5), torch.eye(6).expand(2, heads, 6, 6)
    outputs = []
    for fn in (F.scaled_dot_product_attention, TF.scaled_dot_product_attention):
        torch.manual_seed(11)
        outputs.append(fn(q, k, v, dropout_p=0.5, enable_gqa=enable_gqa))
    # V = I makes the output the attention weights themselves: zeros are the dropped entries
    assert torch.equal(outputs[0] == 0, outputs[1] == 0)
    torch.testing.assert_close(outputs[0], outputs[1])


def test_sdpa_saves_row_statistics_not_the_probability_matrix():
    q, k, v = (torch.randn(2, 4, 64, 16, requires_grad=True) for _ in range(3))
    ours = saved_bytes(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    native = saved_bytes(lambda: TF.scaled_dot_product_attention(q, k, v, is_causal=True))
    element = q.element_size()
    assert ours == 3 * q.numel() * element + 2 * 4 * 64 * element  # q, k, v and the log-sum-exp
    assert ours < native
    with_dropout = saved_bytes(lambda: F.scaled_dot_product_attention(q, k, v, dropout_p=0.1))
    assert with_dropout == ours + 2 * 4 * 64 * 64  # plus a bool dropout mask
