"""torch.autocast on CPU with bfloat16 (issue 14): manualgrad's Functions take the dtypes torch's
twins take (linear/conv/prelu in bfloat16, losses in float32, the rest in their inputs'
dtype), forward and backward, and the digits MLP trains under autocast."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF
from sklearn.datasets import load_digits

import manualgrad.functional as F
import manualgrad.nn as mnn
import manualgrad.optim

BF16 = {"device_type": "cpu", "dtype": torch.bfloat16}


def _mlp(nn, activation="ReLU"):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(64, 48),
        getattr(nn, activation)(),
        nn.LayerNorm(48),
        nn.Linear(48, 10),
    )


@pytest.mark.parametrize("activation", ["ReLU", "GELU", "Tanh"])
def test_mlp_forward_and_backward_dtypes_and_values_match_native(activation):
    native, ours = _mlp(torch.nn, activation), _mlp(mnn, activation)
    ours.load_state_dict(native.state_dict())
    generator = torch.Generator().manual_seed(1)
    x, target = torch.randn(32, 64, generator=generator), torch.randint(0, 10, (32,))
    results = []
    for model, functional in ((native, TF), (ours, F)):
        with torch.autocast(**BF16):
            logits = model(x)
            loss = functional.cross_entropy(logits, target)
        loss.backward()
        grads = [p.grad for p in model.parameters()]
        results.append((logits, loss, grads))
    (logits, loss, grads), (expected_logits, expected_loss, expected_grads) = results[1], results[0]
    assert logits.dtype == expected_logits.dtype == torch.bfloat16
    assert loss.dtype == expected_loss.dtype == torch.float32
    torch.testing.assert_close(logits, expected_logits, atol=3e-2, rtol=2e-2)
    torch.testing.assert_close(loss, expected_loss, atol=1e-2, rtol=1e-2)
    for grad, expected in zip(grads, expected_grads, strict=True):
        assert grad.dtype == expected.dtype == torch.float32
        torch.testing.assert_close(grad, expected, atol=2e-2, rtol=5e-2)


@pytest.mark.parametrize(
    "ours, theirs, args",
    [
        (F.linear, TF.linear, (torch.randn(4, 3), torch.randn(5, 3), torch.randn(5))),
        (F.conv2d, TF.conv2d, (torch.randn(1, 2, 5, 5), torch.randn(3, 2, 3, 3))),
        (F.prelu, TF.prelu, (torch.randn(4, 3), torch.rand(3))),
        (
            F.linear_relu,
            lambda x, w: TF.relu(TF.linear(x, w)),
            (torch.randn(4, 3), torch.randn(2, 3)),
        ),
        (F.relu, TF.relu, (torch.randn(4, 3),)),
        (F.softmax, TF.softmax, (torch.randn(4, 3).bfloat16(), 1)),
        (F.mse_loss, TF.mse_loss, (torch.randn(4, 3).bfloat16(), torch.randn(4, 3))),
        (
            F.linear_cross_entropy,
            TF.linear_cross_entropy,
            (torch.randn(6, 3), torch.randn(5, 3), torch.randint(0, 5, (6,))),
        ),
    ],
    ids=["linear", "conv2d", "prelu", "linear_relu", "relu", "softmax", "mse", "lce"],
)
def test_each_policy_gives_torchs_dtypes(ours, theirs, args):
    def run(function):
        leaves = [
            a.clone().requires_grad_()
            if isinstance(a, torch.Tensor) and a.is_floating_point()
            else a
            for a in args
        ]
        with torch.autocast(**BF16):
            output = function(*leaves)
        output.float().sum().backward()
        return output, [a.grad for a in leaves if isinstance(a, torch.Tensor) and a.requires_grad]

    (output, grads), (expected, expected_grads) = run(ours), run(theirs)
    assert output.dtype == expected.dtype
    torch.testing.assert_close(output, expected, atol=5e-2, rtol=2e-2)
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        assert grad.dtype == expected_grad.dtype
        torch.testing.assert_close(grad, expected_grad, atol=5e-2, rtol=5e-2)


def test_digits_mlp_trains_under_autocast():
    digits = load_digits()
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(len(digits.target), generator=generator)
    x = torch.tensor(digits.data, dtype=torch.float32)[order] / 16
    y = torch.tensor(digits.target)[order]
    train, test = slice(0, 1400), slice(1400, None)
    model = _mlp(mnn)
    optimizer = manualgrad.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(10):
        for batch in torch.randperm(1400, generator=generator).split(64):
            with torch.autocast(**BF16):
                loss = F.cross_entropy(model(x[train][batch]), y[train][batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    assert all(p.dtype == torch.float32 for p in model.parameters())
    with torch.no_grad(), torch.autocast(**BF16):
        accuracy = (model(x[test]).argmax(1) == y[test]).float().mean().item()
    assert accuracy > 0.93
