"""Losses, each a ``torch.autograd.Function`` with its derivation next to the code, and a wrapper
with ``torch.nn.functional``'s signature, defaults and reductions.

Conventions shared by every loss here:

- ℓ is the per-element (or per-sample) loss and L its reduction (see ``_reduction``); the
  gradient reaching ℓ_i is g_i = dL/dℓ_i, i.e. g_i ('none'), g ('sum') or g / D ('mean').
- Broadcast arguments get their gradients summed back to their own shape (``sum_to_size``).
- Double backward without saving the inputs: when the backward needs an intermediate (d = x − t,
  or the softmax p of cross_entropy, the log-softmax of its probability-target twin), the
  Function returns it as a hidden second output and saves that *output*.
  The wrapper drops it; its gradient only ever appears in double backward, where it flows back
  through this same Function's backward. Everything else saved is an input or a piecewise-
  constant mask (whose derivative is 0), so every backward is differentiable again.
- Class weights (cross_entropy, nll_loss, multi_margin_loss) and the weights of
  binary_cross_entropy_with_logits are constants; like torch, they may not require grad. The
  per-element weights of mse/l1/huber are differentiated, as in torch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from manualgrad.functional import _reduction
from manualgrad.functional._elementwise import times
from manualgrad.functional._function import Function, transforms_or_tracing
from manualgrad.functional._loss_checks import (
    broadcast_shape,
    check_class_range,
    check_class_targets,
    check_class_weight,
    check_constant_weight,
    check_elementwise_weight,
    check_label_smoothing,
    check_probability_targets,
    data_dependent_checks_allowed,
    scalar_name,
)
from manualgrad.functional.softmax import log_softmax_values

# ---------------------------------------------------------------------------------------------
# Element-wise regression losses ℓ = w · e(x − t): mse, l1, huber
# ---------------------------------------------------------------------------------------------


def _pointwise_forward(
    diff: Tensor,
    error: Callable[[Tensor], Tensor],
    weight: Tensor | None,
    reduction: str,
    mean_over_weight: bool,
    total: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """Reduce w·e(d): the weighted 'mean' is Σ w e / Σ w (mse, l1) or Σ w e / n (huber), as
    torch. An unweighted 'sum'/'mean' takes Σ e(d) from ``total(d)`` (d flattened) when given —
    dot products, so the element-wise ℓ is never materialised."""
    if weight is None:
        if total is None or reduction == "none":
            return _reduction.reduce(error(diff), reduction)
        summed = total(diff.reshape(-1))
        return summed if reduction == "sum" else summed / diff.numel()
    denominator = weight.sum() if mean_over_weight and reduction == "mean" else None
    return _reduction.reduce(error(diff) * weight, reduction, denominator)


def _pointwise_setup(
    ctx, inputs: tuple, output: tuple, mean_over_weight: bool, state: Tensor | None = None
) -> None:
    """Save ``state`` if given, else the hidden output d = x − t — or x and t themselves when the
    broadcast d is bigger than both together; plus the weight."""
    input, target, weight, reduction = inputs[:4]
    _, diff = output
    ctx.set_materialize_grads(False)
    ctx.reduction, ctx.mean_over_weight = reduction, mean_over_weight
    ctx.shapes = (input.shape, target.shape, diff.shape)
    if state is None and diff.numel() > input.numel() + target.numel():
        ctx.save_for_backward(None, input, target, weight)
    else:
        ctx.save_for_backward(diff if state is None else state, None, None, weight)


def _pointwise_state(ctx) -> tuple[Tensor, Tensor | None]:
    """(saved state or x − t recomputed from the saved inputs, weight)."""
    state, input, target, weight = ctx.saved_tensors
    return (input - target if state is None else state), weight


def _pointwise_backward(
    ctx,
    grad_loss: Tensor | None,
    grad_diff: Tensor | None,
    weight: Tensor | None,
    slope: Callable[[Tensor], Tensor],
    value: Callable[[], Tensor],
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """(dL/dx, dL/dt, dL/dw) of L = reduce(w · e(d)), d = x − t, from slope(g) = g · e'(d) and
    value() = e(d); ``grad_diff`` is the (double-backward) gradient of the hidden output d."""
    input_shape, target_shape, shape = ctx.shapes
    needs_input, needs_target, needs_weight = ctx.needs_input_grad[:3]
    grad_d, grad_weight = grad_diff, None
    if grad_loss is not None:
        by_weight = weight is not None and ctx.mean_over_weight and ctx.reduction == "mean"
        denominator = weight.sum() if by_weight else None
        g = _reduction.unreduce(grad_loss, ctx.reduction, shape, denominator)
        if needs_input or needs_target:
            term = slope(g) if weight is None else slope(g * weight)
            grad_d = term if grad_d is None else grad_d + term
        if needs_weight:
            loss = value()
            if by_weight:
                loss = loss - (loss * weight).sum() / denominator
            grad_weight = (g * loss).sum_to_size(weight.shape)
    if grad_d is None:
        return None, None, grad_weight
    grad_input = grad_d.sum_to_size(input_shape) if needs_input else None
    grad_target = (-grad_d).sum_to_size(target_shape) if needs_target else None
    return grad_input, grad_target, grad_weight


class MSELossFunction(Function):
    r"""Mean squared error  ℓ_i = w_i (x_i − t_i)²,  L = reduce(ℓ)  (torch: Σ w ℓ / Σ w for a
    weighted mean, (1/n) Σ ℓ unweighted).

    With d = x − t and g_i = dL/dℓ_i:

        dL/dx = g · w · 2d          dL/dt = −dL/dx          dL/dw = g · d²
        (weighted mean: dL/dw_i = (d_i² − L) / Σ w, since L = Σ w d² / Σ w)

    The lecture's error for one example is E = ½ (y − ŷ)², so dE/dŷ = ŷ − y and, by the chain
    rule, dE/dw = (ŷ − y) · ∂ŷ/∂w: the ½ cancels the 2 of the square. torch's mean
    L = (1/n) Σ (ŷ_i − y_i)² = (2/n) Σ E_i gives dL/dŷ_i = (2/n)(ŷ_i − y_i): the same direction,
    scaled by 2/n — a learning rate η on E is a learning rate η·n/2 on torch's L.

    Unweighted 'sum'/'mean': Σ d² as one dot product d·d (no ℓ tensor).

    Saved: the hidden output d = x − t only (torch saves x and t: twice the bytes); x and t
    instead when the broadcast d is bigger than both. d is an output, so double backward flows
    through it (d²L/dx² = 2 g w), and the gradient is linear in g.
    """

    generate_vmap_rule = True
    autocast = "float32"

    @staticmethod
    def forward(input: Tensor, target: Tensor, weight: Tensor | None, reduction: str):
        diff = input - target
        loss = _pointwise_forward(diff, torch.square, weight, reduction, True, _sum_of_squares)
        return loss, diff

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _pointwise_setup(ctx, inputs, output, mean_over_weight=True)

    @staticmethod
    def backward(ctx, grad_loss: Tensor | None, grad_diff: Tensor | None):
        diff, weight = _pointwise_state(ctx)
        grads = _pointwise_backward(
            ctx, grad_loss, grad_diff, weight, lambda g: (2 * g) * diff, diff.square
        )
        return (*grads, None)


class L1LossFunction(Function):
    r"""Mean absolute error  ℓ_i = w_i |x_i − t_i|,  L = reduce(ℓ) (weighted mean Σ w ℓ / Σ w).

    With d = x − t and g_i = dL/dℓ_i:

        dL/dx = g · w · sign(d)     dL/dt = −dL/dx          dL/dw = g · |d|
        (weighted mean: dL/dw_i = (|d_i| − L) / Σ w)

    Kink: the subgradient at d = 0 is 0 (sign(0) = 0), torch's choice.

    Saved: sign(d) as int8 (1 byte per element; torch saves d, 4 bytes) — it is piecewise
    constant, so the second derivative in x and t is 0 and nothing differentiable is needed.
    Only when w requires grad (dL/dw needs |d|) the hidden output d is saved instead.
    """

    generate_vmap_rule = True
    autocast = "float32"

    @staticmethod
    def forward(input: Tensor, target: Tensor, weight: Tensor | None, reduction: str):
        diff = input - target
        return _pointwise_forward(diff, torch.abs, weight, reduction, True), diff

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        sign = None if ctx.needs_input_grad[2] else output[1].sign().to(torch.int8)
        _pointwise_setup(ctx, inputs, output, mean_over_weight=True, state=sign)

    @staticmethod
    def backward(ctx, grad_loss: Tensor | None, grad_diff: Tensor | None):
        state, weight = _pointwise_state(ctx)
        sign = state.sign() if state.is_floating_point() else state
        grads = _pointwise_backward(
            ctx, grad_loss, grad_diff, weight, lambda g: g * sign, state.abs
        )
        return (*grads, None)


def _sum_of_squares(diff: Tensor) -> Tensor:
    """Σ d² of a 1-d d, as one dot product."""
    return torch.dot(diff, diff)


def _huber_total(diff: Tensor, delta: float) -> Tensor:
    """Σ e(d) of a 1-d d as Σ c d − ½ Σ c² (c = clamp(d, −δ, δ), see :func:`_huber`)."""
    clamped = diff.clamp(-delta, delta)
    return torch.dot(clamped, diff) - 0.5 * torch.dot(clamped, clamped)


def _huber(diff: Tensor, delta: float) -> Tensor:
    """e(d) = ½ d² for |d| < δ, δ (|d| − ½ δ) otherwise — both are c (d − ½ c) with
    c = clamp(d, −δ, δ) (c = d inside; c = ±δ outside gives δ |d| − ½ δ²)."""
    clamped = diff.clamp(-delta, delta)
    return clamped * (diff - 0.5 * clamped)


class HuberLossFunction(Function):
    r"""Huber loss  ℓ_i = w_i e(x_i − t_i),  e(d) = ½ d² (|d| < δ), δ (|d| − ½ δ) otherwise;
    L = reduce(ℓ), the weighted mean being (1/n) Σ w ℓ (torch's choice for huber).

    e'(d) = clamp(d, −δ, δ): continuous, so at |d| = δ both sides give ±δ (torch's value). With
    g_i = dL/dℓ_i:

        dL/dx = g · w · clamp(d, −δ, δ)     dL/dt = −dL/dx     dL/dw = g · e(d)

    Unweighted 'sum'/'mean': Σ e(d) = Σ c d − ½ Σ c², two dot products (no ℓ tensor).

    Saved: the hidden output d = x − t only (torch saves x and t), or x and t when the broadcast
    d is bigger. Double backward: d clamp/dd = 1[|d| ≤ δ], through the hidden output.
    """

    generate_vmap_rule = True
    autocast = "float32"

    @staticmethod
    def forward(input: Tensor, target: Tensor, weight: Tensor | None, reduction: str, delta: float):
        diff = input - target
        loss = _pointwise_forward(
            diff,
            lambda d: _huber(d, delta),
            weight,
            reduction,
            False,
            lambda d: _huber_total(d, delta),
        )
        return loss, diff

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _pointwise_setup(ctx, inputs, output, mean_over_weight=False)
        ctx.delta = inputs[4]

    @staticmethod
    def backward(ctx, grad_loss: Tensor | None, grad_diff: Tensor | None):
        diff, weight = _pointwise_state(ctx)
        delta = ctx.delta
        grads = _pointwise_backward(
            ctx,
            grad_loss,
            grad_diff,
            weight,
            lambda g: times(diff.clamp(-delta, delta), g),
            lambda: _huber(diff, delta),
        )
        return (*grads, None, None)


def _pointwise_loss(
    function: type[torch.autograd.Function],
    op: str,
    input: Tensor,
    target: Tensor,
    weight: Tensor | None,
    reduction: str,
    *extra: object,
) -> Tensor:
    broadcast_shape(input, target, op, warn_stacklevel=4)  # the caller of mse_loss & co.
    check_elementwise_weight(input, weight)
    return function.apply(input, target, weight, reduction, *extra)[0]


def mse_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """``torch.nn.functional.mse_loss`` through :class:`MSELossFunction` (warns like torch when
    the sizes differ, then broadcasts)."""
    reduction = _reduction.resolve(reduction, size_average, reduce)
    return _pointwise_loss(MSELossFunction, "mse_loss", input, target, weight, reduction)


def l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """``torch.nn.functional.l1_loss`` through :class:`L1LossFunction`."""
    reduction = _reduction.resolve(reduction, size_average, reduce)
    return _pointwise_loss(L1LossFunction, "l1_loss", input, target, weight, reduction)


def huber_loss(
    input: Tensor,
    target: Tensor,
    reduction: str = "mean",
    delta: float = 1.0,
    weight: Tensor | None = None,
) -> Tensor:
    """``torch.nn.functional.huber_loss`` through :class:`HuberLossFunction`."""
    reduction = _reduction.resolve(reduction)
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for `delta`.")
    return _pointwise_loss(HuberLossFunction, "huber_loss", input, target, weight, reduction, delta)


# ---------------------------------------------------------------------------------------------
# Binary hinge loss ℓ = max(0, margin − t·y), t ∈ {−1, +1}
# ---------------------------------------------------------------------------------------------


class HingeLossFunction(Function):
    r"""Binary hinge loss  ℓ_i = max(0, m − t_i y_i),  t_i ∈ {−1, +1},  L = reduce(ℓ).

    With z = m − t·y, active a = 1[z ≥ 0] and g_i = dL/dℓ_i:

        dL/dy = −g · t · a          dL/dt = −g · y · a   (only if t requires grad)

    Kink: exactly at the margin (t·y = m, z = 0) the subgradient is the *active* one, −t — the
    choice of the plain-formula reference ``clamp_min(m − t*y, 0)`` (clamp passes the gradient
    where z ≥ 0). The loss is piecewise linear: its second derivative in y is 0.

    Saved: when only y needs a gradient, the slope −t·a ∈ {−1, 0, 1} as int8 (1 byte per
    element; the reference saves t and z, 8 bytes). When t requires grad too: y, t and the bool
    a (the slope must stay differentiable in t).
    """

    generate_vmap_rule = True
    autocast = "float32"

    @staticmethod
    def forward(input: Tensor, target: Tensor, margin: float, reduction: str):
        z = margin - target * input
        return _reduction.reduce(z.clamp_min(0), reduction), z >= 0

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, target, _, reduction = inputs
        _, active = output
        ctx.mark_non_differentiable(active)
        ctx.reduction = reduction
        ctx.shapes = (input.shape, target.shape, active.shape)
        if ctx.needs_input_grad[1]:
            ctx.save_for_backward(input, target, active)
        else:
            ctx.save_for_backward(None, None, (active * -target).to(torch.int8))

    @staticmethod
    def backward(ctx, grad_loss: Tensor, _grad_active: None):
        input, target, saved = ctx.saved_tensors
        input_shape, target_shape, shape = ctx.shapes
        g = _reduction.unreduce(grad_loss, ctx.reduction, shape)
        if input is None:
            return (g * saved).sum_to_size(input_shape), None, None, None
        g = g * saved
        needs_input, needs_target = ctx.needs_input_grad[:2]
        grad_input = (-g * target).sum_to_size(input_shape) if needs_input else None
        grad_target = (-g * input).sum_to_size(target_shape) if needs_target else None
        return grad_input, grad_target, None, None


def hinge_loss(
    input: Tensor, target: Tensor, margin: float = 1.0, reduction: str = "mean"
) -> Tensor:
    """The binary hinge loss max(0, margin − target·input) of :class:`HingeLossFunction`.

    torch has no such op; the reference is the plain formula under autograd. ``target`` must
    hold only −1 and +1 (``ValueError`` otherwise; the value check is skipped under vmap and
    torch.compile tracing, where the caller guarantees it). Broadcasts like the formula.
    """
    reduction = _reduction.resolve(reduction)
    broadcast_shape(input, target, "hinge_loss")
    if data_dependent_checks_allowed(target) and not ((target == 1) | (target == -1)).all():
        raise ValueError("hinge_loss: `target` must contain only -1 and +1")
    return HingeLossFunction.apply(input, target, margin, reduction)[0]


# ---------------------------------------------------------------------------------------------
# Multi-class margin loss
# ---------------------------------------------------------------------------------------------


def _margin_terms(
    input: Tensor, target: Tensor, margin: float
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Rows x (N, C), target column y (N, 1), z_ij = m − x_{i,y_i} + x_ij and the active mask
    a_ij = 1[z_ij > 0, j ≠ y_i]."""
    n_classes = input.shape[-1] if input.dim() else 1
    rows = input.reshape(-1, n_classes)
    column = target.reshape(-1, 1)
    z = margin - rows.gather(1, column) + rows
    return rows, column, z, (z > 0).scatter(1, column, False)


