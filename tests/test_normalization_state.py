"""Batch norm's state: running stats and num_batches_tracked follow torch step by step, eval mode
normalises with them, and the layer is twice differentiable (gradient penalties)."""

from __future__ import annotations

import pytest
import torch

import manualgrad.nn as mnn


def _twins(cls, reference, **kwargs):
    ours, theirs = cls(**kwargs).double(), reference(**kwargs).double()
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def _train_steps(ours, theirs, shape, steps=20):
    generator = torch.Generator().manual_seed(3)
    for _ in range(steps):
        x = torch.randn(shape, generator=generator, dtype=torch.float64) * 3 + 1
        torch.testing.assert_close(ours(x), theirs(x))
        for key, value in theirs.state_dict().items():
            torch.testing.assert_close(ours.state_dict()[key], value, rtol=1e-12, atol=1e-12)


CASES = [
    (mnn.BatchNorm1d, torch.nn.BatchNorm1d, (6, 3)),
    (mnn.BatchNorm1d, torch.nn.BatchNorm1d, (4, 3, 5)),
    (mnn.BatchNorm2d, torch.nn.BatchNorm2d, (4, 3, 2, 5)),
]


@pytest.mark.parametrize(("cls", "reference", "shape"), CASES)
@pytest.mark.parametrize("momentum", [0.1, None])
def test_running_stats_follow_torch_for_20_steps(cls, reference, shape, momentum):
    ours, theirs = _twins(cls, reference, num_features=3, momentum=momentum)
    _train_steps(ours, theirs, shape)
    assert ours.num_batches_tracked.item() == 20
    assert not torch.allclose(ours.running_var, torch.ones(3, dtype=torch.float64))


@pytest.mark.parametrize(("cls", "reference", "shape"), CASES)
def test_eval_mode_normalises_with_running_stats(cls, reference, shape):
    ours, theirs = _twins(cls, reference, num_features=3)
    _train_steps(ours, theirs, shape, steps=5)
    ours.eval(), theirs.eval()
    x = torch.randn(shape, dtype=torch.float64)
    tracked = ours.num_batches_tracked.clone()
    y = ours(x)
    torch.testing.assert_close(y, theirs(x))
    dims = [0, *range(2, x.dim())]
    view = [1, 3] + [1] * (x.dim() - 2)
    running = (x - ours.running_mean.view(view)) / (ours.running_var.view(view) + ours.eps).sqrt()
    expected = running * ours.weight.view(view) + ours.bias.view(view)
    torch.testing.assert_close(y, expected)
    assert not torch.allclose(y.mean(dims), ours.bias)  # not batch statistics
    assert torch.equal(ours.num_batches_tracked, tracked)


def test_untracked_stats_normalise_with_the_batch_in_eval():
    ours, theirs = _twins(mnn.BatchNorm1d, torch.nn.BatchNorm1d, num_features=3)
    ours.track_running_stats = theirs.track_running_stats = False
    ours.running_mean = ours.running_var = theirs.running_mean = theirs.running_var = None
    ours.eval(), theirs.eval()
    x = torch.randn(5, 3, dtype=torch.float64)
    torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("training", [True, False])
def test_double_backward_gradient_penalty_matches_torch(training):
    ours, theirs = _twins(mnn.BatchNorm2d, torch.nn.BatchNorm2d, num_features=3)
    ours.train(training), theirs.train(training)
    x = torch.randn(3, 3, 2, 2, dtype=torch.float64)
    grads = []
    for module in (ours, theirs):
        leaf = x.clone().requires_grad_()
        (grad_x,) = torch.autograd.grad(module(leaf).pow(3).sum(), leaf, create_graph=True)
        penalty = grad_x.square().sum()
        grads.append(torch.autograd.grad(penalty, [leaf, *module.parameters()]))
    for g, e in zip(*grads, strict=True):
        torch.testing.assert_close(g, e)


def test_batch_norm_twice_differentiable_in_training():
    weight, bias = torch.randn(3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    inputs = (torch.randn(4, 3, 2, dtype=torch.float64), weight, bias)
    inputs = tuple(t.requires_grad_() for t in inputs)

    def call(x, w, b):
        return mnn.functional.batch_norm(x, None, None, w, b, training=True)

    assert torch.autograd.gradgradcheck(call, inputs)
