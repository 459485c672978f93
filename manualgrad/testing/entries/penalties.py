"""Registry entries (see manualgrad.testing.registry): the penalties behind
:mod:`manualgrad.regularization` (abs_sum, half_square_sum, hard_concrete, expected_l0). Their
torch references are the plain formulas, differentiated by autograd."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor

import manualgrad.functional as F
from manualgrad.testing.registry import OpInfo, Sample, tensor

# The L0 paper's gate: temperature β = 2/3, stretch interval (γ, ζ) = (−0.1, 1.1).
BETA, GAMMA, ZETA = 2 / 3, -0.1, 1.1
SHIFT = BETA * math.log(-GAMMA / ZETA)


def _abs_sum_reference(input: Tensor) -> Tensor:
    return input.abs().sum()


def _half_square_sum_reference(input: Tensor) -> Tensor:
    return 0.5 * (input * input).sum()


def _hard_concrete_reference(
    log_alpha: Tensor, u: Tensor, beta: float, gamma: float, zeta: float
) -> Tensor:
    s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + log_alpha) / beta)
    return (s * (zeta - gamma) + gamma).clamp(0, 1)


def _expected_l0_reference(log_alpha: Tensor, shift: float) -> Tensor:
    return torch.sigmoid(log_alpha - shift).sum()


def sum_samples(dtype: torch.dtype) -> Iterator[Sample]:
    """Inputs of a sum over all entries (the output is 0-d), away from |x|'s kink at 0."""

    def make(*shape: int, noncontiguous: bool = False) -> Tensor:
        return tensor(*shape, dtype=dtype, noncontiguous=noncontiguous, exclude_zero=True)

    yield Sample("regular", (make(3, 4),))
    yield Sample("empty", (make(0, 3),))
    yield Sample("scalar", (make(),))
    yield Sample("noncontiguous", (make(2, 3, 4, noncontiguous=True),))


def uniform_noise(*shape: int, dtype: torch.dtype) -> Tensor:
    """u ~ U(0.05, 0.95): the gate's noise, away from log's poles."""
    return torch.rand(shape, dtype=dtype) * 0.9 + 0.05


def hard_concrete_samples(dtype: torch.dtype) -> Iterator[Sample]:
    """Gates from log α and constant noise u (the paper's β, γ, ζ and a sharper gate); the mix
    of open and clamped gates exercises both branches."""
    gate = (BETA, GAMMA, ZETA)
    noise = frozenset({1})
    yield Sample(
        "regular", (tensor(3, 4, dtype=dtype), uniform_noise(3, 4, dtype=dtype), *gate), {}, noise
    )
    yield Sample(
        "broadcast", (tensor(4, dtype=dtype), uniform_noise(3, 4, dtype=dtype), *gate), {}, noise
    )
    yield Sample(
        "sharp", (tensor(5, dtype=dtype), uniform_noise(5, dtype=dtype), 0.3, -0.5, 1.5), {}, noise
    )
    yield Sample(
        "empty", (tensor(0, 3, dtype=dtype), uniform_noise(0, 3, dtype=dtype), *gate), {}, noise
    )
    yield Sample(
        "noncontiguous",
        (
            tensor(3, 4, dtype=dtype, noncontiguous=True),
            uniform_noise(3, 4, dtype=dtype),
            *gate,
        ),
        {},
        noise,
        noncontiguous_grad=True,
    )


def expected_l0_samples(dtype: torch.dtype) -> Iterator[Sample]:
    """log α of a weight, with the paper's shift β log(−γ/ζ) and another."""
    yield Sample("regular", (tensor(3, 4, dtype=dtype), SHIFT))
    yield Sample("shift0", (tensor(5, dtype=dtype), 0.0))
    yield Sample("empty", (tensor(0, 3, dtype=dtype), SHIFT))
    yield Sample("scalar", (tensor(dtype=dtype), SHIFT))
    yield Sample("noncontiguous", (tensor(2, 3, 4, dtype=dtype, noncontiguous=True), SHIFT))


OPS = [
    OpInfo("abs_sum", F.abs_sum, _abs_sum_reference, F.AbsSumFunction, sum_samples, compile=True),
    OpInfo(
        "half_square_sum",
        F.half_square_sum,
        _half_square_sum_reference,
        F.HalfSquareSumFunction,
        sum_samples,
    ),
    OpInfo(
        "hard_concrete",
        F.hard_concrete,
        _hard_concrete_reference,
        F.HardConcreteFunction,
        hard_concrete_samples,
    ),
    OpInfo(
        "expected_l0",
        F.expected_l0,
        _expected_l0_reference,
        F.ExpectedL0Function,
        expected_l0_samples,
    ),
]
