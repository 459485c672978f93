r"""Weight initialisation: torch.nn.init's functions, signatures and errors, with the variance
argument behind each scale written out.

The one calculation everything rests on. A unit computes y = Σⱼ Wⱼ xⱼ over ``fan_in`` inputs,
with the Wⱼ i.i.d., zero-mean and independent of the xⱼ. Then E[y] = 0 and

    Var(y) = Σⱼ E[Wⱼ²] E[xⱼ²] = fan_in · Var(W) · E[x²].                          (1)

Backwards, the gradient of an input collects ``fan_out`` terms, δxⱼ = Σᵢ Wᵢⱼ δyᵢ, so

    Var(δx) = fan_out · Var(W) · Var(δy).                                        (2)

A deep stack multiplies these factors layer after layer: a factor above 1 makes activations (or
gradients) explode geometrically, one below 1 makes them vanish. Every initialiser below picks
Var(W) to make the factor 1 for a particular activation:

* Xavier/Glorot (linear or tanh-like, φ'(0) = 1, E[x²] = Var(h_prev)):  (1) wants
  Var(W) = 1/fan_in, (2) wants 1/fan_out; the compromise Var(W) = 2/(fan_in + fan_out) satisfies
  both exactly when fan_in = fan_out, so Var(out) = Var(in) forwards and backwards.
* He/Kaiming (ReLU): x = max(h_prev, 0) with h_prev symmetric about 0 keeps half of its second
  moment, E[x²] = ½ Var(h_prev); (1) then needs Var(W) = 2/fan_in, *twice* Xavier's 1/fan_in.
  Leaky ReLU with slope a keeps (1 + a²)/2 of it, so Var(W) = 2 / ((1 + a²) fan_in).

``gain`` is the square root of that correction: std = gain / √fan. A uniform U(−b, b) has
variance b²/3, so a uniform initialiser with standard deviation ``std`` uses b = √3 · std.

Sampling is written out explicitly (``tensor.uniform_(-b, b, generator=generator)`` etc.) and
draws exactly the same numbers as ``torch.nn.init`` for the same generator state, except
:func:`trunc_normal_` (inverse-CDF sampling here, rejection sampling in torch ≥ 2.10; same
distribution, different values — see its docstring). Everything runs under ``torch.no_grad()``
and returns the tensor it filled.
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import torch
from torch import Tensor

__all__ = [
    "calculate_gain",
    "constant_",
    "fan_in_and_fan_out",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "orthogonal_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]

_LINEAR_FNS = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)
_FAN_MODES = ["fan_in", "fan_out"]


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    r"""The factor ``gain`` = √(Var(h) / E[φ(h)²]) that undoes φ's shrinking of the second moment.

    ================= ======================  ==============================================
    nonlinearity      gain                     why
    ================= ======================  ==============================================
    linear, conv*     1                        φ(h) = h keeps E[φ²] = Var(h)
    sigmoid           1                        (torch's convention; σ'(0) = ¼ really)
    tanh              5/3                      empirical: tanh'(0) = 1 but saturation shrinks
    relu              √2                       E[relu(h)²] = ½ Var(h) for symmetric h
    leaky_relu        √(2 / (1 + a²))          E[φ(h)²] = (1 + a²)/2 · Var(h), a = ``param``
                                               (default 0.01)
    selu              3/4                      empirical (torch PR 50664)
    ================= ======================  ==============================================

    Raises ValueError for an unknown name or a non-numeric (or bool) leaky-ReLU slope, as torch.
    """
    if nonlinearity in _LINEAR_FNS or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif (isinstance(param, int) and not isinstance(param, bool)) or isinstance(param, float):
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight laid out as torch's layers store it: (out, in, *kernel).

    fan_in = in · ∏kernel (inputs feeding one output unit), fan_out = out · ∏kernel (outputs
    one input unit feeds). Raises ValueError for fewer than 2 dimensions (a bias has no fan).
    """
    if tensor.dim() < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
        )
    receptive_field_size = math.prod(tensor.shape[2:])
    return tensor.size(1) * receptive_field_size, tensor.size(0) * receptive_field_size


# torch's private name, used by torch.nn layers' ``reset_parameters``.
_calculate_fan_in_and_fan_out = fan_in_and_fan_out


