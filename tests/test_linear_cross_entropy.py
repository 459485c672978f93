"""linear_cross_entropy: equal to cross_entropy(linear(x, W, b), t) in value and gradients,
refuses double backward where its gradients are constants, and keeps ≥ 4× fewer bytes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF

import manualgrad.functional as F
import manualgrad.nn as mnn
from manualgrad.testing.memory import saved_bytes


def _problem(rows=37, hidden=8, vocab=50, dtype=torch.float64, ignored=(2, 11, 30)):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(rows, hidden, dtype=dtype, generator=generator, requires_grad=True)
    weight = torch.randn(vocab, hidden, dtype=dtype, generator=generator, requires_grad=True)
    bias = torch.randn(vocab, dtype=dtype, generator=generator, requires_grad=True)
    target = torch.randint(0, vocab, (rows,), generator=generator)
    target[list(ignored)] = -100
    return x, weight, target, bias


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("chunk_size", [None, 5, 64])
def test_value_and_gradients_equal_unfused(reduction, label_smoothing, chunk_size):
    x, weight, target, bias = _problem()
    kwargs = {"reduction": reduction, "label_smoothing": label_smoothing}
    ours = F.linear_cross_entropy(x, weight, target, bias, chunk_size=chunk_size, **kwargs)
    expected = TF.cross_entropy(TF.linear(x, weight, bias), target, **kwargs)
    torch.testing.assert_close(ours, expected, rtol=1e-12, atol=1e-12)
    grad = torch.rand_like(ours) + 0.5
    grads = torch.autograd.grad(ours, (x, weight, bias), grad)
    expected_grads = torch.autograd.grad(expected, (x, weight, bias), grad)
    for g, e in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-12)


def test_tied_weight_gradients_accumulate():
    x, weight, target, _ = _problem()
    embedded = weight[:5].sum()  # the head's weight also used elsewhere, as when tied
    ours = F.linear_cross_entropy(x, weight, target) + embedded
    expected = TF.cross_entropy(TF.linear(x, weight), target) + embedded
    (grad,) = torch.autograd.grad(ours, weight)
    (expected_grad,) = torch.autograd.grad(expected, weight)
    torch.testing.assert_close(grad, expected_grad)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_double_backward_raises_a_clear_error(reduction):
    x, weight, target, bias = _problem()
    loss = F.linear_cross_entropy(x, weight, target, bias, reduction=reduction)
    with pytest.raises(RuntimeError, match="does not support double backward"):
        torch.autograd.grad(loss, x, create_graph=True)


def test_no_grad_forward_saves_and_computes_no_gradients():
    x, weight, target, bias = _problem()
    with torch.no_grad():
        value = F.linear_cross_entropy(x, weight, target, bias)
    assert value.grad_fn is None
    detached = [t.detach() for t in (x, weight, bias)]
    assert saved_bytes(lambda: F.linear_cross_entropy(detached[0], detached[1], target)) == 0


def test_all_ignored_mean_is_nan_with_zero_gradients_like_torch():
    x, weight, target, bias = _problem(rows=4, ignored=range(4))
    loss = F.linear_cross_entropy(x, weight, target, bias)
    assert loss.isnan()
    assert not torch.autograd.grad(loss, x)[0].any()


def test_module_matches_cross_entropy_loss_over_a_linear_head():
    x, weight, target, bias = _problem(dtype=torch.float32)
    ours = mnn.LinearCrossEntropyLoss(label_smoothing=0.05, chunk_size=8)(x, weight, target, bias)
    expected = torch.nn.CrossEntropyLoss(label_smoothing=0.05)(TF.linear(x, weight, bias), target)
    torch.testing.assert_close(ours, expected)


def _saved_ratio(tokens, hidden, vocab):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(tokens, hidden, generator=generator, requires_grad=True)
    weight = (0.02 * torch.randn(vocab, hidden, generator=generator)).requires_grad_()
    target = torch.randint(0, vocab, (tokens,), generator=generator)
    fused = saved_bytes(lambda: F.linear_cross_entropy(x, weight, target))
    unfused = saved_bytes(lambda: TF.cross_entropy(TF.linear(x, weight), target))
    assert fused == (tokens * hidden + vocab * hidden) * 4  # dL/dx and dL/dW only
    return unfused / fused


def test_saved_bytes_four_times_below_unfused_at_one_eighth_scale():
    # every dimension of the (4096, 512, 32000) problem divided by 8: the same ratio
    assert _saved_ratio(512, 64, 4000) >= 4


@pytest.mark.slow
def test_saved_bytes_four_times_below_unfused_at_full_scale():
    assert _saved_ratio(4096, 512, 32000) >= 4


def test_negative_label_smoothing_is_ignored_like_torch():
    # torch (and our cross_entropy(linear(...))) accept ε < 0 and treat it as 0
    x, weight, target, bias = _problem()
    ours = F.linear_cross_entropy(x, weight, target, bias, label_smoothing=-0.1)
    expected = TF.cross_entropy(TF.linear(x, weight, bias), target, label_smoothing=-0.1)
    torch.testing.assert_close(ours, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours, F.cross_entropy(F.linear(x, weight, bias), target))
