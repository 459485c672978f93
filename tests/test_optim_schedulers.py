"""torch.optim.lr_scheduler drives manualgrad's optimizers exactly as it drives torch's."""

from __future__ import annotations

import pytest
import torch

import manualgrad.optim as optim
from manualgrad.testing.optim import TOLERANCE, assert_tensors_close, clone_params, make_params

SCHEDULERS = {
    "StepLR": lambda opt: optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5),
    "CosineAnnealingLR": lambda opt: optim.lr_scheduler.CosineAnnealingLR(opt, T_max=8),
    "OneCycleLR": lambda opt: optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=12),
    "ReduceLROnPlateau": lambda opt: optim.lr_scheduler.ReduceLROnPlateau(
        opt, factor=0.5, patience=1
    ),
}
# OneCycleLR cycles SGD's momentum and Adam's beta1 as well as the learning rate.
PAIRS = [
    (optim.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    (optim.Adam, torch.optim.Adam, {"lr": 0.01}),
    (optim.RMSprop, torch.optim.RMSprop, {"lr": 0.01, "momentum": 0.5}),
]
# A loss that stalls, so that ReduceLROnPlateau has something to react to.
LOSSES = [1.0, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.7, 0.7, 0.7, 0.7]


def trace(optimizer_cls, kwargs, params, scheduler_name, **extra):
    """Per-step (lr, momentum or betas) and the final parameters."""
    optimizer = optimizer_cls(params, **kwargs, **extra)
    scheduler = SCHEDULERS[scheduler_name](optimizer)
    gen = torch.Generator().manual_seed(0)
    history = []
    for loss in LOSSES:
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen, dtype=p.dtype)
        optimizer.step()
        if isinstance(scheduler, optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(loss)
        else:
            scheduler.step()
        group = optimizer.param_groups[0]
        history.append((group["lr"], group.get("momentum"), group.get("betas")))
    return history, params


@pytest.mark.parametrize("scheduler_name", SCHEDULERS)
@pytest.mark.parametrize(
    ("ours", "theirs", "kwargs"), PAIRS, ids=[pair[0].__name__ for pair in PAIRS]
)
def test_scheduler_drives_both_alike(ours, theirs, kwargs, scheduler_name):
    start = make_params(torch.float64)
    ours_history, ours_params = trace(ours, kwargs, clone_params(start), scheduler_name)
    theirs_history, theirs_params = trace(
        theirs, kwargs, clone_params(start), scheduler_name, foreach=False
    )
    assert ours_history == theirs_history
    assert len({entry[0] for entry in ours_history}) > 1  # the schedule did change the lr
    for mine, reference in zip(ours_params, theirs_params, strict=True):
        assert_tensors_close(mine, reference, TOLERANCE[torch.float64])
