"""Softmax and log-softmax along one dimension: forward, what is saved, and the vector-Jacobian
product, side by side. Both save only their output (the Jacobian is a function of it)."""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from manualgrad.functional._checks import require_floating, wrap_dim
from manualgrad.functional._elementwise import times
from manualgrad.functional._function import Function


def _shifted(input: Tensor, dim: int) -> Tensor:
    """z − max_dim z, a fresh tensor: the same softmax, no overflow in exp (an empty tensor has
    no max; its copy is returned)."""
    if input.numel() == 0:
        return input.clone()
    return input - input.amax(dim, keepdim=True)


def log_softmax_values(input: Tensor, dim: int) -> Tensor:
    """z − m − log Σ_dim e^{z − m}, m = max_dim z (a fresh tensor), as torch's log_softmax: a row
    holding +inf is NaN throughout (z − m = inf − inf), where z − logsumexp(z) would give −inf
    beside one NaN; the losses built on log-softmax share it, so their NaN match torch's."""
    shifted = _shifted(input, dim)
    return shifted.sub_(torch.exp(shifted).sum(dim, keepdim=True).log_())


def _save_dim_and_output(ctx, inputs: tuple, output: Tensor) -> None:
    """Softmax's and log-softmax's ``setup_context``: the dim and y only (each Jacobian is a
    function of the output)."""
    ctx.dim = inputs[1]
    ctx.save_for_backward(output)


class SoftmaxFunction(Function):
    r"""Softmax along ``dim``.  y_i = e^{z_i} / Σ_j e^{z_j}   (computed as e^{z_i − max z}/Σ).

    Jacobian: ∂y_i/∂z_k = y_i(δ_ik − y_k), so with g = dL/dy
        dL/dz = y ⊙ (g − Σ_dim g ⊙ y)
    Saved: y only (the Jacobian is a function of the output).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, dim: int) -> Tensor:
        exps = _shifted(input, dim).exp_()
        return exps.div_(exps.sum(dim, keepdim=True))

    setup_context = staticmethod(_save_dim_and_output)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (output,) = ctx.saved_tensors
        dot = (grad_output * output).sum(ctx.dim, keepdim=True)
        return times(grad_output - dot, output), None


class LogSoftmaxFunction(Function):
    r"""Log-softmax along ``dim``.  y_i = z_i − log Σ_j e^{z_j}   (shifted by max z first).

    Jacobian: ∂y_i/∂z_k = δ_ik − softmax(z)_k = δ_ik − e^{y_k}, so with g = dL/dy
        dL/dz = g − e^{y} ⊙ Σ_dim g
    Saved: y only (softmax(z) = e^{y}).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, dim: int) -> Tensor:
        return log_softmax_values(input, dim)

    setup_context = staticmethod(_save_dim_and_output)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (output,) = ctx.saved_tensors
        total = grad_output.sum(ctx.dim, keepdim=True)
        return grad_output - times(torch.exp(output), total), None


def _implicit_dim(name: str, ndim: int, stacklevel: int) -> int:
    """torch's legacy rule for ``dim=None`` (dim 0 for 0-, 1- and 3-d input, else 1), with the
    same deprecation warning, attributed ``stacklevel`` frames up."""
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. "
        "Change the call to include dim=X as an argument.",
        stacklevel=stacklevel,
    )
    return 0 if ndim in (0, 1, 3) else 1


def _prepared(
    name: str, input: Tensor, dim: int | None, dtype: torch.dtype | None, stacklevel: int
) -> tuple[Tensor, int]:
    """Resolve ``dim`` (torch's legacy rule and warning for None, attributed ``stacklevel``
    frames above the caller), check it and cast to ``dtype`` first (outside the Function, so
    autograd casts the gradient back), as torch does."""
    if dim is None:
        dim = _implicit_dim(name, input.dim(), stacklevel + 1)
    dim = wrap_dim(dim, input.dim(), name)
    if dtype is not None:
        input = input.to(dtype)
    require_floating(input, name)
    return input, dim


def softmax(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: torch.dtype | None = None
) -> Tensor:
    """``torch.nn.functional.softmax``: same signature, same legacy ``dim=None`` rule/warning."""
    input, dim = _prepared("softmax", input, dim, dtype, _stacklevel)
    return SoftmaxFunction.apply(input, dim)


def log_softmax(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: torch.dtype | None = None
) -> Tensor:
    """``torch.nn.functional.log_softmax``: same signature, same legacy ``dim=None`` rule."""
    input, dim = _prepared("log_softmax", input, dim, dtype, _stacklevel)
    return LogSoftmaxFunction.apply(input, dim)


__all__ = ["LogSoftmaxFunction", "SoftmaxFunction", "log_softmax", "softmax"]
