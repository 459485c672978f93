"""The compiled eager path (manualgrad/_ext.py, manualgrad/csrc/).

With the extension built (``make ext``): for every registry sample of a twinned op, the eager (C++)
path and the reference (Python) path agree — forward, every gradient (first order alone, the
fused kernels a training step runs, and with a graph), the double backward — bit for bit where
the arithmetic is the same, within float32 rounding where a transcendental comes from another
kernel (SLEEF's exp/erf/tanh in the twin, torch's own in the Python Function) or a sum runs in
another order (the norms' row kernels); bad input raises the same exception type and message
on both paths. The float16/bfloat16 twins (``_ext.LOW_PRECISION``) compute in float and round
once, as torch's kernels: within four roundings of the Python path (which rounds after each
op), and each element within one unit in the last place of torch's result or no farther from
it than the Python path's (torch's float16 sigmoid_backward rounds per op, so one rounding may
land a unit away). Without the extension those tests skip, and the dispatch tests below check
``Function.apply``'s hook with a stand-in twin.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import pytest
import torch
from torch.autograd import forward_ad

import manualgrad.functional as F
from manualgrad import _ext
from manualgrad.bench.inputs import make
from manualgrad.functional.activations import ReLUFunction
from manualgrad.testing.calls import float_outputs, random_like
from tests.registry import OPS

TWINNED_OPS = [
    op for op in OPS if f"{op.function.__module__}.{op.function.__qualname__}" in _ext.TWINNED
]
# Twins whose formula reads exp/erf/tanh on its fused path (other rounding than torch's kernels),
# or whose row kernels sum in another order (the norms' statistics and gradient sums, softmax's
# and log-softmax's row sums, cross-entropy's p and log s, the fused losses' reductions: a
# double sum in one pass where Python takes dot products or ATen's float sums).
ROUNDED = {
    "GELUFunction",
    "LinearGELUFunction",
    "SiLUFunction",
    "LayerNormFunction",
    "RMSNormFunction",
    "GroupNormFunction",
    "BatchNormFunction",
    "AddNormFunction",
    "ELUFunction",
    "SoftplusFunction",
    "MishFunction",
    "LogSigmoidFunction",
    "SoftmaxFunction",
    "LogSoftmaxFunction",
    "CrossEntropyFunction",
    "MSELossFunction",
    "HuberLossFunction",
    "NLLLossFunction",
    "BCEWithLogitsFunction",
    "CrossEntropyProbsFunction",
    "HingeLossFunction",
    "MultiMarginLossFunction",
    "L1LossFunction",
    "AvgPool2dFunction",  # the window sums in row-major order, not the convolution's
    "AttentionFunction",  # one-tile row loops; the tiles' exp SLEEF's, underflow giving 0
}
LOW_PRECISION_OPS = [op for op in TWINNED_OPS if _ext.low_precision(op.function)]
needs_extension = pytest.mark.skipif(_ext.EXTENSION is None, reason="extension not built")


def _cases(dtype: torch.dtype, ops: list = TWINNED_OPS) -> list:
    return [
        pytest.param(op, sample, id=f"{op.name}-{sample.name}")
        for op in ops
        for sample in op.seeded_samples(dtype)
    ]


def _run(call, sample, dtype: torch.dtype, create_graph: bool = True) -> list[torch.Tensor | None]:
    """Outputs, first-order gradients and (``create_graph``) a double-backward gradient of
    ``call`` (an op, or its torch reference) on ``sample``; without ``create_graph`` the
    first-order backward is the one a training step runs (a twin's fused kernels, not its
    composite ops)."""
    args = sample.prepared(dtype)
    leaves = [args[i] for i in sample.differentiable()]
    outputs = float_outputs(call(*args, **sample.kwargs))
    generator = torch.Generator().manual_seed(0)
    pairs = [(o, random_like(o, generator)) for o in outputs if o.requires_grad]
    if not pairs or not leaves:
        return [o.detach() for o in outputs]
    grads = torch.autograd.grad(
        [o for o, _ in pairs],
        leaves,
        [g for _, g in pairs],
        create_graph=create_graph,
        allow_unused=True,
    )
    used = [g for g in grads if g is not None and g.requires_grad]
    second = []
    if used:
        weights = [random_like(g, generator) for g in used]
        total = sum((g * w).sum() for g, w in zip(used, weights, strict=True))
        second = torch.autograd.grad(total, leaves, allow_unused=True)
    detached = [None if g is None else g.detach() for g in (*grads, *second)]
    return [*(o.detach() for o in outputs), *detached]


@needs_extension
@pytest.mark.parametrize("create_graph", [True, False], ids=["double", "first_order"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("op", "sample"), _cases(torch.float64))
def test_twin_equals_python_path(op, sample, dtype, create_graph):
    eager = _run(op.op, sample, dtype, create_graph)
    with _ext.python_path():
        reference = _run(op.op, sample, dtype, create_graph)
    _assert_paths_agree(op, eager, reference, rtol=4e-6, atol=1e-6)


@needs_extension
@pytest.mark.parametrize("op", [pytest.param(op, id=op.name) for op in TWINNED_OPS])
def test_twin_equals_python_path_at_bench_size(op):
    """The same at the benchmark's medium size (256 × 1024 or the op's equivalent), first order in
    float32: the registry's samples are a few elements, so mostly the kernels' scalar tails;
    here the vector loops, row kernels and parallel chunks run."""
    sample = make(op.name, "medium")
    eager = _run(op.op, sample, torch.float32, create_graph=False)
    with _ext.python_path():
        reference = _run(op.op, sample, torch.float32, create_graph=False)
    _assert_paths_agree(op, eager, reference, rtol=1e-5, atol=1e-5)


def _assert_paths_agree(op, eager: list, reference: list, rtol: float, atol: float) -> None:
    """The twin's outputs and gradients against the Python path's: bit for bit, or within
    ``rtol``/``atol`` (float rounding, scaled by the values) for the Functions of ROUNDED."""
    assert len(eager) == len(reference)
    exact = op.function.__name__ not in ROUNDED
    for got, expected in zip(eager, reference, strict=True):
        assert (got is None) == (expected is None)
        if got is not None:
            tolerance = {"rtol": 0, "atol": 0} if exact else {"rtol": rtol, "atol": atol}
            torch.testing.assert_close(got, expected, equal_nan=True, **tolerance)


def _no_farther(got: torch.Tensor, expected: torch.Tensor, truth: torch.Tensor) -> bool:
    """Whether each element of ``got`` is within one unit in the last place of ``truth``, or no
    farther from it than ``expected``'s (equal NaNs are equal)."""
    ulp = torch.nextafter(truth.abs(), torch.tensor(float("inf"), dtype=truth.dtype)) - truth.abs()
    gap, allowed = (got - truth).abs(), torch.maximum((expected - truth).abs(), ulp)
    return bool(((gap <= allowed) | (got == truth) | (got.isnan() & truth.isnan())).all())


