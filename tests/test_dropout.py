"""Dropout's special properties: torch's mask for the same seed, E[y] = x, what is saved."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF

import manualgrad.functional as F
import manualgrad.nn as mnn


def _seeded(fn, *args, seed=7, **kwargs):
    torch.manual_seed(seed)
    return fn(*args, **kwargs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("noncontiguous", [False, True])
def test_mask_and_values_equal_torch_for_the_same_seed(dtype, p, noncontiguous):
    x = torch.randn(6, 37, dtype=dtype)
    if noncontiguous:
        x = torch.randn(37, 6, dtype=dtype).t()
    ours = _seeded(F.dropout, x, p)
    theirs = _seeded(TF.dropout, x, p)
    assert torch.equal(ours, theirs)
    ones = torch.ones_like(x)
    assert torch.equal(_seeded(F.dropout, ones, p) != 0, _seeded(TF.dropout, ones, p) != 0)
    _seeded(F.dropout, x, p)
    after_ours = torch.rand(3)
    _seeded(TF.dropout, x, p)
    assert torch.equal(after_ours, torch.rand(3))  # the RNG advanced by the same amount


@pytest.mark.parametrize("p", [0.2, 0.7])
def test_expected_value_and_drop_rate(p):
    n = 200_000
    y = F.dropout(torch.ones(n), p)
    dropped = (y == 0).double().mean().item()
    tolerance = 5 * (p * (1 - p) / n) ** 0.5  # five standard deviations
    assert abs(dropped - p) < tolerance
    assert abs(y.double().mean().item() - 1) < tolerance / (1 - p)
    assert torch.all((y == 0) | (y == torch.tensor(1 / (1 - p))))


def test_saves_only_a_bool_mask():
    x = torch.randn(4, 5, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = F.dropout(x, 0.3)
    assert [t.dtype for t in saved] == [torch.bool]
    (grad,) = torch.autograd.grad(y, x, torch.ones_like(y))
    torch.testing.assert_close(grad, (y != 0) / 0.7)


def test_identity_paths_return_the_input():
    x = torch.randn(3, 4)
    state = torch.get_rng_state()
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    assert torch.equal(torch.get_rng_state(), state)  # no random numbers drawn
    assert torch.equal(F.dropout(x, 1.0), torch.zeros_like(x))


def test_module_train_and_eval_match_torch():
    x = torch.randn(5, 8)
    ours, theirs = mnn.Dropout(0.25), torch.nn.Dropout(0.25)
    assert torch.equal(_seeded(ours, x), _seeded(theirs, x))
    ours.eval()
    assert ours(x) is x


def test_vmap_draws_per_sample_or_shared_masks():
    x = torch.ones(3, 500)
    different = torch.func.vmap(lambda t: F.dropout(t, 0.5), randomness="different")(x)
    same = torch.func.vmap(lambda t: F.dropout(t, 0.5), randomness="same")(x)
    assert not torch.equal(different[0], different[1])
    assert torch.equal(same[0], same[1])
