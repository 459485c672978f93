"""torch as the oracle for a registry op on any input: where torch raises, manualgrad raises the
same exception type; where torch computes, manualgrad gives the same outputs and gradients (same
dtypes; NaN and ±inf where torch's are; finite values as close to the float64 result as torch's
own, up to the dtype's tolerance). Used by the registry-wide edge-case tests (test_numerics.py)
and the property-based fuzz test (test_fuzz.py)."""

from __future__ import annotations

import dataclasses
import warnings

import torch
from torch import Tensor

from manualgrad.testing.calls import run_with_grads
from manualgrad.testing.registry import OpInfo, Sample

# |error| allowed beyond 2× torch's own, relative to (1 + the largest |value|), per dtype
TOLERANCE = {
    torch.float16: 1e-2,
    torch.bfloat16: 8e-2,
    torch.float32: 1e-4,
    torch.float64: 1e-7,
}
# Ops whose torch gradient at a NaN input depends on the tensor's size (the vectorised kernel and
# its scalar tail disagree: hardtanh 0 vs 1, elu NaN vs 1); manualgrad follows the scalar kernel
# (see their docstrings), so gradients at NaN inputs are not compared for them.
NAN_GRADIENT_BY_SIZE = frozenset({"hardtanh", "elu"})


@dataclasses.dataclass
class Outcome:
    """What a call gave: outputs and gradients, or the exception it raised."""

    outputs: list[Tensor] = dataclasses.field(default_factory=list)
    grads: list[Tensor | None] = dataclasses.field(default_factory=list)
    error: Exception | None = None


def run(function, sample: Sample, dtype: torch.dtype | None = None) -> Outcome:
    """``function`` on ``sample`` (cast to ``dtype``) with a seeded backward, or its exception."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outputs, grads = run_with_grads(function, sample, dtype)
    except Exception as error:  # the oracle compares exception types, whatever they are
        return Outcome(error=error)
    return Outcome(outputs, grads)


def in_dtype(sample: Sample, dtype: torch.dtype) -> Sample:
    """``sample`` with its floating args (and floating tensor kwargs) in ``dtype``."""

    def cast(value):
        if isinstance(value, Tensor) and value.is_floating_point():
            return value.to(dtype)
        return value

    return dataclasses.replace(
        sample,
        args=tuple(cast(a) for a in sample.args),
        kwargs={k: cast(v) for k, v in sample.kwargs.items()},
    )


def _forward_works(function, sample: Sample) -> bool:
    """Whether ``function``'s forward alone runs on ``sample``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            function(*sample.prepared(), **sample.kwargs)
    except Exception:  # the forward's own exception: torch rejects the input
        return False
    return True


def _nan_inputs(sample: Sample) -> list[Tensor | None]:
    """Per differentiable arg, where it holds NaN."""
    return [sample.args[i].isnan() for i in sample.differentiable()]


def _agree(actual: Tensor, expected: Tensor, truth: Tensor | None, dtype, what: str) -> None:
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} vs {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} vs {expected.shape}"
    compared = torch.ones_like(expected, dtype=torch.bool)
    if dtype in (torch.float16, torch.bfloat16) and truth is not None:
        # torch's own low-precision intermediates overflowed where the exact result is finite
        # (manualgrad computes those in float32): not compared
        compared = expected.isfinite() | ~truth.isfinite()
    for name, special in (("NaN", torch.isnan), ("+inf", torch.isposinf), ("-inf", torch.isneginf)):
        same = torch.equal(special(actual)[compared], special(expected)[compared])
        assert same, f"{what}: {name} positions differ"
    finite = expected.isfinite() & actual.isfinite()
    if truth is None or not finite.any():
        return
    ours, theirs, exact = (t.double()[finite] for t in (actual, expected, truth))
    keep = exact.isfinite()
    ours, theirs, exact = ours[keep], theirs[keep], exact[keep]
    if not keep.any():
        return
    error = (ours - exact).abs().max().item()
    torch_error = (theirs - exact).abs().max().item()
    scale = exact.abs().max().item()
    allowed = 2 * torch_error + TOLERANCE.get(dtype, 1e-7) * (1 + scale)
    assert error <= allowed, (
        f"{what}: error {error:.3g} > {allowed:.3g} (torch's {torch_error:.3g})"
    )


def check(op: OpInfo, sample: Sample) -> str:
    """Compare ``op`` with its torch reference on ``sample`` (args already in their dtype);
    returns "raises", "computes" or "unsupported" (torch has no kernel for the dtype:
    NotImplementedError, nothing to compare), failing with a reason otherwise."""
    expected = run(op.reference, sample)
    if isinstance(expected.error, NotImplementedError):
        return "unsupported"
    ours = run(op.op, sample)
    if expected.error is not None:
        if ours.error is None and _forward_works(op.reference, sample):
            return "computes"  # torch's backward kernel lacks the case (e.g. a layout)
        assert ours.error is not None, f"torch raises {expected.error!r}, manualgrad computes"
        assert isinstance(ours.error, type(expected.error)), (
            f"torch raises {type(expected.error).__name__}, manualgrad {ours.error!r}"
        )
        return "raises"
    assert ours.error is None, f"manualgrad raises {ours.error!r}, torch computes"
    dtype = next(
        (a.dtype for a in sample.args if isinstance(a, Tensor) and a.is_floating_point()), None
    )
    truth = run(op.reference, sample, torch.float64) if dtype != torch.float64 else expected
    truths = truth.outputs if truth.error is None else [None] * len(expected.outputs)
    assert len(ours.outputs) == len(expected.outputs), "output count differs"
    for k, (a, e, t) in enumerate(zip(ours.outputs, expected.outputs, truths, strict=False)):
        _agree(a, e, t, dtype, f"output {k}")
    truth_grads = truth.grads if truth.error is None else [None] * len(expected.grads)
    skip_nan = op.name in NAN_GRADIENT_BY_SIZE
    nan_inputs = _nan_inputs(sample)
    for k, (a, e, t) in enumerate(zip(ours.grads, expected.grads, truth_grads, strict=True)):
        if e is None:
            assert a is None or not a.any(), f"grad {k}: torch gives none"
            continue
        assert a is not None, f"grad {k}: manualgrad gives none"
        if skip_nan and nan_inputs[k].any() and nan_inputs[k].shape == e.shape:
            keep = ~nan_inputs[k]
            a, e, t = a[keep], e[keep], None if t is None else t[keep]
        _agree(a, e, t, dtype, f"grad {k}")
    return "computes"


def with_values(sample: Sample, position: int, index: int, value: float) -> Sample:
    """``sample`` with element ``index`` (flat, modulo its size) of arg ``position`` set to
    ``value`` (the arg's layout kept)."""
    args = list(sample.args)
    arg = args[position].detach().clone()
    if arg.numel():
        where = torch.unravel_index(torch.tensor(index % arg.numel()), arg.shape)
        arg[where] = value
    args[position] = arg
    return dataclasses.replace(sample, args=tuple(args))