def _fan(tensor: Tensor, mode: str) -> int:
    """fan_in or fan_out as ``mode`` asks (case-insensitive), ValueError for other modes."""
    mode = mode.lower()
    if mode not in _FAN_MODES:
        raise ValueError(f"Mode {mode} not supported, please use one of {_FAN_MODES}")
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(
    tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    """Fill with U(a, b): mean (a + b)/2, variance (b − a)²/12."""
    with torch.no_grad():
        return tensor.uniform_(a, b, generator=generator)


def normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Fill with N(mean, std²)."""
    with torch.no_grad():
        return tensor.normal_(mean, std, generator=generator)


def trunc_normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill with N(mean, std²) conditioned on [a, b].

    Sampling by inverse CDF: with Φ the standard normal CDF, α = (a − mean)/std,
    β = (b − mean)/std, draw u ~ U(Φ(α), Φ(β)) and return mean + std · Φ⁻¹(u), where
    Φ⁻¹(u) = √2 · erfinv(2u − 1). One uniform per element, no rejection loop; the result is
    clamped to [a, b] against rounding in erfinv's tails.

    Moments (Z = Φ(β) − Φ(α), φ the standard normal density):

        E[x]   = mean + std · (φ(α) − φ(β)) / Z
        Var(x) = std² · [1 + (α φ(α) − β φ(β)) / Z − ((φ(α) − φ(β)) / Z)²]

    For the default a = −2, b = 2 (in units of std, mean 0) the variance is 0.774 · std².

    Differs from torch: torch.nn.init.trunc_normal_ (torch ≥ 2.10) redraws out-of-range normals
    (or uses a uniform proposal when [a, b] holds < 30 % of the mass), so the same generator
    gives the same *distribution* but different values. Warns like torch when mean is more than
    2 std outside [a, b].
    """
    if (mean < a - 2 * std) or (mean > b + 2 * std):
        warnings.warn(
            "mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
            "The distribution of values may be incorrect.",
            stacklevel=2,
        )
    lower = _normal_cdf((a - mean) / std)
    upper = _normal_cdf((b - mean) / std)
    with torch.no_grad():
        tensor.uniform_(2 * lower - 1, 2 * upper - 1, generator=generator)
        tensor.erfinv_().mul_(std * math.sqrt(2.0)).add_(mean)
        return tensor.clamp_(min=a, max=b)


def _normal_cdf(x: float) -> float:
    """Φ(x) = (1 + erf(x/√2)) / 2."""
    return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val`` (variance 0: every unit computes the same function — see zero-init)."""
    with torch.no_grad():
        return tensor.fill_(val)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1."""
    return constant_(tensor, 1.0)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0. For a weight this never breaks the symmetry between hidden units: they all
    receive the same gradient and stay identical forever."""
    with torch.no_grad():
        return tensor.zero_()


def xavier_uniform_(
    tensor: Tensor, gain: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    r"""Glorot & Bengio (2010), uniform: U(−b, b) with b = gain · √(6 / (fan_in + fan_out)).

    Derivation (module docstring, equations (1), (2)): Var(W) = 2/(fan_in + fan_out) is the
    harmonic compromise between keeping forward variance (1/fan_in) and backward variance
    (1/fan_out); with fan_in = fan_out it keeps Var(out) = Var(in) both ways. U(−b, b) has variance
    b²/3, so b = √3 · gain · √(2/(fan_in + fan_out)).
    """
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(
    tensor: Tensor, gain: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    r"""Glorot & Bengio (2010), normal: N(0, std²) with std = gain · √(2 / (fan_in + fan_out)).

    Var(W) = 2/(fan_in + fan_out): the compromise between 1/fan_in (forward Var(out) = Var(in))
    and 1/fan_out (backward Var(δin) = Var(δout)), exact in both directions when they are equal.
    """
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float | None:
    """gain / √fan, or None (after torch's warning) when the tensor has a zero-size dimension."""
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return None
    return calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0,
    mode: Literal["fan_in", "fan_out"] = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""He et al. (2015), uniform: U(−b, b) with b = √3 · gain / √fan.

    For ReLU, x = max(h, 0) with h symmetric keeps E[x²] = ½ Var(h), so equation (1) of the
    module docstring, Var(y) = fan_in · Var(W) · ½ Var(h), stays equal to Var(h) only if
    Var(W) = 2/fan_in — double Xavier's 1/fan_in: gain = √2. With leaky ReLU of slope ``a``,
    E[x²] = (1 + a²)/2 · Var(h) and gain = √(2/(1 + a²)). ``mode='fan_out'`` instead preserves
    the gradient's variance, equation (2). The default ``nonlinearity='leaky_relu'`` with
    ``a=0`` is plain ReLU's √2. torch.nn.Linear's own reset uses a = √5, i.e.
    Var(W) = 1/(3 fan_in).
    """
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0,
    mode: Literal["fan_in", "fan_out"] = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""He et al. (2015), normal: N(0, std²) with std = gain / √fan.

    Var(W) = gain²/fan: for ReLU 2/fan_in, twice Xavier, because a ReLU passes on only half of
    its input's second moment (E[relu(h)²] = ½ Var(h)); see :func:`kaiming_uniform_`.
    """
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    return normal_(tensor, 0, std, generator)


def orthogonal_(
    tensor: Tensor, gain: float = 1, generator: torch.Generator | None = None
) -> Tensor:
    r"""Saxe et al. (2013): a (semi-)orthogonal matrix times ``gain``; trailing dims flattened.

    The tensor is viewed as (rows, cols = numel/rows). A Gaussian matrix of the taller shape is
    QR-factorised and Q's columns are multiplied by sign(diag R), which makes Q Haar-distributed
    (Mezzadri 2007). Rows (rows ≤ cols) or columns (rows ≥ cols) come out orthonormal, so
    ‖W x‖ = gain · ‖x‖ exactly in the orthonormal direction: not just in expectation, every
    singular value is ``gain``, which is why deep linear nets keep their signal at any depth.
    Frobenius norm² = gain² · min(rows, cols), hence the mean square entry is gain²/max(rows, cols).
    """
    if tensor.ndimension() < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0 or tensor.is_meta:
        return tensor
    rows = tensor.size(0)
    cols = tensor.numel() // rows
    with torch.no_grad():
        flattened = tensor.new_empty((rows, cols)).normal_(0, 1, generator=generator)
        if rows < cols:
            flattened = flattened.t()
        q, r = torch.linalg.qr(flattened)
        q = q * torch.diag(r, 0).sign()
        if rows < cols:
            q = q.t()
        tensor.view_as(q).copy_(q)
        return tensor.mul_(gain)
