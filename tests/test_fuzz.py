"""Property-based differential test (issue 14): hypothesis draws, for every registry op, one of
its samples and then a dtype (float64/32/16, bfloat16), special values (±inf, NaN, ±large) at
drawn positions of the input (the first differentiable argument: parameters at inf make torch's
own result depend on how its kernel folds them), a zero-size dim, a non-contiguous layout and
perturbed numeric keyword arguments, and compares manualgrad with torch through
:func:`tests.torch_oracle.check`: where torch raises, the same exception type; where it
computes, the same outputs and gradients.

The default suite runs a bounded, derandomised search (``FUZZ_EXAMPLES`` per op); ``-m slow``
runs the long one. Set ``MANUALGRAD_FUZZ_COUNTS=<file>`` to write how many cases were tried per
op and dtype (and how many raised in torch)."""

from __future__ import annotations

import collections
import dataclasses
import json
import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from manualgrad.testing.registry import Sample
from tests import torch_oracle
from tests.registry import OPS

FUZZ_EXAMPLES = 6
SLOW_EXAMPLES = 150
DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]
SPECIAL = [float("inf"), float("-inf"), float("nan"), 1e4, -1e4, 0.0]
NUMBERS = [0, 1, 2, -1, 0.5, 1e-3]
# torch's float32 exact-GELU kernel gives NaN at +inf (its float64 one, and manualgrad, inf);
# in linear_gelu an infinite input makes pre-activations of either sign
QUIRK_VALUES = {
    "gelu": {float("inf")},
    "geglu": {float("inf")},  # gelu(a) · b: the same kernel
    "linear_gelu": {float("inf"), float("-inf")},
}
# known divergences from torch that this test found and that are not fixed yet: attention's
# gradient NaN positions at ±inf inputs and an empty head dim against a broadcast key
KNOWN = {
    "scaled_dot_product_attention": "inf input: gradient NaN positions; empty head dim",
    "scaled_dot_product_attention_dropout": "inf input: gradient NaN positions; empty head dim",
    "scaled_dot_product_attention_blocks": "inf input: gradient NaN positions; empty head dim",
}
# found only by the long search (reported; not fixed in this change)
KNOWN_LONG = {
    **KNOWN,
    "conv2d": "bfloat16, ±inf input with stride/dilation: a weight-gradient NaN where torch's "
    "kernel gives ±inf (opposite infinities summed in another order)",
}
COUNTS: collections.Counter = collections.Counter()
_SAMPLES: dict[str, list[Sample]] = {}


def _samples(op) -> list[Sample]:
    if op.name not in _SAMPLES:
        _SAMPLES[op.name] = op.seeded_samples(torch.float64)
    return _SAMPLES[op.name]


def _with_special_values(draw, op, sample: Sample) -> Sample:
    values = [v for v in SPECIAL if v not in QUIRK_VALUES.get(op.name, ())]
    for position in sample.differentiable()[:1]:
        if draw(st.booleans()):
            for _ in range(draw(st.integers(1, 3))):
                index = draw(st.integers(0, 1 << 16))
                value = draw(st.sampled_from(values))
                sample = torch_oracle.with_values(sample, position, index, value)
    return sample


def _with_zero_size_dim(draw, sample: Sample) -> Sample:
    tensors = [i for i, a in enumerate(sample.args) if isinstance(a, torch.Tensor) and a.dim()]
    if not tensors or draw(st.integers(0, 4)) != 0:
        return sample
    position = draw(st.sampled_from(tensors))
    arg = sample.args[position]
    dim = draw(st.integers(0, arg.dim() - 1))
    args = list(sample.args)
    args[position] = arg.narrow(dim, 0, 0).clone()
    return dataclasses.replace(sample, args=tuple(args))


def _noncontiguous(draw, sample: Sample) -> Sample:
    tensors = [i for i, a in enumerate(sample.args) if isinstance(a, torch.Tensor) and a.dim() > 1]
    if not tensors or not draw(st.booleans()):
        return sample
    position = draw(st.sampled_from(tensors))
    arg = sample.args[position]
    args = list(sample.args)
    args[position] = arg.transpose(-1, -2).contiguous().transpose(-1, -2)  # same values
    return dataclasses.replace(sample, args=tuple(args))


def _perturbed_kwargs(draw, sample: Sample) -> Sample:
    numeric = [
        k
        for k, v in sample.kwargs.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]
    if not numeric or draw(st.integers(0, 3)) != 0:
        return sample
    name = draw(st.sampled_from(numeric))
    value = draw(st.sampled_from(NUMBERS))
    value = type(sample.kwargs[name])(value) if isinstance(sample.kwargs[name], int) else value
    return dataclasses.replace(sample, kwargs={**sample.kwargs, name: value})


@st.composite
def fuzz_cases(draw, op):
    sample = draw(st.sampled_from(_samples(op)))
    dtype = draw(st.sampled_from(DTYPES))
    sample = torch_oracle.in_dtype(sample, dtype)
    sample = _with_special_values(draw, op, sample)
    sample = _with_zero_size_dim(draw, sample)
    sample = _noncontiguous(draw, sample)
    return _perturbed_kwargs(draw, sample), dtype


def _check(op, case) -> None:
    sample, dtype = case
    outcome = torch_oracle.check(op, sample)
    COUNTS[op.name, str(dtype).removeprefix("torch."), outcome] += 1


def _ops(known: dict[str, str]):
    params = []
    for op in OPS:
        marks = ()
        if op.name in known:
            marks = pytest.mark.xfail(reason=known[op.name], strict=False)
        params.append(pytest.param(op, id=op.name, marks=marks))
    return params


def _fuzz(op, examples: int) -> None:
    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=fuzz_cases(op))
    def run(case):
        _check(op, case)

    run()


@pytest.mark.parametrize("op", _ops(KNOWN))
def test_fuzz_against_torch(op):
    _fuzz(op, FUZZ_EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize("op", _ops(KNOWN_LONG))
def test_fuzz_against_torch_long(op):
    _fuzz(op, SLOW_EXAMPLES)


@pytest.fixture(scope="module", autouse=True)
def _write_counts():
    yield
    path = os.environ.get("MANUALGRAD_FUZZ_COUNTS")
    if path:
        rows = [[*key, count] for key, count in sorted(COUNTS.items())]
        with open(path, "w") as handle:
            json.dump(rows, handle)
