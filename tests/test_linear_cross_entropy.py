"""linear_cross_entropy: torch 2.13's signature, equal to cross_entropy(linear(x, W, b), t) in
value and gradients, double backward without options and refused with them (gradients saved as
constants), and ≥ 4× fewer bytes kept."""

from __future__ import annotations

import functools
import inspect

import pytest
import torch
import torch.nn.functional as TF

import manualgrad.functional as F
import manualgrad.nn as mnn
from manualgrad.bench.memory import peak_bytes
from manualgrad.functional.fused import default_chunk_size
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
@pytest.mark.parametrize("with_options", [False, True])
def test_value_and_gradients_equal_unfused(reduction, label_smoothing, chunk_size, with_options):
    x, weight, target, bias = _problem()
    kwargs = {"reduction": reduction, "label_smoothing": label_smoothing}
    options = _options(chunk_size) if with_options or chunk_size else None
    ours = F.linear_cross_entropy(x, weight, target, linear_bias=bias, options=options, **kwargs)
    expected = TF.cross_entropy(TF.linear(x, weight, bias), target, **kwargs)
    torch.testing.assert_close(ours, expected, rtol=1e-12, atol=1e-12)
    grad = torch.rand_like(ours) + 0.5
    grads = torch.autograd.grad(ours, (x, weight, bias), grad)
    expected_grads = torch.autograd.grad(expected, (x, weight, bias), grad)
    for g, e in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-12)


def _options(chunk_size=None):
    return torch.nn.LinearCrossEntropyOptions(batch_chunk_size=chunk_size)


def test_signature_is_torchs():
    ours = inspect.signature(F.linear_cross_entropy).parameters.values()
    theirs = inspect.signature(TF.linear_cross_entropy).parameters.values()
    assert [(p.name, p.kind, p.default) for p in ours] == [
        (p.name, p.kind, p.default) for p in theirs
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"weight": torch.rand(50, dtype=torch.float64) + 0.5},
        {"weight": torch.rand(50, dtype=torch.float64) + 0.5, "reduction": "none"},
        {"ignore_index": 7, "label_smoothing": 0.1},
    ],
)
def test_torch_style_calls_match_torch(kwargs):
    x, weight, target, bias = _problem()
    target[target == -100] = 7
    ours = F.linear_cross_entropy(x, weight, target, linear_bias=bias, **kwargs)
    expected = TF.linear_cross_entropy(x, weight, target, linear_bias=bias, **kwargs)
    torch.testing.assert_close(ours, expected)
    grad = torch.rand_like(ours) + 0.5
    grads = torch.autograd.grad(ours, (x, weight, bias), grad)
    expected_grads = torch.autograd.grad(expected, (x, weight, bias), grad)
    for g, e in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(g, e)


def test_probability_targets_unbatched_and_k_dimensional_heads_match_torch():
    x, weight, _, bias = _problem(rows=6, vocab=4, ignored=())
    probabilities = torch.rand(6, 4, dtype=torch.float64).softmax(1)
    cases = [
        ((x, weight, probabilities), {"linear_bias": bias}),
        ((x[0], weight, torch.tensor(2)), {}),
        ((x, weight.reshape(2, 2, -1), torch.randint(0, 2, (6, 2))), {}),
    ]
    for args, kwargs in cases:
        ours = F.linear_cross_entropy(*args, **kwargs)
        torch.testing.assert_close(ours, TF.linear_cross_entropy(*args, **kwargs))


def test_double_backward_without_options_matches_torch():
    x, weight, target, bias = _problem(rows=9, vocab=6, ignored=(1,))
    ours = F.linear_cross_entropy(x, weight, target, linear_bias=bias)
    expected = TF.linear_cross_entropy(x, weight, target, linear_bias=bias)
    (grad,) = torch.autograd.grad(ours, x, create_graph=True)
    (expected_grad,) = torch.autograd.grad(expected, x, create_graph=True)
    second = torch.autograd.grad(grad.square().sum(), weight)
    expected_second = torch.autograd.grad(expected_grad.square().sum(), weight)
    torch.testing.assert_close(second, expected_second)