@needs_extension
@pytest.mark.parametrize("create_graph", [True, False], ids=["double", "first_order"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize(("op", "sample"), _cases(torch.float64, LOW_PRECISION_OPS))
def test_low_precision_twin_rounds_once(op, sample, dtype, create_graph):
    outputs = float_outputs(op.op(*sample.prepared(dtype), **sample.kwargs))
    assert _twin_node(op) in _node_names([o.grad_fn for o in outputs])
    eager = _run(op.op, sample, dtype, create_graph)
    with _ext.python_path():
        reference = _run(op.op, sample, dtype, create_graph)
    eps = torch.finfo(dtype).eps
    for got, expected in zip(eager, reference, strict=True):
        assert (got is None) == (expected is None)
        if got is not None:
            torch.testing.assert_close(got, expected, rtol=4 * eps, atol=4 * eps, equal_nan=True)
    if not create_graph:  # the fused passes: one rounding, as torch's kernels
        native = _run(op.reference, sample, dtype, create_graph)
        for got, expected, truth in zip(eager, reference, native, strict=True):
            if got is not None:
                assert _no_farther(got, expected, truth)


def _twin_node(op) -> str:
    """The name of the autograd node of ``op``'s twin."""
    return f"manualgrad::TwinNode<manualgrad::{op.function.__name__[: -len('Function')]}Twin>"


def _node_names(roots: list) -> set[str]:
    names, stack = set(), list(roots)
    while stack:
        node = stack.pop()
        if node is not None and node.name() not in names:
            names.add(node.name())
            stack.extend(next_node for next_node, _ in node.next_functions)
    return names


@needs_extension
@pytest.mark.parametrize("op", [pytest.param(op, id=op.name) for op in TWINNED_OPS])
def test_twin_runs_when_eager(op):
    sample = op.seeded_samples(torch.float64)[0]
    outputs = float_outputs(op.op(*sample.prepared(), **sample.kwargs))
    assert _twin_node(op) in _node_names([o.grad_fn for o in outputs])


@needs_extension
@pytest.mark.parametrize("op", [pytest.param(op, id=op.name) for op in TWINNED_OPS if op.errors])
def test_twin_errors_equal_python_path(op):
    for case in op.errors():
        outcomes = []
        for context in (contextlib.nullcontext, _ext.python_path):
            with context(), pytest.raises(Exception) as raised:
                op.op(*case.args, **case.kwargs)
            outcomes.append((type(raised.value), str(raised.value)))
        assert outcomes[0] == outcomes[1]


@needs_extension
@pytest.mark.parametrize(
    "call",
    [F.gelu, F.tanh, F.silu, lambda t: F.softmax(t, -1), lambda t: F.linear(t, t[:2])],
    ids=["gelu", "tanh", "silu", "softmax", "linear"],
)
def test_twin_backward_takes_batched_grads(call):
    """A twin's backward run under vmap (is_grads_batched, as the batched Hessian-vector
    products of Newton) sees batched gradients: composite ops, the same result as one backward
    per gradient. (The Python path's in-place ``times`` fails there for tanh, gelu, silu.)"""
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    grads = torch.randn(5, *call(x).shape, dtype=torch.float64)
    (batched,) = torch.autograd.grad(call(x), x, grads, is_grads_batched=True)
    rows = [torch.autograd.grad(call(x), x, grad)[0] for grad in grads]
    torch.testing.assert_close(batched, torch.stack(rows))


# ---- the dispatch hook, with a stand-in twin (no extension needed) ---------------------------


@pytest.fixture
def recorded(monkeypatch):
    """ReLUFunction's twin replaced by one that records its calls and runs the Python path."""
    calls = []

    def twin(x):
        calls.append(x)
        with _ext.python_path():
            return ReLUFunction.apply(x)

    monkeypatch.setattr(ReLUFunction, "_twin", twin)
    return calls


def test_hook_calls_the_twin_when_eager(recorded):
    x = torch.randn(3, 4, requires_grad=True)
    torch.testing.assert_close(ReLUFunction.apply(x), x.relu())
    assert len(recorded) == 1


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: torch.randn(3, dtype=torch.float64).to_sparse(), id="sparse"),
        pytest.param(lambda: torch.randn(3).as_subclass(_Sub), id="subclass"),
    ],
)
def test_hook_keeps_the_python_path_for_other_tensors(recorded, make):
    x = make()
    with contextlib.suppress(RuntimeError, NotImplementedError):
        ReLUFunction.apply(x)
    assert _ext.eligible((x,)) is False
    assert not recorded


