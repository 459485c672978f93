"""Activation modules: torch.nn's classes (signatures, ``extra_repr``, parameters) with
manualgrad's hand-derived Functions in ``forward``.

Each subclasses its torch twin and overrides only ``forward``; ``inplace=True`` is kept for
compatibility, but the result is always a new tensor. :class:`Step` has no torch twin.
"""

from __future__ import annotations

import torch
from torch import Tensor

from manualgrad import functional as F


class ReLU(torch.nn.ReLU):
    """max(x, 0) through :class:`manualgrad.functional.ReLUFunction` (``inplace`` is kept for
    compatibility; the result is always a new tensor)."""

    def forward(self, input: Tensor) -> Tensor:
        """Apply ReLU."""
        return F.relu(input)


class LeakyReLU(torch.nn.LeakyReLU):
    """x if x > 0 else negative_slope·x through :class:`manualgrad.functional.LeakyReLUFunction`."""

    def forward(self, input: Tensor) -> Tensor:
        """Apply leaky ReLU."""
        return F.leaky_relu(input, self.negative_slope, self.inplace)


class PReLU(torch.nn.PReLU):
    """x if x > 0 else a·x with learnable ``weight`` a (one, or one per channel at dim 1),
    through :class:`manualgrad.functional.PReLUFunction`."""

    def forward(self, input: Tensor) -> Tensor:
        """Apply PReLU with this module's slopes."""
        return F.prelu(input, self.weight)


class ELU(torch.nn.ELU):
    """x if x > 0 else α(eˣ − 1) through :class:`manualgrad.functional.ELUFunction`."""

    def forward(self, input: Tensor) -> Tensor:
        """Apply ELU."""
        return F.elu(input, self.alpha, self.inplace)


class GELU(torch.nn.GELU):
    """x·Φ(x) (exact or tanh approximation) through :class:`manualgrad.functional.GELUFunction`."""

    def forward(self, input: Tensor) -> Tensor:
        """Apply GELU."""
        return F.gelu(input, approximate=self.approximate)


class SiLU(torch.nn.SiLU):
    """x·σ(x) through :class:`manualgrad.functional.SiLUFunction`."""

    def forward(self, input: Tensor) -> Tensor:
        """Apply SiLU."""
        return F.silu(input, inplace=self.inplace)


class Softplus(torch.nn.Softplus):
    """log(1 + e^{βx})/β (linear above ``threshold``) through
    :class:`manualgrad.functional.SoftplusFunction`."""

    def forward(self, input: Tensor) -> Tensor:
        """Apply softplus."""
        return F.softplus(input, self.beta, self.threshold)


class Sigmoid(torch.nn.Sigmoid):
    """1/(1 + e^{−x}) through :class:`manualgrad.functional.SigmoidFunction`."""

    def forward(self, input: Tensor) -> Tensor:
        """Apply the logistic sigmoid."""
        return F.sigmoid(input)


class Tanh(torch.nn.Tanh):
    """tanh(x) through :class:`manualgrad.functional.TanhFunction`."""

    def forward(self, input: Tensor) -> Tensor:
        """Apply tanh."""
        return F.tanh(input)


class Hardtanh(torch.nn.Hardtanh):
    """clamp(x, min_val, max_val) through :class:`manualgrad.functional.HardtanhFunction`."""

    def forward(self, input: Tensor) -> Tensor:
        """Apply hardtanh."""
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)


class ReLU6(torch.nn.ReLU6):
    """clamp(x, 0, 6) through :class:`manualgrad.functional.HardtanhFunction`."""

    def forward(self, input: Tensor) -> Tensor:
        """Apply ReLU6."""
        return F.relu6(input, self.inplace)


class Hardsigmoid(torch.nn.Hardsigmoid):
    """clamp(x + 3, 0, 6)/6 through :class:`manualgrad.functional.HardsigmoidFunction`."""

    def forward(self, input: Tensor) -> Tensor:
        """Apply the hard sigmoid."""
        return F.hardsigmoid(input, self.inplace)


class Hardswish(torch.nn.Hardswish):
    """x·clamp(x + 3, 0, 6)/6 through :class:`manualgrad.functional.HardswishFunction`."""

    def forward(self, input: Tensor) -> Tensor:
        """Apply hard swish."""
        return F.hardswish(input, self.inplace)


class Mish(torch.nn.Mish):
    """x·tanh(softplus(x)) through :class:`manualgrad.functional.MishFunction`."""

    def forward(self, input: Tensor) -> Tensor:
        """Apply mish."""
        return F.mish(input, self.inplace)


class LogSigmoid(torch.nn.LogSigmoid):
    """log σ(x) through :class:`manualgrad.functional.LogSigmoidFunction`."""

    def forward(self, input: Tensor) -> Tensor:
        """Apply log-sigmoid."""
        return F.logsigmoid(input)


class SELU(torch.nn.SELU):
    """λ·ELU(x, α) with the SELU constants through :class:`manualgrad.functional.ELUFunction`."""

    def forward(self, input: Tensor) -> Tensor:
        """Apply SELU."""
        return F.selu(input, self.inplace)


class CELU(torch.nn.CELU):
    """max(x, 0) + min(0, α(e^{x/α} − 1)) through :class:`manualgrad.functional.ELUFunction`."""

    def forward(self, input: Tensor) -> Tensor:
        """Apply CELU."""
        return F.celu(input, self.alpha, self.inplace)


class GLU(torch.nn.GLU):
    """a·σ(b), a and b the halves of x along ``dim``, through
    :class:`manualgrad.functional.GLUFunction`."""

    def forward(self, input: Tensor) -> Tensor:
        """Apply the gated linear unit."""
        return F.glu(input, self.dim)


class Softmax(torch.nn.Softmax):
    """Softmax along ``dim`` through :class:`manualgrad.functional.SoftmaxFunction`."""

    def forward(self, input: Tensor) -> Tensor:
        """Apply softmax (``dim=None`` follows torch's legacy rule, with its warning)."""
        return F.softmax(input, self.dim, _stacklevel=5)


class LogSoftmax(torch.nn.LogSoftmax):
    """Log-softmax along ``dim`` through :class:`manualgrad.functional.LogSoftmaxFunction`."""

    def forward(self, input: Tensor) -> Tensor:
        """Apply log-softmax (``dim=None`` follows torch's legacy rule, with its warning)."""
        return F.log_softmax(input, self.dim, _stacklevel=5)


class Step(torch.nn.Module):
    """The perceptron's threshold unit φ(x) = 1[x > 0] (φ(0) = 0), through
    :func:`manualgrad.functional.step`.

    Args:
        straight_through: backpropagate ``grad · 1[|x| ≤ 1]`` (saturating straight-through
            estimator) instead of the true gradient, which is 0 almost everywhere.
    """

    def __init__(self, straight_through: bool = False) -> None:
        super().__init__()
        self.straight_through = straight_through

    def forward(self, input: Tensor) -> Tensor:
        """Apply the step."""
        return F.step(input, straight_through=self.straight_through)

    def extra_repr(self) -> str:
        """``straight_through=...`` as in the constructor."""
        return f"straight_through={self.straight_through}"


__all__ = [
    "CELU",
    "ELU",
    "GELU",
    "GLU",
    "SELU",
    "Hardsigmoid",
    "Hardswish",
    "Hardtanh",
    "LeakyReLU",
    "LogSigmoid",
    "LogSoftmax",
    "Mish",
    "PReLU",
    "ReLU",
    "ReLU6",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Step",
    "Tanh",
]
