"""The plumbing every optimizer shares with torch.optim: signature, defaults, groups, None and
sparse gradients, hooks, copies, closures, the foreach/fused/capturable/differentiable flags."""

from __future__ import annotations

import copy
import inspect

import pytest
import torch
from torch.autograd import gradcheck

from manualgrad.testing.optim import (
    TOLERANCE,
    TWINS_ON_GRADS,
    assert_states_close,
    assert_tensors_close,
    clone_params,
    make_params,
    set_random_grads,
    step_together,
)

BY_NAME = pytest.mark.parametrize("info", TWINS_ON_GRADS, ids=lambda info: info.name)
F64 = TOLERANCE[torch.float64]


def signature(cls: type) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(cls).parameters.values()]


@BY_NAME
def test_signature_and_defaults_match_torch(info):
    assert signature(info.ours) == signature(info.reference)
    ours = info.ours(make_params(torch.float64), **info.rich)
    theirs = info.reference(make_params(torch.float64), **info.rich)
    assert ours.defaults == theirs.defaults
    assert [group.keys() for group in ours.param_groups] == [
        group.keys() for group in theirs.param_groups
    ]


def steps_on_groups(info, build_groups, steps=10, add_group_at=None):
    """Run both libraries on parameter groups built by ``build_groups(params)``."""
    ours_params = make_params(torch.float64)
    theirs_params = clone_params(ours_params)
    ours = info.ours(build_groups(ours_params), **info.rich)
    theirs = info.reference(build_groups(theirs_params), foreach=False, **info.rich)
    gen = torch.Generator().manual_seed(0)
    for step in range(steps):
        if step == add_group_at:
            extra = torch.randn(3, dtype=torch.float64, generator=gen).requires_grad_()
            ours.add_param_group({"params": [extra], "lr": 0.02})
            theirs.add_param_group(
                {"params": [extra.detach().clone().requires_grad_()], "lr": 0.02}
            )
            ours_params.append(extra)
            theirs_params.append(theirs.param_groups[-1]["params"][0])
        set_random_grads([ours_params, theirs_params], gen)
        ours.step()
        theirs.step()
    for mine, reference in zip(ours_params, theirs_params, strict=True):
        assert_tensors_close(mine, reference, F64)
    assert_states_close(ours, theirs, F64)
    return ours


@BY_NAME
def test_param_groups_keep_their_own_hyperparameters(info):
    ours = steps_on_groups(info, lambda p: [{"params": p[:2], "lr": 0.003}, {"params": p[2:]}])
    assert ours.param_groups[0]["lr"] == 0.003


@BY_NAME
def test_add_param_group_mid_training(info):
    steps_on_groups(info, lambda p: p, add_group_at=4)


@BY_NAME
def test_parameters_without_grad_are_skipped(info):
    ours_params = make_params(torch.float64)
    theirs_params = clone_params(ours_params)
    ours = info.ours(ours_params, **info.rich)
    theirs = info.reference(theirs_params, foreach=False, **info.rich)
    gen = torch.Generator().manual_seed(0)
    step_together([ours, theirs], [ours_params[:2], theirs_params[:2]], gen, 3)
    frozen = make_params(torch.float64)[2:]
    for p, p0 in zip(ours_params[2:], frozen, strict=True):
        assert p.grad is None and torch.equal(p, p0)
    assert_states_close(ours, theirs, F64)


@BY_NAME
def test_sparse_gradients_are_rejected(info):
    param = torch.zeros(4, requires_grad=True)
    optimizer = info.ours([param], **info.rich)
    param.grad = torch.eye(4)[0].to_sparse()
    with pytest.raises(RuntimeError, match="does not support sparse gradients"):
        optimizer.step()


