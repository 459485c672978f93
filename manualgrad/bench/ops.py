"""``ops`` suite: forward + backward time of every registry op against its native torch twin.

For each op and size (``manualgrad.bench.inputs``) both implementations get the same leaves and
the same output gradient; one call is ``outputs = op(*args)`` then
``torch.autograd.grad(outputs, leaves, grad_outputs)`` (no ``.grad`` accumulation, so only the
op's own work is timed). Calls are interleaved (``manualgrad.bench.timing``); the row holds the
two medians and the spread of the ratio.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace

import torch
from torch import Tensor

from manualgrad import _ext
from manualgrad.bench.inputs import SIZES, make
from manualgrad.bench.rows import Row
from manualgrad.bench.timing import Timing, interleaved
from manualgrad.testing.calls import float_outputs
from manualgrad.testing.entries import OPS
from manualgrad.testing.registry import OpInfo, Sample

# Full runs give each comparison about this many seconds of repeats (at least MIN_REPEATS).
BUDGET_S = 2.0
MIN_REPEATS, MAX_REPEATS = 5, 21
SLOW_S = 0.2
QUICK = {"repeats": 3, "warmup": 1, "min_time": 1e-3}


def synchronized(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn``, followed by a device synchronisation when the default device is a GPU."""
    if torch.get_default_device().type != "cuda":
        return fn

    def call() -> None:
        fn()
        torch.cuda.synchronize()

    return call


def compare(
    suite: str,
    name: str,
    size: str,
    candidates: Mapping[str, Callable[[], object]],
    quick: bool,
) -> Row:
    """Time ``candidates['manualgrad']`` against ``candidates['native']`` as one ``time`` row.

    Quick runs use a few repeats; full runs size the repeats to ``BUDGET_S`` from one call of
    each (calls slower than ``SLOW_S`` then need only one more warm-up). ``iqr_ratio`` is the
    ratio times the sum of both relative IQRs (a conservative spread).
    """
    calls = {key: synchronized(fn) for key, fn in candidates.items()}
    if quick:
        timings = interleaved(calls, **QUICK)
    else:
        start = time.perf_counter()
        for fn in calls.values():
            fn()
        per_round = time.perf_counter() - start
        repeats = int(min(MAX_REPEATS, max(MIN_REPEATS, BUDGET_S / max(per_round, 1e-9))))
        warmup = 1 if per_round > SLOW_S else 3
        timings = interleaved(calls, repeats=repeats, warmup=warmup)
    ours, native = timings["manualgrad"], timings["native"]
    spread = (_relative_iqr(ours) + _relative_iqr(native)) * ours.median / native.median
    return Row(suite, name, size, "time", ours.median, native.median, spread)


def _relative_iqr(timing: Timing) -> float:
    return timing.iqr / timing.median if timing.median > 0 else 0.0


def forward_backward(op: Callable[..., object], sample: Sample, grads: list[Tensor]) -> Callable:
    """A call running ``op`` on fresh-once leaves of ``sample`` and backpropagating ``grads``."""
    args = sample.prepared()
    leaves = [args[i] for i in sample.differentiable()]

    def call() -> None:
        outputs = [o for o in float_outputs(op(*args, **sample.kwargs)) if o.requires_grad]
        if outputs and leaves:
            torch.autograd.grad(outputs, leaves, grads[: len(outputs)], allow_unused=True)

    return call


def output_grads(op: OpInfo, sample: Sample) -> list[Tensor]:
    """Seeded random gradients for the native op's differentiable outputs."""
    outputs = float_outputs(op.reference(*sample.prepared(), **sample.kwargs))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        return [torch.randn_like(o) for o in outputs if o.requires_grad]


def op_row(op: OpInfo, size: str, quick: bool) -> Row:
    """The fwd+bwd time row of one registry op at one size."""
    sample = make(op.name, size)
    grads = output_grads(op, sample)
    candidates = {
        "manualgrad": forward_backward(op.op, sample, grads),
        "native": forward_backward(op.reference, sample, grads),
    }
    return compare("ops", op.name, size, candidates, quick)


def op_rows(op: OpInfo, size: str, quick: bool) -> list[Row]:
    """The op's row; for an op with a compiled twin (manualgrad/_ext.py) that row times the
    eager (C++) path, and a second one, ``<name> (python)``, the Python Function."""
    rows = [op_row(op, size, quick)]
    if _ext.twin(op.function) is not None:
        with _ext.python_path():
            rows.append(replace(op_row(op, size, quick), name=f"{op.name} (python)"))
    return rows


def run(quick: bool) -> list[Row]:
    """One ``time`` row per registry op and size (small only when ``quick``), two for an op
    with a compiled twin (:func:`op_rows`)."""
    sizes = ("small",) if quick else SIZES
    return [row for op in OPS for size in sizes for row in op_rows(op, size, quick)]
