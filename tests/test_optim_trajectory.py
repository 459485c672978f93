"""Every optimizer follows its reference (torch.optim's for-loop implementation, or a plain-math
one for an optimizer torch lacks) step for step: the first-order ones on shared random
gradients, the closure-driven ones (L-BFGS, Newton, Hessian-free) on a smooth convex objective."""

from __future__ import annotations

import pytest
import torch

from manualgrad.testing.optim import (
    ON_CLOSURES,
    ON_GRADS,
    TOLERANCE,
    TWINS_ON_GRADS,
    assert_states_close,
    assert_tensors_close,
    cases,
    clone_params,
    closure_for,
    config_id,
    convex_loss,
    make_params,
    step_together,
)

STEPS = 50


def run_both(info, kwargs, params, steps=STEPS, seed=0):
    """Step manualgrad's optimizer and its reference side by side on copies of ``params``."""
    ours_params, theirs_params = params, clone_params(params)
    ours = info.ours(ours_params, **kwargs)
    theirs = info.make_reference(theirs_params, **kwargs)
    gen = torch.Generator().manual_seed(seed)
    step_together([ours, theirs], [ours_params, theirs_params], gen, steps)
    return ours, theirs, ours_params, theirs_params


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(
    ("info", "kwargs"),
    [pytest.param(info, kw, id=f"{info.name}-{config_id(kw)}") for info, kw in cases(ON_GRADS)],
)
def test_trajectory_matches_reference(info, kwargs, dtype):
    if isinstance(kwargs.get("lr"), torch.Tensor):  # tensor arithmetic in the parameters' dtype
        kwargs = dict(kwargs, lr=torch.tensor(kwargs["lr"].item(), dtype=dtype))
    ours, theirs, ours_params, theirs_params = run_both(info, kwargs, make_params(dtype))
    for mine, reference in zip(ours_params, theirs_params, strict=True):
        assert_tensors_close(mine, reference, TOLERANCE[dtype])
    if info.torch_twin:
        assert_states_close(ours, theirs, TOLERANCE[dtype])


@pytest.mark.parametrize("info", TWINS_ON_GRADS, ids=lambda info: info.name)
def test_complex_parameters_match_torch(info):
    gen = torch.Generator().manual_seed(1)
    params = [torch.randn(3, 2, generator=gen, dtype=torch.complex128).requires_grad_()]
    _, _, ours_params, theirs_params = run_both(info, info.rich, params, steps=10)
    assert_tensors_close(ours_params[0], theirs_params[0], 1e-12)


CLOSURE_STEPS = 5


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(
    ("info", "kwargs"),
    [pytest.param(info, kw, id=f"{info.name}-{config_id(kw)}") for info, kw in cases(ON_CLOSURES)],
)
def test_closure_trajectory_matches_reference(info, kwargs, dtype):
    if isinstance(kwargs.get("lr"), torch.Tensor):
        kwargs = dict(kwargs, lr=torch.tensor(kwargs["lr"].item(), dtype=dtype))
    ours_params = make_params(dtype)
    theirs_params = clone_params(ours_params)
    ours = info.ours(ours_params, **kwargs)
    theirs = info.make_reference(theirs_params, **kwargs)
    for _ in range(CLOSURE_STEPS):
        for optimizer, params in ((ours, ours_params), (theirs, theirs_params)):
            optimizer.step(
                closure_for(optimizer, info.ours.second_order, lambda p=params: convex_loss(p))
            )
    for mine, reference in zip(ours_params, theirs_params, strict=True):
        assert_tensors_close(mine, reference, TOLERANCE[dtype])
