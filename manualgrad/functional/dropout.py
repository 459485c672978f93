"""Dropout: zero each element with probability p, scale the survivors by 1/(1-p).

The random mask is drawn in the functional wrapper exactly as torch's CPU ``dropout`` draws it
(``empty_like(input).bernoulli_(1 - p)``: one uniform draw per element, in memory order, whatever
the dtype), so with the same seed the mask equals torch's. The channel-wise ("feature") variants
(``dropout1d/2d/3d``, ``feature_alpha_dropout``) draw one value per (sample, channel), a mask of
shape (N, C, 1, …) broadcast over the spatial dims, as torch's ``make_feature_noise`` does.
Alpha dropout (for SELU networks) sets dropped elements to the SELU saturation −λα and applies
the affine map that keeps zero mean and unit variance. The Function itself is deterministic:
it takes the mask as an input, which keeps it usable under ``vmap`` and ``torch.compile``.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from manualgrad.functional._function import Function


class DropoutFunction(Function):
    r"""Masked scaling  y = x ⊙ m / (1 − p),  m ∈ {0, 1} a fixed bool mask (an input,
    broadcastable to x).

    Saved: the bool mask m only (1 byte per element; never x, never a float noise tensor —
    torch's CPU dropout saves its float noise, 4–8 bytes per element).
    dL/dx = dL/dy ⊙ m / (1 − p)   (linear in dL/dy, so double backward is the same map).
    p = 1: m is a single 0-d False and the scale is taken as 1, so y = x ⊙ 0 as in torch
    (which saves a 0-d zero tensor).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, mask: Tensor, p: float) -> Tensor:
        return input * keep_scale(mask, p, input.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _, mask, p = inputs
        ctx.p = p
        ctx.save_for_backward(mask)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (mask,) = ctx.saved_tensors
        return grad_output * keep_scale(mask, ctx.p, grad_output.dtype), None, None


class AlphaDropoutFunction(Function):
    r"""Alpha dropout  y = a·m ⊙ x + b,  b = α′·a·(m − 1) + α′·a·p,  m ∈ {0, 1} a fixed bool mask
    (an input, broadcastable to x), α′ = 1.7580993408473766 (= λα of SELU) and
    a = 1 / √((α′²·p + 1)(1 − p)): kept elements are a·x + α′·a·p, dropped ones −α′·a + α′·a·p,
    which keeps the mean 0 and variance 1 of a standardized input (torch's ``_dropout_impl``,
    whose operation order the forward follows so that the values match bit for bit).

    Saved: the bool mask m only.
    dL/dx = a · dL/dy ⊙ m  (b does not depend on x; linear in dL/dy, so double backward is the
    same map). p = 1: m is a single 0-d False and y = x ⊙ 0, as in torch.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input: Tensor, mask: Tensor, p: float) -> Tensor:
        scale, shift = _alpha_affine(mask, p, input.dtype)
        return input * scale + shift

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _, mask, p = inputs
        ctx.p = p
        ctx.save_for_backward(mask)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (mask,) = ctx.saved_tensors
        scale, _ = _alpha_affine(mask, ctx.p, grad_output.dtype)
        return grad_output * scale, None, None


_SELU_ALPHA_SCALE = 1.7580993408473766


def _alpha_affine(mask: Tensor, p: float, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """(a·m, α′·a·(m − 1) + α′·a·p) in ``dtype`` (both 0 for p = 1), computed as torch does."""
    noise = mask.to(dtype)
    if p == 1:
        return noise, noise
    a = 1.0 / ((_SELU_ALPHA_SCALE**2 * p + 1) * (1 - p)) ** 0.5
    shift = noise.add(-1).mul_(_SELU_ALPHA_SCALE * a).add_(_SELU_ALPHA_SCALE * a * p)
    return noise.mul_(a), shift


def keep_scale(mask: Tensor, p: float, dtype: torch.dtype) -> Tensor:
    """m / (1 − p) in ``dtype`` (0 for p = 1), computed as torch computes its noise (divide,
    then multiply)."""
    noise = mask.to(dtype)
    return noise if p == 1 else noise.div_(1 - p)


def dropout_mask(like: Tensor, p: float, feature: bool = False) -> Tensor:
    """A bool keep-mask with P(keep) = 1 − p, drawn like torch's CPU dropout noise: shaped and
    strided like ``like`` and filled in its memory order, or with ``feature`` one value per
    (sample, channel), shaped (N, C, 1, …). For p = 1 a single False (0-d)."""
    if p == 1:
        return torch.zeros((), dtype=torch.bool, device=like.device)
    if not feature:
        return torch.empty_like(like, dtype=torch.bool).bernoulli_(1 - p)
    if like.dim() < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    shape = (*like.shape[:2], *(1,) * (like.dim() - 2))
    return torch.empty(shape, dtype=torch.bool, device=like.device).bernoulli_(1 - p)


def check_probability(p: float) -> None:
    """torch's check: ValueError naming the dropout probability when p ∉ [0, 1]."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _masked(
    input: Tensor, p: float, training: bool, feature: bool, function: type[Function]
) -> Tensor:
    """``function`` applied with a fresh keep-mask (see :func:`dropout_mask`), or ``input``
    itself when not training, when p = 0 or when it is empty (no random numbers are drawn then),
    as torch's ``_dropout_impl``."""
    check_probability(p)
    if not training or p == 0 or input.numel() == 0:
        return input
    return function.apply(input, dropout_mask(input, p, feature), p)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """``torch.nn.functional.dropout`` with the hand-derived backward of :class:`DropoutFunction`.

    As torch: returns ``input`` itself when not training, when p = 0 or when it is empty (no
    random numbers are drawn then), and draws no random numbers for p = 1. ``inplace`` is
    accepted and ignored here and in the variants below: the result is always a new tensor.
    """
    return _masked(input, p, training, False, DropoutFunction)


