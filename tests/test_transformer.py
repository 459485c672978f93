"""The fused transformer ops beyond the registry's generic properties: HF's rotary convention,
one graph node per op, what add + norm saves, and a Llama-style block's gradients."""

from __future__ import annotations

import torch
import torch.nn.functional as TF

import manualgrad.functional as F
from manualgrad.testing.entries.transformer import hf_rotate_half
from manualgrad.testing.memory import saved_bytes
from tests.autograd_graph import graph_nodes


def _rotary_tables(length, dim):
    """HF's cos/sin: inverse frequencies 10000^(−2i/D), angles duplicated over both halves."""
    inv_freq = 1.0 / 10000 ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    angles = torch.outer(torch.arange(length, dtype=torch.float64), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def test_rotary_matches_hf_and_preserves_norms_and_relative_positions():
    cos, sin = _rotary_tables(6, 8)
    q = torch.randn(2, 3, 6, 8, dtype=torch.float64)
    rotated = F.apply_rotary(q, cos, sin)
    torch.testing.assert_close(rotated, q * cos + hf_rotate_half(q) * sin)
    torch.testing.assert_close(F.rotate_half(q), hf_rotate_half(q))
    torch.testing.assert_close(rotated.norm(dim=-1), q.norm(dim=-1))  # a rotation per pair
    # ⟨R_m q, R_n k⟩ depends on m − n only: shifting both positions by one keeps the scores
    k = torch.randn(1, 1, 1, 8, dtype=torch.float64).expand(1, 1, 6, 8)
    qq = torch.randn(1, 1, 1, 8, dtype=torch.float64).expand(1, 1, 6, 8)
    scores = F.apply_rotary(qq, cos, sin)[..., 1:, :] * F.apply_rotary(k, cos, sin)[..., :-1, :]
    assert torch.allclose(scores.sum(-1), scores.sum(-1)[..., :1].expand_as(scores.sum(-1)))


def _nodes(tensor):
    return [cls.__name__ if cls else name for name, cls in graph_nodes(tensor.grad_fn)]


def test_each_fused_op_is_one_node():
    a, b = (torch.randn(4, 6, requires_grad=True) for _ in range(2))
    for out in (F.swiglu(a, b), F.geglu(a, b), F.add_rms_norm(a, b, 6)[0]):
        custom = [n for n in _nodes(out) if n.endswith("Function")]
        assert len(custom) == 1, custom


def test_add_norm_saves_the_returned_sum_not_its_inputs():
    x, r = (torch.randn(64, 128, requires_grad=True) for _ in range(2))
    w = torch.randn(128, requires_grad=True)
    ours = saved_bytes(lambda: F.add_rms_norm(x, r, (128,), w))
    assert ours == (64 * 128 + 128 + 64) * 4  # h, w, one r per row
    unfused = saved_bytes(lambda: TF.rms_norm(x + r, (128,), w))
    assert ours <= unfused


def test_llama_style_block_gradients_match_unfused_torch():
    torch.manual_seed(0)
    width, heads, length = 16, 2, 5
    cos, sin = _rotary_tables(length, width // heads)
    params = [
        torch.randn(s, dtype=torch.float64, requires_grad=True)
        for s in [
            (width,),
            (3 * width, width),
            (width, width),
            (width,),
            (2, 32, width),
            (width, 32),
        ]
    ]

    def block(x, fused):
        norm_w, qkv_w, out_w, mlp_norm_w, up_w, down_w = params
        h = TF.rms_norm(x, (width,), norm_w) if not fused else F.rms_norm(x, (width,), norm_w)
        q, k, v = (t.view(1, length, heads, -1).transpose(1, 2) for t in (h @ qkv_w.T).chunk(3, -1))
        if fused:
            q, k = F.apply_rotary(q, cos, sin), F.apply_rotary(k, cos, sin)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            q, k = (t * cos + hf_rotate_half(t) * sin for t in (q, k))
            a = TF.scaled_dot_product_attention(q, k, v, is_causal=True)
        a = a.transpose(1, 2).reshape(1, length, width) @ out_w.T
        if fused:
            normed, x = F.add_rms_norm(a, x, (width,), mlp_norm_w)
            gated = F.swiglu(normed @ up_w[0].T, normed @ up_w[1].T)
        else:
            x = a + x
            normed = TF.rms_norm(x, (width,), mlp_norm_w)
            gated = TF.silu(normed @ up_w[0].T) * (normed @ up_w[1].T)
        return x + gated @ down_w.T

    x = torch.randn(1, length, width, dtype=torch.float64, requires_grad=True)
    grads = [
        torch.autograd.grad(block(x, fused).square().sum(), [x, *params]) for fused in (True, False)
    ]
    for ours, theirs in zip(*grads, strict=True):
        torch.testing.assert_close(ours, theirs)
