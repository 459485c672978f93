"""Loss properties the registry matrix cannot express: nan means of empty batches (assert_close
does not equate nans), torch's warnings, masked (−inf) logits under ignore_index, value checks
skipped under vmap, and the hinge loss's target gradient."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as TF

import manualgrad.functional as F
import manualgrad.nn as mnn

EMPTY = torch.empty(0, 4)
EMPTY_CASES = [
    ("mse_loss", (EMPTY, EMPTY), {}),
    ("l1_loss", (EMPTY, EMPTY), {}),
    ("huber_loss", (EMPTY, EMPTY), {}),
    ("binary_cross_entropy_with_logits", (EMPTY, EMPTY), {}),
    ("cross_entropy", (EMPTY, torch.empty(0, dtype=torch.long)), {}),
    ("cross_entropy", (EMPTY, torch.empty(0, dtype=torch.long)), {"label_smoothing": 0.1}),
    ("cross_entropy", (EMPTY, EMPTY), {}),
    ("cross_entropy", (torch.empty(2, 4, 0), torch.empty(2, 0, dtype=torch.long)), {}),
    ("nll_loss", (EMPTY, torch.empty(0, dtype=torch.long)), {}),
    ("cross_entropy", (torch.randn(3, 4), torch.full((3,), -100)), {}),  # all ignored
    ("cross_entropy", (torch.randn(3, 4), torch.full((3,), 1)), {"ignore_index": 1}),
    ("nll_loss", (torch.randn(3, 4), torch.full((3,), -100)), {}),
]


@pytest.mark.parametrize(
    ("name", "args", "kwargs"), EMPTY_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(EMPTY_CASES)]
)
def test_mean_over_nothing_is_what_torch_returns(name, args, kwargs):
    results = []
    for fn in (getattr(F, name), getattr(TF, name)):
        leaves = [a.clone().requires_grad_(a.is_floating_point()) for a in args]
        loss = fn(*leaves, **kwargs)
        (grad,) = torch.autograd.grad(loss, leaves[0])
        results.append((loss, grad))
    (loss, grad), (expected_loss, expected_grad) = results
    torch.testing.assert_close(loss, expected_loss, equal_nan=True)
    torch.testing.assert_close(grad, expected_grad, equal_nan=True)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_multi_margin_loss_of_an_empty_batch_is_zero(reduction):
    # torch returns an uninitialised scalar here (garbage such as 3e-25); the sum of no terms is 0
    input = torch.empty(0, 4, requires_grad=True)
    loss = F.multi_margin_loss(input, torch.empty(0, dtype=torch.long), reduction=reduction)
    assert loss.item() == 0
    assert torch.autograd.grad(loss, input)[0].shape == (0, 4)


def test_hinge_loss_target_gradient_matches_the_plain_formula():
    input = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    target = (torch.randint(2, (4, 3)) * 2 - 1).double().requires_grad_()
    ours = torch.autograd.grad(F.hinge_loss(input, target, margin=0.5), (input, target))
    expected = torch.autograd.grad((0.5 - target * input).clamp_min(0).mean(), (input, target))
    for a, b in zip(ours, expected, strict=True):
        torch.testing.assert_close(a, b)


def test_hinge_loss_module_is_a_torch_loss():
    loss = mnn.HingeLoss(margin=2.0, reduction="sum")
    assert isinstance(loss, torch.nn.modules.loss._Loss)
    assert (loss.margin, loss.reduction) == (2.0, "sum")


def test_masked_logits_of_ignored_samples_do_not_poison_the_loss():
    logits = torch.randn(3, 4)
    logits[:, 0] = -torch.inf
    target = torch.tensor([1, -100, 2])
    for kwargs in ({}, {"label_smoothing": 0.0, "reduction": "none"}):
        leaves = [logits.clone().requires_grad_() for _ in range(2)]
        ours = F.cross_entropy(leaves[0], target, **kwargs)
        theirs = TF.cross_entropy(leaves[1], target, **kwargs)
        torch.testing.assert_close(ours, theirs)
        grads = [
            torch.autograd.grad(out.sum(), x)[0]
            for out, x in zip((ours, theirs), leaves, strict=True)
        ]
        torch.testing.assert_close(*grads)


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
def test_regression_losses_warn_like_torch_when_sizes_differ(name):
    input, target = torch.randn(3, 4), torch.randn(4)
    with pytest.warns(UserWarning, match="different to the input size") as ours:
        getattr(F, name)(input, target)
    assert ours[0].filename == __file__  # attributed to the caller, as torch does


def test_legacy_size_average_and_reduce_warn_and_resolve_like_torch():
    input, target = torch.randn(3, 4), torch.randn(3, 4)
    for legacy in ({"size_average": False}, {"reduce": False}, {"size_average": True}):
        with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
            ours = F.mse_loss(input, target, **legacy)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = TF.mse_loss(input, target, **legacy)
        torch.testing.assert_close(ours, expected)


def test_class_index_check_is_skipped_when_targets_are_vmapped():
    logits, targets = torch.randn(5, 3, 4), torch.randint(4, (5, 3))
    batched = torch.func.vmap(F.cross_entropy)(logits, targets)
    looped = torch.stack([TF.cross_entropy(x, t) for x, t in zip(logits, targets, strict=True)])
    torch.testing.assert_close(batched, looped)


def test_hinge_target_check_is_skipped_when_targets_are_vmapped():
    inputs, targets = torch.randn(5, 3), (torch.randint(2, (5, 3)) * 2 - 1).float()
    batched = torch.func.vmap(F.hinge_loss)(inputs, targets)
    looped = torch.stack([F.hinge_loss(x, t) for x, t in zip(inputs, targets, strict=True)])
    torch.testing.assert_close(batched, looped)