def _channel_dropout(
    input: Tensor, p: float, training: bool, spatial: int, batch_optional: bool
) -> Tensor:
    """Channel-wise dropout of an input with ``spatial`` spatial dims: :class:`DropoutFunction`
    with a (N, C, 1, …) mask; an input without the batch dim is given one when
    ``batch_optional`` (dropout1d and dropout3d do, dropout2d does not: torch treats a 3-d input
    to dropout2d as (N, C, L))."""
    check_probability(p)
    op, dims = f"dropout{spatial}d", (spatial + 1, spatial + 2)
    if input.dim() not in dims:
        if spatial == 1:
            raise RuntimeError(
                f"{op}: Expected 2D or 3D input, but received a {input.dim()}D input."
            )
        warnings.warn(
            f"{op}: Received a {input.dim()}-D input to {op}, which is deprecated; it expects "
            f"{dims[0]}D or {dims[1]}D inputs.",
            stacklevel=3,
        )
    if batch_optional and input.dim() != dims[1]:
        return _masked(input.unsqueeze(0), p, training, True, DropoutFunction).squeeze(0)
    return _masked(input, p, training, True, DropoutFunction)


def dropout1d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """``torch.nn.functional.dropout1d``: whole channels of an (N, C, L) or (C, L) input zeroed
    with probability p, through :class:`DropoutFunction` with a (N, C, 1) mask."""
    return _channel_dropout(input, p, training, 1, batch_optional=True)


def dropout2d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """``torch.nn.functional.dropout2d``: whole channels of an (N, C, H, W) input zeroed with
    probability p, through :class:`DropoutFunction` with a (N, C, 1, 1) mask (a 3-d input is
    taken as (N, C, L), with torch's warning)."""
    if input.dim() == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D "
            "dropout behavior is desired - input is interpreted as shape (N, C, L).",
            stacklevel=2,
        )
    return _channel_dropout(input, p, training, 2, batch_optional=False)


def dropout3d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """``torch.nn.functional.dropout3d``: whole channels of an (N, C, D, H, W) or (C, D, H, W)
    input zeroed with probability p, through :class:`DropoutFunction` with a (N, C, 1, 1, 1)
    mask."""
    return _channel_dropout(input, p, training, 3, batch_optional=True)


def alpha_dropout(
    input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False
) -> Tensor:
    """``torch.nn.functional.alpha_dropout`` through :class:`AlphaDropoutFunction` (note torch's
    default ``training=False``)."""
    return _masked(input, p, training, False, AlphaDropoutFunction)


def feature_alpha_dropout(
    input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False
) -> Tensor:
    """``torch.nn.functional.feature_alpha_dropout``: alpha dropout of whole channels, through
    :class:`AlphaDropoutFunction` with a (N, C, 1, …) mask."""
    return _masked(input, p, training, True, AlphaDropoutFunction)


__all__ = [
    "AlphaDropoutFunction",
    "DropoutFunction",
    "alpha_dropout",
    "dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "feature_alpha_dropout",
]
