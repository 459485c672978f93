"""Generic tests over every registry module: drop-in equivalence with its torch.nn twin."""

from __future__ import annotations

import pytest
import torch

from tests.registry import MODULES


def _cases():
    return [
        pytest.param(info, kwargs, id=f"{info.name}-{i}")
        for info in MODULES
        for i, kwargs in enumerate(info.kwargs)
    ]


def _pair(info, kwargs, dtype=torch.float32):
    torch.manual_seed(0)
    ours = info.module(**kwargs).to(dtype)
    torch.manual_seed(0)
    theirs = info.reference(**kwargs).to(dtype)
    return ours, theirs


@pytest.mark.parametrize(("info", "kwargs"), _cases())
def test_seeded_construction_equals_torch(info, kwargs):
    ours, theirs = _pair(info, kwargs)
    assert repr(ours) == repr(theirs)
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(theirs_state)
    for key in ours_state:
        torch.testing.assert_close(ours_state[key], theirs_state[key], rtol=0, atol=0)


@pytest.mark.parametrize(("info", "kwargs"), _cases())
def test_state_dict_loads_both_ways(info, kwargs):
    ours, theirs = _pair(info, kwargs)
    torch.manual_seed(1)
    donor = info.reference(**kwargs)
    ours.load_state_dict(donor.state_dict())
    theirs.load_state_dict(ours.state_dict())
    for key, value in donor.state_dict().items():
        torch.testing.assert_close(theirs.state_dict()[key], value, rtol=0, atol=0)


@pytest.mark.parametrize(("info", "kwargs"), _cases())
def test_forward_and_every_gradient_match_torch(info, kwargs):
    ours, theirs = _pair(info, kwargs)
    inputs = info.inputs(kwargs, torch.float32)
    results = []
    for module in (ours, theirs):
        leaves = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
        output = module(*leaves)
        output = output[0] if isinstance(output, tuple) else output
        grad_output = torch.randn(output.shape, generator=torch.Generator().manual_seed(2))
        differentiable = [x for x in leaves if x.requires_grad] + list(module.parameters())
        grads = torch.autograd.grad(output, differentiable, grad_output, allow_unused=True)
        results.append((output.detach(), grads))
    (out, grads), (expected_out, expected_grads) = results
    torch.testing.assert_close(out, expected_out, atol=info.atol, rtol=info.rtol)
    for g, e in zip(grads, expected_grads, strict=True):
        if e is None:
            assert g is None or not g.any()
        else:
            torch.testing.assert_close(g, e, atol=info.atol, rtol=info.rtol)