class _Sub(torch.Tensor):
    pass


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_hook_takes_low_precision_for_low_precision_twins_only(recorded, dtype):
    x = torch.randn(3, dtype=dtype)
    ReLUFunction.apply(x)
    assert len(recorded) == 1  # relu's twin is in _ext.LOW_PRECISION
    assert _ext.eligible((x,), low_precision=True)
    assert _ext.eligible((x,)) is False  # the float32/float64 twins


def test_hook_keeps_the_python_path_under_transforms_and_autocast(recorded):
    x = torch.randn(2, 3)
    torch.func.vmap(ReLUFunction.apply)(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ReLUFunction.apply(x)
    assert not recorded
    # Under torch.func.grad the transform runs the Python forward/backward at its level; only
    # the innermost plain-tensor call (functorch's base case, no transform active) may be eager.
    grad = torch.func.grad(lambda t: ReLUFunction.apply(t).sum())(x)
    torch.testing.assert_close(grad, (x > 0).to(x.dtype))
    assert len(recorded) <= 1
    assert _ext.eligible((x, 0.5, "tanh")) and not _ext.eligible((x, x.double()))


def test_no_ext_forces_the_python_path():
    code = "import manualgrad.functional as F, manualgrad._ext as e; print(e.EXTENSION)"
    env = {**os.environ, "MANUALGRAD_NO_EXT": "1"}
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None"


def _backward_twice(outputs: list[torch.Tensor], leaves: list[torch.Tensor]) -> tuple:
    torch.autograd.grad(outputs[0].sum(), leaves, allow_unused=True)
    return torch.autograd.grad(outputs[0].sum(), leaves, allow_unused=True)


def _backward_after_output_changed_in_place(
    outputs: list[torch.Tensor], leaves: list[torch.Tensor]
) -> tuple:
    outputs[0].mul_(2)
    return tuple(
        None if g is None else g / 2
        for g in torch.autograd.grad(outputs[0].sum(), leaves, allow_unused=True)
    )


def _backward_after_input_changed_in_place(
    outputs: list[torch.Tensor], leaves: list[torch.Tensor]
) -> tuple:
    with torch.no_grad():
        leaves[0].add_(1)
    return torch.autograd.grad(outputs[0].sum(), leaves, allow_unused=True)


@needs_extension
@pytest.mark.parametrize(
    "action",
    [
        _backward_twice,
        _backward_after_output_changed_in_place,
        _backward_after_input_changed_in_place,
    ],
)
@pytest.mark.parametrize("path", ["eager", "python"])
@pytest.mark.parametrize("op", [pytest.param(op, id=op.name) for op in TWINNED_OPS])
def test_graph_misuse_raises_or_gives_the_right_gradient(op, path, action):
    """A twin's node (csrc/twin_function.h), as the Python Function's, either refuses a misuse
    of the graph — a second backward once saved tensors are freed, a saved tensor changed in
    place (an input, or an output or a view of one) — with torch's RuntimeError, or gives the
    gradient of the call as it was recorded: never a silently wrong one."""
    sample = op.seeded_samples(torch.float64)[0]
    with _ext.python_path() if path == "python" else contextlib.nullcontext():
        args = sample.prepared(torch.float64)
        leaves = [args[i] for i in sample.differentiable()]
        outputs = [o for o in float_outputs(op.op(*args, **sample.kwargs)) if o.requires_grad]
        if not outputs or not leaves:
            pytest.skip("nothing to differentiate")
        expected = torch.autograd.grad(
            outputs[0].sum(), leaves, allow_unused=True, retain_graph=True
        )
        try:
            got = action(outputs, leaves)
        except RuntimeError as error:
            assert "second time" in str(error) or "inplace" in str(error)
            return
    for g, e in zip(got, expected, strict=True):
        assert (g is None) == (e is None)
        if g is not None:
            torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-12)


@needs_extension
@pytest.mark.parametrize("op", [pytest.param(op, id=op.name) for op in TWINNED_OPS])
def test_forward_mode_ad_raises_as_the_python_path(op):
    """Neither path has a jvp: a dual tensor argument raises the same error on both."""
    sample = op.seeded_samples(torch.float64)[0]
    outcomes = []
    for context in (contextlib.nullcontext, _ext.python_path):
        with context(), forward_ad.dual_level():
            args = list(sample.prepared(torch.float64))
            first = sample.differentiable()[0]
            args[first] = forward_ad.make_dual(args[first].detach(), torch.ones_like(args[first]))
            with pytest.raises(NotImplementedError) as raised:
                op.op(*args, **sample.kwargs)
            outcomes.append(str(raised.value))
    assert outcomes[0] == outcomes[1]
