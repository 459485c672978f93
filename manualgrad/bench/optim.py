"""``optim`` suite: one optimizer step on 50 parameters of 256×256, manualgrad vs torch.optim.

The optimizers are the registry's (:data:`manualgrad.testing.entries.OPTIMIZERS`) that step on
gradients and have a torch twin, each at its entry's ``usual`` kwargs. Each is timed against
torch's for-loop implementation (``foreach=False``, the reference its trajectory is tested
against) and, where torch has a fused kernel for it (``fused`` among the entry's flags: SGD,
Adagrad, Adam, AdamW), against ``fused=True``. Every candidate steps its own copy of the same
parameters and gradients; calls are interleaved (:mod:`manualgrad.bench.timing`) and the row
holds both medians.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from manualgrad.bench.ops import compare
from manualgrad.bench.rows import Row
from manualgrad.testing.entries import OPTIMIZERS

COUNT, SHAPE = 50, (256, 256)
SIZE = f"{COUNT}×{SHAPE[0]}×{SHAPE[1]}"


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
    for info in OPTIMIZERS:
        if not (info.torch_twin and info.steps_on_grads):
            continue
        baselines = {"for-loop": {"foreach": False}}
        if "fused" in info.flags:
            baselines["fused"] = {"fused": True}
        for label, flags in baselines.items():
            candidates = {
                "manualgrad": stepper(info.ours, **info.usual),
                "native": stepper(info.reference, **info.usual, **flags),
            }
            rows.append(compare("optim", f"{info.name} vs {label}", SIZE, candidates, quick))
    return rows
