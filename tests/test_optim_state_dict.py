"""state_dict moves both ways between manualgrad.optim and torch.optim, and survives
torch.save / torch.load(weights_only=True)."""

from __future__ import annotations

import io

import pytest
import torch

from manualgrad.testing.optim import (
    TOLERANCE,
    TWINS_ON_GRADS,
    assert_tensors_close,
    clone_params,
    make_params,
    set_random_grads,
    step_together,
)

F64 = TOLERANCE[torch.float64]


def run(optimizers, params, steps, gen):
    """``steps`` steps of one optimizer class per phase, handing the state dict over between
    phases through torch.save / torch.load(weights_only=True)."""
    state = None
    for factory in optimizers:
        optimizer = factory(params)
        if state is not None:
            buffer = io.BytesIO()
            torch.save(state, buffer)
            buffer.seek(0)
            optimizer.load_state_dict(torch.load(buffer, weights_only=True))
        step_together([optimizer], [params], gen, steps)
        state = optimizer.state_dict()
    return params


@pytest.mark.parametrize("direction", ["torch->manualgrad", "manualgrad->torch"])
@pytest.mark.parametrize("info", TWINS_ON_GRADS, ids=lambda info: info.name)
def test_state_dict_interchange(info, direction):
    kwargs = info.rich

    def ours(params):
        return info.ours(params, **kwargs)

    def theirs(params):
        return info.reference(params, foreach=False, **kwargs)

    start = make_params(torch.float64)
    phases = [theirs, ours] if direction == "torch->manualgrad" else [ours, theirs]
    handed_over = run(phases, clone_params(start), 10, torch.Generator().manual_seed(0))
    uninterrupted = run([theirs], clone_params(start), 20, torch.Generator().manual_seed(0))
    for mine, reference in zip(handed_over, uninterrupted, strict=True):
        assert_tensors_close(mine, reference, F64)


@pytest.mark.parametrize("info", TWINS_ON_GRADS, ids=lambda info: info.name)
def test_state_dict_layout_matches_torch(info):
    ours_params, theirs_params = make_params(torch.float32), make_params(torch.float32)
    ours = info.ours(ours_params, **info.rich)
    theirs = info.reference(theirs_params, **info.rich)
    gen = torch.Generator().manual_seed(0)
    set_random_grads([ours_params, theirs_params], gen)
    ours.step()
    theirs.step()
    ours_dict, theirs_dict = ours.state_dict(), theirs.state_dict()
    assert ours_dict["param_groups"] == theirs_dict["param_groups"]
    for index, state in theirs_dict["state"].items():
        mine = ours_dict["state"][index]
        assert list(mine) == list(state)
        for key, value in state.items():
            assert type(mine[key]) is type(value)
            if torch.is_tensor(value):
                assert (mine[key].dtype, mine[key].shape) == (value.dtype, value.shape)
