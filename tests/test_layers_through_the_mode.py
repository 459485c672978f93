"""Issue 10's remaining layers (1-d and adaptive pools, dropout variants, embedding_bag,
weight/spectral norm) on converted models: the modules are swapped for their twins, the
functional calls in ``forward`` are routed, and the backward graph holds no native compute node."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF

import manualgrad
import manualgrad.nn as mnn
from manualgrad.conversion import twin_classes
from manualgrad.graph_coverage import coverage


class Pools1d(torch.nn.Module):
    """torch's 1-d pool modules, and the functional pools called in ``forward``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv1d(2, 3, 3, padding=1)
        self.max = torch.nn.MaxPool1d(3, stride=2, padding=1)
        self.avg = torch.nn.AvgPool1d(2)
        self.adaptive = torch.nn.AdaptiveAvgPool1d(3)
        self.adaptive_max = torch.nn.AdaptiveMaxPool1d(2)
        self.adaptive_max2d = torch.nn.AdaptiveMaxPool2d((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.adaptive(self.avg(self.max(self.conv(x))))
        z = TF.max_pool1d(x, 2) + TF.avg_pool1d(x, 2)
        planes = (
            TF.adaptive_max_pool2d(x.unsqueeze(1), (3, None)).sum() + self.adaptive_max2d(x).sum()
        )
        pooled = self.adaptive_max(z) + TF.adaptive_max_pool1d(z, 2, return_indices=True)[0]
        return y.sum() + TF.adaptive_avg_pool1d(z, 1).sum() + planes.sum() + pooled.sum()


def test_1d_pools_have_twins():
    twins = twin_classes()
    names = (
        "MaxPool1d",
        "AvgPool1d",
        "AdaptiveAvgPool1d",
        "AdaptiveMaxPool1d",
        "AdaptiveMaxPool2d",
    )
    for name in names:
        assert twins[getattr(torch.nn, name)] is getattr(mnn, name)


def test_converted_1d_pools_are_hand_derived_and_match_torch():
    torch.manual_seed(0)
    model, x = Pools1d().double(), torch.randn(2, 2, 12, dtype=torch.float64)
    expected = model(x)
    expected.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    converted = manualgrad.convert(model)
    report = coverage(converted, x)
    assert report.complete, report
    output = converted(x)
    output.backward()
    torch.testing.assert_close(output, expected)
    for param, grad in zip(converted.parameters(), grads, strict=True):
        torch.testing.assert_close(param.grad, grad)


class Dropouts(torch.nn.Module):
    """torch's dropout variants as modules and functional calls."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.drops = torch.nn.Sequential(
            torch.nn.Dropout2d(0.3), torch.nn.FeatureAlphaDropout(0.2), torch.nn.AlphaDropout(0.1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.drops(self.conv(x)).flatten(2)
        z = TF.dropout1d(y, 0.2) + TF.alpha_dropout(y, 0.3, training=True)
        return z.sum() + TF.dropout3d(x.unsqueeze(2), 0.5).sum()


def test_converted_dropout_variants_are_hand_derived_and_draw_torchs_masks():
    torch.manual_seed(0)
    model, x = Dropouts().double(), torch.randn(2, 3, 4, 4, dtype=torch.float64)
    torch.manual_seed(1)
    expected = model(x)
    expected.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    converted = manualgrad.convert(model)
    names = ("Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout")
    twins = twin_classes()
    assert all(twins[getattr(torch.nn, name)] is getattr(mnn, name) for name in names)
    report = coverage(converted, x)
    assert report.complete, report
    torch.manual_seed(1)
    output = converted(x)
    output.backward()
    torch.testing.assert_close(output, expected)
    for param, grad in zip(converted.parameters(), grads, strict=True):
        torch.testing.assert_close(param.grad, grad)


@pytest.mark.parametrize(
    ("parametrization", "node"),
    [
        (torch.nn.utils.parametrizations.weight_norm, "WeightNormFunctionBackward"),
        (torch.nn.utils.parametrizations.spectral_norm, "MatmulFunctionBackward"),  # mv, vdot
    ],
)
def test_norm_parametrizations_are_hand_derived_on_a_converted_model(parametrization, node):
    torch.manual_seed(0)
    layer = parametrization(torch.nn.Linear(3, 4).double())
    model, x = torch.nn.Sequential(layer, torch.nn.Tanh()), torch.randn(2, 3, dtype=torch.float64)
    model.eval()  # spectral_norm: no power iteration, so both runs see the same u, v
    model(x).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    converted = manualgrad.convert(model)
    report = coverage(converted, x)
    assert report.complete, report
    assert node in report.hand_derived
    converted(x).sum().backward()
    for param, grad in zip(converted.parameters(), grads, strict=True):
        torch.testing.assert_close(param.grad, grad)


class Bags(torch.nn.Module):
    """torch's EmbeddingBag module, and embedding_bag called in ``forward`` on a second table
    (max bags, and per-sample-weighted sums through the module)."""

    def __init__(self) -> None:
        super().__init__()
        self.bags = torch.nn.EmbeddingBag(10, 4, mode="sum", padding_idx=0)
        self.table = torch.nn.Parameter(torch.randn(10, 4))
        self.head = torch.nn.Linear(4, 2)

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        weights = torch.linspace(0.5, 1.5, ids.shape[0], dtype=self.table.dtype)
        summed = self.bags(ids, offsets, per_sample_weights=weights)
        maxed = TF.embedding_bag(ids, self.table, offsets, mode="max")
        averaged = TF.embedding_bag(ids.view(2, -1), self.table)
        return TF.cross_entropy(self.head(summed + maxed), torch.tensor([0, 1])) + averaged.sum()


def test_converted_embedding_bags_are_hand_derived_and_match_torch():
    torch.manual_seed(0)
    model = Bags().double()
    ids, offsets = torch.tensor([3, 0, 7, 7, 1, 9, 2, 5]), torch.tensor([0, 3])
    expected = model(ids, offsets)
    expected.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    converted = manualgrad.convert(model)
    assert type(converted.bags) is mnn.EmbeddingBag
    assert twin_classes()[torch.nn.EmbeddingBag] is mnn.EmbeddingBag
    report = coverage(converted, ids, offsets)
    assert report.complete, report
    assert "EmbeddingBagFunctionBackward" in report.hand_derived
    loss = converted(ids, offsets)
    loss.backward()
    torch.testing.assert_close(loss, expected)
    for param, grad in zip(converted.parameters(), grads, strict=True):
        torch.testing.assert_close(param.grad, grad)
