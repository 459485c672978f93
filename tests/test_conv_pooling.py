"""Convolution and pooling properties the generic registry matrix does not express: padding
modes, channels-last inputs, and max pooling's choice of winner (ties, NaN, −∞) being torch's."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF

import manualgrad.functional as F
import manualgrad.nn as mnn
from manualgrad.graph_coverage import node_name


@pytest.mark.parametrize("cls", [mnn.Conv1d, mnn.Conv2d])
def test_padding_modes_other_than_zeros_are_refused_clearly(cls):
    with pytest.raises(NotImplementedError, match="padding_mode='reflect'"):
        cls(2, 3, 3, padding=1, padding_mode="reflect")
    layer = cls(2, 3, 3, padding=1)
    layer.padding_mode = "circular"
    with pytest.raises(NotImplementedError, match="padding_mode='circular'"):
        layer(torch.randn(1, 2, *[5] * (layer.weight.dim() - 2)))


def test_conv2d_on_channels_last_memory_matches_torch():
    x = torch.randn(2, 3, 6, 5).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(4, 3, 3, 3).contiguous(memory_format=torch.channels_last)
    results = []
    for conv in (F.conv2d, TF.conv2d):
        leaves = [t.detach().clone(memory_format=torch.preserve_format) for t in (x, weight)]
        for leaf in leaves:
            leaf.requires_grad_()
        y = conv(*leaves, stride=2, padding=1)
        results.append((y, *torch.autograd.grad(y, leaves, torch.ones_like(y))))
    for ours, theirs in zip(*results, strict=True):
        torch.testing.assert_close(ours, theirs)


def test_backward_nodes_are_manualgrad_functions():
    x = torch.randn(1, 2, 6, 6, requires_grad=True)
    y = F.max_pool2d(F.conv2d(x, torch.randn(2, 2, 3, 3)), 2)
    # or their compiled twins' nodes, which node_name reads as the Python Functions'
    assert node_name(y.grad_fn) == "MaxPool2dFunctionBackward"
    assert node_name(y.grad_fn.next_functions[0][0]) == "ConvolutionFunctionBackward"


POOLS = [
    {"kernel_size": 2},
    {"kernel_size": 3, "stride": 2, "padding": 1},
    {"kernel_size": 3, "stride": 1, "padding": 1, "dilation": 2, "ceil_mode": True},
]


@pytest.mark.parametrize("kwargs", POOLS)
def test_max_pool_ties_pick_torchs_winner(kwargs):
    x = torch.randint(0, 3, (2, 3, 7, 6)).double()  # many equal values per window
    ours, theirs = (x.clone().requires_grad_() for _ in range(2))
    y, indices = F.max_pool2d(ours, return_indices=True, **kwargs)
    expected, expected_indices = TF.max_pool2d(theirs, return_indices=True, **kwargs)
    assert torch.equal(indices, expected_indices)
    grad = torch.randn_like(y)
    y.backward(grad)
    expected.backward(grad)
    torch.testing.assert_close(ours.grad, theirs.grad)


def test_max_pool_nan_and_minus_infinity_follow_torch():
    nan, inf = float("nan"), float("inf")
    x = torch.tensor(
        [[[1.0, nan, 3.0, nan, 0.0], [5.0, nan, -1.0, 2.0, 1.0], [-inf] * 5, [-inf] * 5]]
    )
    for kwargs in POOLS:
        y, indices = F.max_pool2d(x, return_indices=True, **kwargs)
        expected, expected_indices = TF.max_pool2d(x, return_indices=True, **kwargs)
        torch.testing.assert_close(y, expected, equal_nan=True)
        assert torch.equal(indices, expected_indices)