def test_tied_weight_gradients_accumulate():
    x, weight, target, _ = _problem()
    embedded = weight[:5].sum()  # the head's weight also used elsewhere, as when tied
    ours = F.linear_cross_entropy(x, weight, target, options=_options()) + embedded
    expected = TF.cross_entropy(TF.linear(x, weight), target) + embedded
    (grad,) = torch.autograd.grad(ours, weight)
    (expected_grad,) = torch.autograd.grad(expected, weight)
    torch.testing.assert_close(grad, expected_grad)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_double_backward_raises_a_clear_error(reduction):
    x, weight, target, bias = _problem()
    loss = F.linear_cross_entropy(
        x, weight, target, linear_bias=bias, reduction=reduction, options=_options()
    )
    with pytest.raises(RuntimeError, match="does not support double backward"):
        torch.autograd.grad(loss, x, create_graph=True)


def test_no_grad_forward_saves_and_computes_no_gradients():
    x, weight, target, bias = _problem()
    with torch.no_grad():
        value = F.linear_cross_entropy(x, weight, target, linear_bias=bias, options=_options())
    assert value.grad_fn is None
    detached = [t.detach() for t in (x, weight, bias)]
    call = functools.partial(F.linear_cross_entropy, detached[0], detached[1], target)
    assert saved_bytes(call) == 0
    assert saved_bytes(functools.partial(call, options=_options())) == 0


def test_all_ignored_mean_is_nan_with_zero_gradients_like_torch():
    x, weight, target, bias = _problem(rows=4, ignored=range(4))
    for options in (None, _options()):
        loss = F.linear_cross_entropy(x, weight, target, linear_bias=bias, options=options)
        assert loss.isnan()
        assert not torch.autograd.grad(loss, x)[0].any()


def test_module_matches_torchs_linear_cross_entropy_loss():
    x, _, target, _ = _problem(dtype=torch.float32)
    kwargs = {"bias": True, "label_smoothing": 0.05, "options": _options(8)}
    expected_module = torch.nn.LinearCrossEntropyLoss(8, 50, **kwargs)
    module = mnn.LinearCrossEntropyLoss(8, 50, **kwargs)
    module.load_state_dict(expected_module.state_dict())
    assert repr(module) == repr(expected_module)
    torch.testing.assert_close(module(x, target), expected_module(x, target))


def _saved_ratio(tokens, hidden, vocab):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(tokens, hidden, generator=generator, requires_grad=True)
    weight = (0.02 * torch.randn(vocab, hidden, generator=generator)).requires_grad_()
    target = torch.randint(0, vocab, (tokens,), generator=generator)
    fused = saved_bytes(lambda: F.linear_cross_entropy(x, weight, target, options=_options()))
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
    ours = F.linear_cross_entropy(x, weight, target, linear_bias=bias, label_smoothing=-0.1)
    expected = TF.cross_entropy(TF.linear(x, weight, bias), target, label_smoothing=-0.1)
    torch.testing.assert_close(ours, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours, F.cross_entropy(F.linear(x, weight, bias), target))


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_batched_grad_outputs_match_one_backward_each(reduction):
    # is_grads_batched (autograd's legacy vmap) must take the out-of-place backward
    x, weight, target, bias = _problem()
    loss = F.linear_cross_entropy(x, weight, target, linear_bias=bias, reduction=reduction)
    batched = torch.randn(3, *loss.shape, dtype=loss.dtype)
    inputs = (x, weight, bias)
    grads = torch.autograd.grad(loss, inputs, batched, retain_graph=True, is_grads_batched=True)
    for row, grad_output in enumerate(batched):
        single = torch.autograd.grad(loss, inputs, grad_output, retain_graph=True)
        for b, s in zip(grads, single, strict=True):
            torch.testing.assert_close(b[row], s)


@pytest.mark.parametrize("options", [None, _options()])
def test_peak_memory_is_one_chunk_of_logits_above_the_gradients(options):
    # forward + backward hold dL/dx, dL/dW and one default chunk's logits buffer or two, never
    # the (N, V) logits (the GPT bench's head: a regression here doubled its peak)
    tokens, hidden, vocab = 1024, 128, 8192
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(tokens, hidden, generator=generator, requires_grad=True)
    weight = (0.02 * torch.randn(vocab, hidden, generator=generator)).requires_grad_()
    target = torch.randint(0, vocab, (tokens,), generator=generator)

    def step():
        loss = F.linear_cross_entropy(x, weight, target, options=options)
        return torch.autograd.grad(loss, (x, weight))

    chunk = default_chunk_size(tokens, vocab) * vocab * 4
    grads = (tokens * hidden + vocab * hidden) * 4
    assert peak_bytes(step) <= 2 * grads + 2 * chunk  # the logits alone: 32 MiB