class MultiMarginLossFunction(Function):
    r"""Multi-class margin loss, input (N, C), (C,) or 0-d, class-index target y:

        ℓ_i = w_{y_i} / C · Σ_{j ≠ y_i} max(0, z_ij)^p,   z_ij = m − x_{i,y_i} + x_ij,  p ∈ {1, 2}

    (the weight multiplies after the power, as torch's kernel); 'mean' divides by max(N, 1)
    (torch returns 0, not nan, for an empty batch). With a_ij = 1[z_ij > 0], j ≠ y_i, and
    s_i = g_i w_{y_i} / C, h_ij = a_ij (p = 1) or 2 a_ij z_ij (p = 2):

        dL/dx_ij = s_i h_ij  (j ≠ y_i),      dL/dx_{i,y_i} = −s_i Σ_j h_ij

    Kink: exactly at the margin (z = 0) the term is inactive (subgradient 0), torch's choice.

    Saved: p = 1: the bool mask a (1 byte per element; torch saves x, 4 bytes), the target and
    the weight — the loss is piecewise linear, so nothing differentiable is needed. p = 2: x
    (z is recomputed differentiably), the target and the weight, as torch.
    """

    generate_vmap_rule = True
    autocast = "float32"

    @staticmethod
    def forward(
        input: Tensor,
        target: Tensor,
        p: int,
        margin: float,
        weight: Tensor | None,
        reduction: str,
    ):
        rows, column, z, active = _margin_terms(input, target, margin)
        hinge = torch.where(active, z, 0)
        loss = (hinge if p == 1 else hinge.square()).sum(1) / rows.shape[1]
        if weight is not None:
            loss = loss * weight[column.squeeze(1)]
        loss = loss.reshape(target.shape)
        return _reduction.reduce(loss, reduction, max(rows.shape[0], 1)), active

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, target, p, margin, weight, reduction = inputs
        _, active = output
        ctx.mark_non_differentiable(active)
        ctx.p, ctx.margin, ctx.reduction, ctx.input_shape = p, margin, reduction, input.shape
        ctx.save_for_backward(active if p == 1 else input, target, weight)

    @staticmethod
    def backward(ctx, grad_loss: Tensor, _grad_active: None):
        saved, target, weight = ctx.saved_tensors
        column = target.reshape(-1, 1)
        if ctx.p == 1:
            slope = saved.to(grad_loss.dtype)
        else:
            _, _, z, active = _margin_terms(saved, target, ctx.margin)
            slope = 2 * torch.where(active, z, 0)
        n_samples, n_classes = slope.shape
        g = _reduction.unreduce(grad_loss, ctx.reduction, target.shape, max(n_samples, 1))
        g = g.reshape(-1, 1) / n_classes
        if weight is not None:
            g = g * weight[column]
        grad = g * slope
        grad = grad.scatter_add(1, column, -grad.sum(1, keepdim=True))
        return grad.reshape(ctx.input_shape), None, None, None, None, None