@BY_NAME
def test_zero_grad_hooks_and_closure(info):
    params = make_params(torch.float64)
    optimizer = info.ours(params, **info.rich)
    calls = []
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: calls.append(("pre", opt)))
    optimizer.register_step_post_hook(lambda opt, args, kwargs: calls.append(("post", opt)))

    def closure():
        optimizer.zero_grad()
        loss = sum((p**2).sum() for p in params)
        loss.backward()
        return loss

    loss = optimizer.step(closure)
    assert calls == [("pre", optimizer), ("post", optimizer)]
    assert loss.item() == pytest.approx(
        sum((p0**2).sum().item() for p0 in make_params(torch.float64))
    )
    optimizer.zero_grad()
    assert all(p.grad is None for p in params)


@BY_NAME
def test_deepcopy_continues_identically(info):
    params = make_params(torch.float64)
    optimizer = info.ours(params, **info.rich)
    gen = torch.Generator().manual_seed(0)
    set_random_grads([params], gen)
    optimizer.step()
    twin = copy.deepcopy(optimizer)
    twin_params = [p for group in twin.param_groups for p in group["params"]]
    assert all(a is not b for a, b in zip(params, twin_params, strict=True))
    step_together([optimizer, twin], [params, twin_params], gen, 3)
    for a, b in zip(params, twin_params, strict=True):
        assert torch.equal(a, b)


@BY_NAME
def test_compatibility_flags_are_accepted(info):
    for flag in info.flags:
        if flag == "differentiable":
            continue  # see test_differentiable_step_gradcheck
        params = make_params(torch.float32)
        optimizer = info.ours(params, **info.rich, **{flag: True})
        reference = info.reference(clone_params(params), **info.rich, foreach=False)
        gen = torch.Generator().manual_seed(0)
        ref_params = reference.param_groups[0]["params"]
        step_together([optimizer, reference], [params, ref_params], gen, 3)
        for mine, theirs in zip(params, ref_params, strict=True):
            assert_tensors_close(mine, theirs, TOLERANCE[torch.float32])
        steps = [state["step"] for state in optimizer.state.values() if "step" in state]
        expected = torch.float32 if flag == "fused" else torch.get_default_dtype()
        assert all(step.dtype == expected for step in steps)


@BY_NAME
def test_fused_flag_validation_matches_torch(info):
    if "fused" not in info.flags:
        pytest.skip(f"torch.optim.{info.name} has no fused implementation")
    for extra in ({"differentiable": True}, {"foreach": True}):
        with pytest.raises(RuntimeError) as ours:
            info.ours(make_params(torch.float32), fused=True, **extra)
        with pytest.raises(RuntimeError) as theirs:
            info.reference(make_params(torch.float32), fused=True, **extra)
        assert str(ours.value) == str(theirs.value)
    integer = torch.zeros(2, dtype=torch.int64)
    integer.grad = torch.zeros(2, dtype=torch.int64)
    with pytest.raises(RuntimeError, match="floating point"):
        info.ours([integer], fused=True).step()


@pytest.mark.parametrize("config", ["rich", "usual"])
@BY_NAME
def test_differentiable_step_gradcheck(info, config):
    """Two steps as a function of the start point and both gradients: gradcheck passes."""
    kwargs = getattr(info, config)

    def two_steps(start, grad1, grad2):
        param = start.clone()
        optimizer = info.ours([param], differentiable=True, **kwargs)
        for grad in (grad1, grad2):
            param.grad = grad
            optimizer.step()
        return param

    gen = torch.Generator().manual_seed(0)
    inputs = [torch.randn(3, dtype=torch.float64, generator=gen).requires_grad_() for _ in range(3)]
    assert gradcheck(two_steps, inputs)


def test_tensor_hyperparameter_requiring_grad_is_refused():
    from manualgrad.optim import Adam

    param = torch.zeros(2, requires_grad=True)
    param.grad = torch.ones(2)
    optimizer = Adam([param], lr=torch.tensor(0.1, requires_grad=True))
    with pytest.raises(NotImplementedError, match="lr"):
        optimizer.step()
