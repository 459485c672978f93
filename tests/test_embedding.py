"""Embedding options outside the generic matrix: max_norm, sparse gradients, from_pretrained."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF

import manualgrad.functional as F
import manualgrad.nn as mnn


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.5])
def test_max_norm_renormalises_in_place_like_torch(dtype, norm_type):
    weight = torch.randn(20, 5, dtype=dtype) * 2
    indices = torch.randint(0, 20, (3, 7))
    ours, theirs = weight.clone().requires_grad_(), weight.clone().requires_grad_()
    out = F.embedding(indices, ours, max_norm=1.5, norm_type=norm_type)
    expected = TF.embedding(indices, theirs, max_norm=1.5, norm_type=norm_type)
    assert torch.equal(out, expected)
    assert torch.equal(ours, theirs)  # same rows renormalised, bit for bit
    assert ours._version == theirs._version > 0
    grad = torch.randn_like(out)
    assert torch.equal(
        *(torch.autograd.grad(o, w, grad)[0] for o, w in ((out, ours), (expected, theirs)))
    )


def _sparse_grads(**kwargs):
    weight = torch.randn(6, 3)
    indices = torch.tensor([[0, 2, 2, 5], [2, 1, 0, 2]])
    grads = []
    for fn in (F.embedding, TF.embedding):
        leaf = weight.clone().requires_grad_()
        out = fn(indices, leaf, sparse=True, **kwargs)
        (grad,) = torch.autograd.grad(out, leaf, torch.arange(24.0).reshape(2, 4, 3))
        grads.append(grad)
    return grads


@pytest.mark.parametrize("padding_idx", [None, 2])
def test_sparse_gradient_matches_torch(padding_idx):
    ours, theirs = _sparse_grads(padding_idx=padding_idx)
    assert ours.is_sparse and ours.shape == theirs.shape
    assert torch.equal(ours._indices(), theirs._indices())
    torch.testing.assert_close(ours.to_dense(), theirs.to_dense())


def test_sparse_refuses_scale_grad_by_freq_like_torch():
    with pytest.raises(RuntimeError, match="scale_grad_by_freq not supported with sparse"):
        _sparse_grads(scale_grad_by_freq=True)


def test_sparse_module_trains_with_sgd_like_torch():
    torch.manual_seed(0)
    ours = mnn.Embedding(8, 3, sparse=True)
    theirs = torch.nn.Embedding(8, 3, sparse=True)
    theirs.load_state_dict(ours.state_dict())
    indices = torch.tensor([1, 4, 4, 7])
    for module in (ours, theirs):
        optimizer = torch.optim.SGD(module.parameters(), lr=0.5)
        for _ in range(3):
            optimizer.zero_grad()
            module(indices).square().sum().backward()
            optimizer.step()
    torch.testing.assert_close(ours.weight, theirs.weight)


def test_from_pretrained_builds_the_manualgrad_class():
    table = torch.randn(4, 2)
    layer = mnn.Embedding.from_pretrained(table, padding_idx=0)
    assert type(layer) is mnn.Embedding and not layer.weight.requires_grad
    assert torch.equal(layer(torch.tensor([3, 1])), table[[3, 1]])
    trainable = mnn.Embedding.from_pretrained(table, freeze=False)
    trainable(torch.tensor([0, 0])).sum().backward()
    assert torch.equal(trainable.weight.grad, torch.tensor([[2.0, 2.0], [0, 0], [0, 0], [0, 0]]))
