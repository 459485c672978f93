"""The torch twin of a manualgrad model, and ``check/max_grad_diff``: live proof that the
hand-derived backward passes agree with torch autograd during training.

Every manualgrad module that has a torch.nn counterpart *subclasses* it and overrides only
``forward``, so its twin is a deep copy whose class is set back to the torch.nn base: same
attributes, same parameters (copied values), torch's own forward and autograd backward. Modules
without a torch.nn counterpart (``Step``, ``HingeLoss``) map to a small reference module written
with plain differentiable torch ops, whose backward is therefore autograd's.

On a fixed probe batch, :func:`max_grad_diff` computes the loss gradient with respect to every
parameter twice — through manualgrad's Functions and through the twin — and returns

    max over parameters p, entries i of |∂L/∂pᵢ (manualgrad) − ∂L/∂pᵢ (torch autograd)|.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor


class TorchStep(torch.nn.Module):
    """Reference for ``manualgrad.nn.Step``: y = 1[x > 0]. Without ``straight_through`` the
    gradient is 0 (a constant's); with it, the saturating straight-through estimator
    grad · 1[|x| ≤ 1], written as y = 1[x > 0] + (x − x.detach()) · 1[|x| ≤ 1], whose value is
    the step and whose autograd derivative is the window."""

    def __init__(self, straight_through: bool) -> None:
        super().__init__()
        self.straight_through = straight_through

    def forward(self, input: Tensor) -> Tensor:
        """Heaviside step with the chosen backward."""
        step = (input > 0).to(input.dtype)
        if self.straight_through:
            return step + (input - input.detach()) * (input.abs() <= 1)
        return step + 0 * input


class TorchHinge(torch.nn.Module):
    """Reference for ``manualgrad.nn.HingeLoss``: mean of max(0, margin − y·f)."""

    def __init__(self, margin: float, reduction: str) -> None:
        super().__init__()
        self.margin, self.reduction = margin, reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Elementwise hinge, reduced like the original."""
        losses = (self.margin - input * target).clamp_min(0)
        return {"mean": losses.mean, "sum": losses.sum}.get(self.reduction, lambda: losses)()


def _references() -> dict[type, object]:
    from manualgrad import nn

    table: dict[type, object] = {}
    if hasattr(nn, "Step"):
        table[nn.Step] = lambda m: TorchStep(m.straight_through)
    if hasattr(nn, "HingeLoss"):
        table[nn.HingeLoss] = lambda m: TorchHinge(m.margin, m.reduction)
    return table


def torch_base(cls: type) -> type | None:
    """The nearest torch.nn class that ``cls`` subclasses (None if there is none)."""
    return next((c for c in cls.__mro__[1:] if c.__module__.startswith("torch.nn.")), None)


def to_torch(module: torch.nn.Module) -> torch.nn.Module:
    """A deep copy of ``module`` in which every module not defined by torch (manualgrad's, or a
    user's subclass) is replaced by its torch twin."""
    references = _references()

    def convert(m: torch.nn.Module) -> torch.nn.Module:
        if type(m) in references:
            return references[type(m)](m)
        if not type(m).__module__.startswith("torch."):
            base = torch_base(type(m))
            if base is None:
                raise TypeError(f"no torch twin for {type(m).__name__}")
            m.__class__ = base
        for name, child in m.named_children():
            setattr(m, name, convert(child))
        return m

    return convert(copy.deepcopy(module))


def max_grad_diff(
    model: torch.nn.Module, loss_fn: torch.nn.Module, x: Tensor, target: Tensor
) -> float:
    """Largest |manualgrad − autograd| over all parameter gradients of ``loss_fn(model(x))``."""
    params = [p for p in model.parameters() if p.requires_grad]
    twin, twin_loss = to_torch(model), to_torch(loss_fn)
    twin_params = [p for p in twin.parameters() if p.requires_grad]
    manual = torch.autograd.grad(loss_fn(model(x), target), params)
    reference = torch.autograd.grad(twin_loss(twin(x), target), twin_params)
    return max((a - b).abs().max().item() for a, b in zip(manual, reference, strict=True))