def multi_margin_loss(
    input: Tensor,
    target: Tensor,
    p: int = 1,
    margin: float = 1.0,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``torch.nn.functional.multi_margin_loss`` through :class:`MultiMarginLossFunction`."""
    reduction = _reduction.resolve(reduction, size_average, reduce)
    if p not in (1, 2):
        raise ValueError("multi_margin_loss: only `p` == 1 and p == 2 supported")
    if weight is not None and weight.dim() != 1:
        raise ValueError("multi_margin_loss: `weight` must be one-dimensional")
    if input.dim() > 2 or (input.dim() >= 1 and input.shape[-1] == 0):
        raise RuntimeError(
            "multi_margin_loss: Expected non-empty vector or matrix with optional 0-dim batch "
            f"size for `input`, but got: {list(input.shape)}"
        )
    n_samples = input.shape[0] if input.dim() == 2 else 1
    n_classes = input.shape[-1] if input.dim() else 1
    if target.dim() > 1 or target.numel() != n_samples:
        raise RuntimeError(
            "multi_margin_loss: `target` tensor should be 1-D with size equal to the number of "
            f"input samples (batch size). Expected target size [{n_samples}], but got "
            f"{list(target.shape)}. Input has shape {list(input.shape)}."
        )
    if target.dtype != torch.long:
        raise RuntimeError(
            f"multi_margin_loss: expected `target` of scalar type Long but found "
            f"{scalar_name(target)}"
        )
    if weight is not None and weight.numel() != n_classes:
        raise RuntimeError(
            f"multi_margin_loss: inconsistent `weight` size, expected {n_classes} but got "
            f"{list(weight.shape)}"
        )
    check_class_weight(input, weight, n_classes, "multi_margin_loss")
    try:
        check_class_range(target, n_classes, None)
    except IndexError:
        raise RuntimeError("multi_margin_loss: `target` out of range") from None
    return MultiMarginLossFunction.apply(input, target, p, margin, weight, reduction)[0]


# ---------------------------------------------------------------------------------------------
# Cross-entropy and negative log-likelihood over a class dimension
# ---------------------------------------------------------------------------------------------


def _class_dim(input: Tensor) -> int:
    """Classes are dim 0 of an unbatched (C,) input, dim 1 of (N, C, d1, ..., dK)."""
    return 0 if input.dim() == 1 else 1


def _along_classes(weight: Tensor, like: Tensor, dim: int) -> Tensor:
    """A (C,) class weight viewed to broadcast along ``dim`` of ``like``."""
    return weight.view(-1, *([1] * (like.dim() - dim - 1)))


def _picked(
    target: Tensor, weight: Tensor | None, ignore_index: int, dtype: torch.dtype
) -> tuple[Tensor, Tensor, Tensor]:
    """(class index with ignored samples sent to class 0, not-ignored mask, per-sample class
    weight w_{t_i}, 0 where ignored)."""
    valid = target != ignore_index
    index = torch.where(valid, target, 0).long()
    if weight is None:
        return index, valid, valid.to(dtype)
    return index, valid, torch.where(valid, weight[index], 0)


def _pick(values: Tensor, index: Tensor, valid: Tensor, dim: int) -> Tensor:
    """values[i, t_i] along ``dim`` (0 where ignored, even if the value there is ±inf)."""
    picked = values.gather(dim, index.unsqueeze(dim)).squeeze(dim)
    return torch.where(valid, picked, 0)


def _scattered(zeros: Tensor, dim: int, index: Tensor, values: Tensor) -> Tensor:
    """``zeros`` with ``values`` (keepdim) written at the class ``index`` along ``dim``: in place
    on the fresh zeros (no full-size copy), except while the index or the values are batched (a
    torch.func transform, or the incoming gradients under ``is_grads_batched``), where the zeros
    may be unbatched."""
    if transforms_or_tracing(index, values):
        return zeros.scatter(dim, index.unsqueeze(dim), values)
    return zeros.scatter_(dim, index.unsqueeze(dim), values)


def _per_sample_grad(
    grad_loss: Tensor,
    reduction: str,
    shape: torch.Size,
    valid: Tensor,
    picked_weight: Tensor,
) -> Tensor:
    """g_i = dL/dℓ_i ('mean': g / Σ w_t), 0 for ignored samples even when every sample is
    ignored (D = 0: torch's gradient is 0 there, not 0 · inf = nan)."""
    g = _reduction.unreduce(grad_loss, reduction, shape, picked_weight.sum())
    return torch.where(valid, g, 0)


class CrossEntropyFunction(Function):
    r"""Cross-entropy with class-index targets, input (C,), (N, C) or (N, C, d1, ..., dK):

        m = max_c x,   s = Σ_c e^{x_c − m},   p = e^{x − m} / s,   log p = x − m − log s
        (along the class dim; never torch's log_softmax)
        ℓ_i = (1 − ε) w_{t_i} (−log p_{i,t_i}) + (ε / C) Σ_c w_c (−log p_ic)    (0 if t_i ignored)
        L = reduce(ℓ), 'mean' dividing by D = Σ_{i not ignored} w_{t_i} (torch's total_weight)

    ε is label smoothing, w the class weight (1 if absent). Only the picked log p_{i,t_i} =
    x_{i,t_i} − m_i − log s_i and the sums Σ_c w_c log p_ic = Σ_c w_c x_ic − (m_i + log s_i) Σ_c w_c
    enter ℓ, so log p is never materialised: the forward's one full-size tensor is p (e^{x − m},
    normalised in place). Write ℓ_i = −Σ_c q_ic log p_ic with
    q_ic = (1 − ε) w_{t_i} 1[c = t_i] + (ε/C) w_c (q_i = 0 if ignored). Since
    d log p_ic / dx_ik = 1[c = k] − p_ik, with g_i = dL/dℓ_i:

        dL/dx_ik = g_i (p_ik Σ_c q_ic − q_ik)

    computed as the log-softmax backward G − p Σ_c G_c of G = dL/d log p = −g q (one scatter at
    the target plus the smoothing term); without smoothing (and without a gradient reaching
    p) Σ_c G_c = −g w_t, so dL/dx = p (g w_t) − g w_t 1[k = t]: one scaled p and a scatter-add,
    never a dense G. A gradient reaching the hidden output p (double backward) adds
    dL/dp ∘ p to G (dp/d log p = p).

    Saved: the hidden output p (N·C floats), the target and the weight — torch saves its
    log_softmax output, the target, the weight and total_weight. p is an output, so double
    backward flows through it (the Hessian p diag − p pᵀ comes out of the same formula); D is
    recomputed from target and weight.

    Bad targets: forward raises torch's IndexError for a class index outside [0, C) that is not
    ignore_index (``_loss_checks.check_class_range``; the wrapper checks the rest). It sits
    here, where the targets are read, so the C++ twin checks them in its row loop instead.
    """

    generate_vmap_rule = True
    autocast = "float32"

    @staticmethod
    def forward(
        input: Tensor,
        target: Tensor,
        weight: Tensor | None,
        reduction: str,
        ignore_index: int,
        label_smoothing: float,
    ):
        dim = _class_dim(input)
        check_class_range(target, input.shape[dim], ignore_index)
        shift = input.amax(dim, keepdim=True) if input.numel() else input.sum(dim, keepdim=True)
        probability = (input - shift).exp_()
        total = probability.sum(dim, keepdim=True)
        probability.div_(total)
        log_norm = (shift + total.log_()).squeeze(dim)  # m + log s: x − log p
        index, valid, picked_weight = _picked(target, weight, ignore_index, input.dtype)
        # where, not a product, on ignored samples: their log_norm may be inf or NaN (torch: 0)
        loss = torch.where(valid, (log_norm - _pick(input, index, valid, dim)) * picked_weight, 0)
        if label_smoothing:
            if weight is None:
                weighted, weight_sum = input.sum(dim), input.shape[dim]
            else:
                weighted = (input * _along_classes(weight, input, dim)).sum(dim)
                weight_sum = weight.sum()
            smooth = torch.where(valid, log_norm * weight_sum - weighted, 0)
            n_classes = input.shape[dim]
            loss = (1 - label_smoothing) * loss + (label_smoothing / n_classes) * smooth
        return _reduction.reduce(loss, reduction, picked_weight.sum()), probability

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _, target, weight, reduction, ignore_index, label_smoothing = inputs
        ctx.set_materialize_grads(False)
        ctx.reduction, ctx.ignore_index = reduction, ignore_index
        ctx.label_smoothing = label_smoothing
        ctx.save_for_backward(output[1], target, weight)

    @staticmethod
    def backward(ctx, grad_loss: Tensor | None, grad_probability: Tensor | None):
        if grad_loss is None and grad_probability is None:
            return None, None, None, None, None, None
        probability, target, weight = ctx.saved_tensors
        dim, smoothing = _class_dim(probability), ctx.label_smoothing
        grad = None if grad_probability is None else grad_probability * probability
        if grad_loss is not None:
            index, valid, picked_weight = _picked(
                target, weight, ctx.ignore_index, probability.dtype
            )
            g = _per_sample_grad(grad_loss, ctx.reduction, target.shape, valid, picked_weight)
            at_target = ((smoothing - 1) * g * picked_weight).unsqueeze(dim)
            if grad is None and not smoothing:
                # G is −g w_t at the target only, Σ_c G = −g w_t: dL/dx = p (g w_t) + G.
                grad_input = probability * -at_target
                return grad_input.scatter_add_(dim, index.unsqueeze(dim), at_target), *[None] * 5
            term = _scattered(torch.zeros_like(probability), dim, index, at_target)
            if smoothing:
                spread = g.unsqueeze(dim) * (smoothing / probability.shape[dim])
                if weight is not None:
                    spread = spread * _along_classes(weight, probability, dim)
                term = term - spread
            grad = term if grad is None else grad + term
        grad_input = grad - probability * grad.sum(dim, keepdim=True)
        return grad_input, None, None, None, None, None


def _smoothed(target: Tensor, smoothing: float, n_classes: int) -> Tensor:
    """t' = (1 − ε) t + ε / C  (t itself when ε = 0)."""
    return target * (1 - smoothing) + smoothing / n_classes if smoothing else target


class CrossEntropyProbsFunction(Function):
    r"""Cross-entropy with class-probability targets t (same shape as the input):

        log p = x − logsumexp_c(x),   t' = (1 − ε) t + ε / C,   ℓ_i = −Σ_c w_c t'_ic log p_ic
        L = reduce(ℓ), 'mean' dividing by the number of samples N·d1⋯dK (nan when empty)

    With q = w t' and g_i = dL/dℓ_i:

        dL/dx_ik = g_i (p_ik Σ_c q_ic − q_ik)        (t need not sum to 1)
        dL/dt_ic = −g_i (1 − ε) w_c log p_ic

    Saved: the hidden output log p, t (only if x needs a gradient) and the weight — torch saves
    its log_softmax output and t: equal or less. Double backward flows through log p.
    """

    generate_vmap_rule = True
    autocast = "float32"

    @staticmethod
    def forward(
        input: Tensor,
        target: Tensor,
        weight: Tensor | None,
        reduction: str,
        label_smoothing: float,
    ):
        dim = _class_dim(input)
        log_p = log_softmax_values(input, dim)
        q = _smoothed(target, label_smoothing, log_p.shape[dim])
        if weight is not None:
            q = q * _along_classes(weight, log_p, dim)
        return _reduction.reduce(-(log_p * q).sum(dim), reduction), log_p

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _, target, weight, reduction, label_smoothing = inputs
        ctx.set_materialize_grads(False)
        ctx.reduction, ctx.label_smoothing = reduction, label_smoothing
        ctx.save_for_backward(output[1], target if ctx.needs_input_grad[0] else None, weight)

    @staticmethod
    def backward(ctx, grad_loss: Tensor | None, grad_log_p: Tensor | None):
        log_p, target, weight = ctx.saved_tensors
        needs_input, needs_target = ctx.needs_input_grad[:2]
        dim, smoothing = _class_dim(log_p), ctx.label_smoothing
        grad, grad_target = grad_log_p, None
        if grad_loss is not None:
            shape = log_p.shape[:dim] + log_p.shape[dim + 1 :]
            g = _reduction.unreduce(grad_loss, ctx.reduction, shape)
            if ctx.reduction == "none":
                g = g.unsqueeze(dim)
            if weight is not None:
                g = g * _along_classes(weight, log_p, dim)
            if needs_input:
                term = -g * _smoothed(target, smoothing, log_p.shape[dim])
                grad = term if grad is None else grad + term
            if needs_target:
                grad_target = -(1 - smoothing) * g * log_p
        grad_input = None
        if needs_input and grad is not None:
            grad_input = grad - log_p.exp() * grad.sum(dim, keepdim=True)
        return grad_input, grad_target, None, None, None


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """``torch.nn.functional.cross_entropy``: class-index targets through
    :class:`CrossEntropyFunction`, class-probability targets (``target`` shaped like ``input``)
    through :class:`CrossEntropyProbsFunction`."""
    reduction = _reduction.resolve(reduction, size_average, reduce)
    if input.shape == target.shape:
        check_probability_targets(input, target, weight, ignore_index, "cross_entropy")
        smoothing = check_label_smoothing(label_smoothing, "cross_entropy")
        return CrossEntropyProbsFunction.apply(input, target, weight, reduction, smoothing)[0]
    smoothing = check_label_smoothing(label_smoothing, "cross_entropy")
    target = check_class_targets(input, target, weight, ignore_index, "cross_entropy", False)
    return CrossEntropyFunction.apply(input, target, weight, reduction, ignore_index, smoothing)[0]


class NLLLossFunction(Function):
    r"""Negative log-likelihood of log-probabilities x, class-index target t:

        ℓ_i = −w_{t_i} x_{i,t_i}  (0 if t_i = ignore_index),
        L = reduce(ℓ), 'mean' dividing by D = Σ_{i not ignored} w_{t_i}

    dL/dx_ik = −g_i w_{t_i} 1[k = t_i]  (g_i = dL/dℓ_i): a scatter of −g w_t at the targets,
    independent of x (the second derivative in x is 0; linear in g).

    Saved: the target and the weight only (torch also saves x and total_weight); D is
    recomputed from them.

    Bad targets: forward raises IndexError for a class index outside [0, C) that is not
    ignore_index, as :class:`CrossEntropyFunction` (the C++ twin: in its row loop).
    """

    generate_vmap_rule = True
    autocast = "float32"

    @staticmethod
    def forward(
        input: Tensor,
        target: Tensor,
        weight: Tensor | None,
        reduction: str,
        ignore_index: int,
    ) -> Tensor:
        dim = _class_dim(input)
        check_class_range(target, input.shape[dim], ignore_index)
        index, valid, picked_weight = _picked(target, weight, ignore_index, input.dtype)
        loss = -_pick(input, index, valid, dim) * picked_weight
        return _reduction.reduce(loss, reduction, picked_weight.sum())

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, target, weight, reduction, ignore_index = inputs
        ctx.input_shape, ctx.reduction, ctx.ignore_index = input.shape, reduction, ignore_index
        ctx.dim = _class_dim(input)
        ctx.save_for_backward(target, weight)

    @staticmethod
    def backward(ctx, grad_loss: Tensor):
        target, weight = ctx.saved_tensors
        index, valid, picked_weight = _picked(target, weight, ctx.ignore_index, grad_loss.dtype)
        g = _per_sample_grad(grad_loss, ctx.reduction, target.shape, valid, picked_weight)
        grad_input = _scattered(
            grad_loss.new_zeros(ctx.input_shape),
            ctx.dim,
            index,
            (-g * picked_weight).unsqueeze(ctx.dim),
        )
        return grad_input, None, None, None, None


def nll_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``torch.nn.functional.nll_loss`` through :class:`NLLLossFunction`."""
    reduction = _reduction.resolve(reduction, size_average, reduce)
    target = check_class_targets(input, target, weight, ignore_index, "nll_loss", False)
    return NLLLossFunction.apply(input, target, weight, reduction, ignore_index)


# ---------------------------------------------------------------------------------------------
# Binary cross-entropy on logits
# ---------------------------------------------------------------------------------------------


def _log_sigmoid(input: Tensor) -> Tensor:
    """log σ(x) = min(x, 0) − log(1 + e^{−|x|}), stable for any x."""
    return input.clamp_max(0) - torch.log1p(torch.exp(-input.abs()))


class BCEWithLogitsFunction(Function):
    r"""Binary cross-entropy on logits x with targets t ∈ [0, 1], element weight w and positive
    weight P (both broadcast; 1 if absent):

        ℓ = −w [P t log σ(x) + (1 − t) log(1 − σ(x))] = w [(1 − t) x − (1 + (P − 1) t) log σ(x)]

    using log(1 − σ(x)) = log σ(x) − x and a stable log σ. L = reduce(ℓ). With g = dL/dℓ
    and σ' = σ (1 − σ):

        dL/dx = g w [(1 + (P − 1) t) σ(x) − P t]           (P = 1: g w (σ(x) − t))
        dL/dt = −g w [P log σ(x) − log σ(−x)] = −g w [x + (P − 1) log σ(x)]   (P = 1: −g w x;
                the first form, as torch, is +inf rather than −inf + inf at x = −inf)

    Saved: x, t (only if x needs a gradient), w and P — what torch saves. w and P are constants
    (torch refuses them requiring grad).
    """

    generate_vmap_rule = True
    autocast = "float32"

    @staticmethod
    def forward(
        input: Tensor,
        target: Tensor,
        weight: Tensor | None,
        pos_weight: Tensor | None,
        reduction: str,
    ) -> Tensor:
        log_sigmoid = _log_sigmoid(input)
        if pos_weight is None:
            loss = (1 - target) * input - log_sigmoid
        else:
            loss = (1 - target) * input - (1 + (pos_weight - 1) * target) * log_sigmoid
        if weight is not None:
            loss = loss * weight
        return _reduction.reduce(loss, reduction)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, target, weight, pos_weight, reduction = inputs
        ctx.reduction = reduction
        ctx.save_for_backward(
            input, target if ctx.needs_input_grad[0] else None, weight, pos_weight
        )

    @staticmethod
    def backward(ctx, grad_loss: Tensor):
        input, target, weight, pos_weight = ctx.saved_tensors
        needs_input, needs_target = ctx.needs_input_grad[:2]
        g = _reduction.unreduce(grad_loss, ctx.reduction, input.shape)
        if weight is not None:
            g = g * weight
        grad_input = grad_target = None
        if needs_input:
            probability = torch.sigmoid(input)
            if pos_weight is None:
                grad_input = g * (probability - target)
            else:
                grad_input = g * (
                    (1 + (pos_weight - 1) * target) * probability - pos_weight * target
                )
        if needs_target:
            if pos_weight is None:
                grad_target = -g * input
            else:
                # p log σ(x) − log σ(−x) (= x + (p − 1) log σ(x), which is −inf + inf at −inf)
                grad_target = -g * (pos_weight * _log_sigmoid(input) - _log_sigmoid(-input))
        return grad_input, grad_target, None, None, None


def _broadcasts_to(value: Tensor, shape: torch.Size) -> bool:
    try:
        return torch.broadcast_shapes(value.shape, shape) == shape
    except RuntimeError:
        return False


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """``torch.nn.functional.binary_cross_entropy_with_logits`` through
    :class:`BCEWithLogitsFunction`."""
    reduction = _reduction.resolve(reduction, size_average, reduce)
    if target.size() != input.size():
        raise ValueError(
            f"Target size ({target.size()}) must be the same as input size ({input.size()})"
        )
    if not target.is_floating_point():
        raise RuntimeError(
            "binary_cross_entropy_with_logits: expected a floating-point `target`, got "
            f"{scalar_name(target)}"
        )
    for name, value in (("weight", weight), ("pos_weight", pos_weight)):
        if value is None:
            continue
        if not _broadcasts_to(value, input.shape):
            raise RuntimeError(
                f"binary_cross_entropy_with_logits: `{name}` of size {list(value.shape)} does "
                f"not broadcast to the input size {list(input.shape)}"
            )
        check_constant_weight(value, name, "binary_cross_entropy_with_logits")
    return BCEWithLogitsFunction.apply(input, target, weight, pos_weight, reduction)


__all__ = [
    "BCEWithLogitsFunction",
    "CrossEntropyFunction",
    "CrossEntropyProbsFunction",
    "HingeLossFunction",
    "HuberLossFunction",
    "L1LossFunction",
    "MSELossFunction",
    "MultiMarginLossFunction",
    "NLLLossFunction",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "hinge_loss",
    "huber_loss",
    "l1_loss",
    "mse_loss",
    "multi_margin_loss",
    "nll_loss",
]
