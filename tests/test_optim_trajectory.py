"""First-order optimizers follow torch.optim's for-loop implementation step for step."""

from __future__ import annotations

import pytest
import torch
from optim_registry import (
    OPTIMIZERS,
    TOLERANCE,
    assert_states_close,
    assert_tensors_close,
    cases,
    clone_params,
    config_id,
    make_params,
    step_together,
)

STEPS = 50


def run_both(info, kwargs, params, steps=STEPS, seed=0):
    """Step manualgrad's and torch's optimizer side by side on copies of ``params``."""
    ours_params, theirs_params = params, clone_params(params)
    ours = info.ours(ours_params, **kwargs)
    theirs = info.reference(theirs_params, foreach=False, **kwargs)
    gen = torch.Generator().manual_seed(seed)
    step_together([ours, theirs], [ours_params, theirs_params], gen, steps)
    return ours, theirs, ours_params, theirs_params


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(
    ("info", "kwargs"),
    [pytest.param(info, kw, id=f"{info.name}-{config_id(kw)}") for info, kw in cases()],
)
def test_trajectory_matches_torch(info, kwargs, dtype):
    if isinstance(kwargs.get("lr"), torch.Tensor):  # tensor arithmetic in the parameters' dtype
        kwargs = dict(kwargs, lr=torch.tensor(kwargs["lr"].item(), dtype=dtype))
    ours, theirs, ours_params, theirs_params = run_both(info, kwargs, make_params(dtype))
    for mine, reference in zip(ours_params, theirs_params, strict=True):
        assert_tensors_close(mine, reference, TOLERANCE[dtype])
    assert_states_close(ours, theirs, TOLERANCE[dtype])


@pytest.mark.parametrize("info", OPTIMIZERS, ids=lambda info: info.name)
def test_complex_parameters_match_torch(info):
    gen = torch.Generator().manual_seed(1)
    params = [torch.randn(3, 2, generator=gen, dtype=torch.complex128).requires_grad_()]
    _, _, ours_params, theirs_params = run_both(info, info.rich, params, steps=10)
    assert_tensors_close(ours_params[0], theirs_params[0], 1e-12)
