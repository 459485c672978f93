"""``optim`` suite: one optimizer step on 50 parameters of 256×256, manualgrad vs torch.optim.

Each optimizer is timed against torch's for-loop implementation (``foreach=False``, the reference
its trajectory is tested against) and, where torch has a CPU kernel for it (SGD, Adagrad, Adam,
AdamW), against ``fused=True``. Every candidate steps its own copy of the same parameters and
gradients; calls are interleaved (:mod:`manualgrad.bench.timing`) and the row holds both medians.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

import manualgrad.optim as optim
from manualgrad.bench import Row
from manualgrad.bench.ops import compare

COUNT, SHAPE = 50, (256, 256)
SIZE = f"{COUNT}×{SHAPE[0]}×{SHAPE[1]}"
CASES: list[tuple[str, dict[str, Any]]] = [
    ("SGD", {"lr": 0.01, "momentum": 0.9}),
    ("Adam", {"lr": 1e-3}),
    ("AdamW", {"lr": 1e-3}),
    ("Adagrad", {"lr": 1e-2}),
    ("RMSprop", {"lr": 1e-2}),
    ("Adadelta", {}),
]
FUSED_ON_CPU = ("SGD", "Adagrad", "Adam", "AdamW")


def stepper(cls: type[torch.optim.Optimizer], **kwargs: Any) -> Callable[[], object]:
    """``optimizer.step`` over fresh seeded parameters with gradients (the same for every call)."""
    gen = torch.Generator().manual_seed(0)
    params = []
    for _ in range(COUNT):
        param = torch.randn(SHAPE, generator=gen).requires_grad_()
        param.grad = torch.randn(SHAPE, generator=gen)
        params.append(param)
    return cls(params, **kwargs).step


def run(quick: bool) -> list[Row]:
    """A ``vs for-loop`` row per optimizer, and a ``vs fused`` row where torch has fused CPU."""
    rows = []
    for name, kwargs in CASES:
        ours, theirs = getattr(optim, name), getattr(torch.optim, name)
        baselines = {"for-loop": {"foreach": False}}
        if name in FUSED_ON_CPU:
            baselines["fused"] = {"fused": True}
        for label, flags in baselines.items():
            candidates = {
                "manualgrad": stepper(ours, **kwargs),
                "native": stepper(theirs, **kwargs, **flags),
            }
            rows.append(compare("optim", f"{name} vs {label}", SIZE, candidates, quick))
    return rows
