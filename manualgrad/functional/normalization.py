r"""Normalisation layers: standardise over some dims, then an affine map.

All four share one derivation. Over a set S of M cells (a channel across the batch for batch
norm, the trailing dims for layer norm, a group for group norm):

    μ = (1/M) Σ_S x,   v = (1/M) Σ_S (x − μ)²,   r = (v + ε)^(−1/2),   x̂ = (x − μ) r,
    y = x̂ ∘ w + b.

With ĝ = dL/dx̂ = dL/dy ∘ w, and since dμ/dx_i = 1/M and dr/dx_i = −r³ (x_i − μ)/M,

    dL/dx = r (ĝ − (1/M) Σ_S ĝ − x̂ (1/M) Σ_S ĝ x̂)
          = r ĝ + B x + C  with per-set scalars  B = −r² (Σ ĝ x̂)/M,  C = −r (Σ ĝ)/M − μ B,
    dL/dw = Σ_{other dims} dL/dy ∘ x̂,   dL/db = Σ_{other dims} dL/dy,

and Σ ĝ x̂ = r (Σ ĝ x − μ Σ ĝ), so x̂ never has to be stored. RMS norm is the same with μ ≡ 0
and v = (1/M) Σ x² (no Σ ĝ term). μ and r are extra outputs of each Function (hidden by the
wrappers) and are saved as outputs, so that the backward — a function of x, μ, r, w — stays
connected to x for double backward; gradients reaching μ and r add
dL/dμ · 1/M − dL/dr · r³ (x − μ)/M to dL/dx.

Low precision as torch: the wrappers compute float16/bfloat16 inputs (and parameters) in float32
(``_precision.upcast``) — μ, v and r, and the sums of the backward, would otherwise lose every
digit (v of x = 0.01·randn underflows float16, x = 1000·randn overflows it) — and cast the
output back to the input's dtype, whatever the parameters' or running statistics' dtype.
Zero-size normalised dims are reshaped with explicit row counts, so empty inputs have empty
gradients, as torch's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from manualgrad.functional._elementwise import scratch_allowed
from manualgrad.functional._function import Function, transforms_or_tracing
from manualgrad.functional._precision import accumulation_dtype, downcast, upcast


def _input_grad(
    grad_output: Tensor,
    input: Tensor,
    sum_grad: Tensor | None,
    sum_grad_input: Tensor,
    mean: Tensor | None,
    rstd: Tensor,
    count: int,
    grad_mean: Tensor | None,
    grad_rstd: Tensor | None,
    scales: Sequence[Tensor],
    workspace: Tensor | None = None,
) -> Tensor:
    """dL/dx = r ĝ + B x + C (module docstring) from the per-set sums Σ ĝ (None for RMS norm)
    and Σ ĝ x, where ĝ = dL/dy ∘ w and r ĝ = dL/dy ∘ Π ``scales`` (r ∘ w, as one broadcastable
    factor or several), so that ĝ itself is never materialised. ``workspace``, a spent
    temporary of dL/dx's shape, receives dL/dx when no graph is being recorded (a fresh
    allocation of that size costs more than the pass itself)."""
    # Σ ĝ x̂ / r = Σ ĝ x − μ Σ ĝ;  B = −r³ (Σ ĝ x − μ Σ ĝ)/M;  C = −r Σ ĝ/M − μ B.
    centred = (
        sum_grad_input if mean is None else torch.addcmul(sum_grad_input, mean, sum_grad, value=-1)
    )
    cubed = rstd.pow(3).div_(-count)
    coef_x = centred.mul(cubed)
    if grad_rstd is not None:  # r depends on x through v (and μ): dr/dx = −r³ (x − μ)/M
        coef_x.addcmul_(grad_rstd, cubed)
    coef_1 = None
    if mean is not None:
        coef_1 = torch.addcmul(rstd * sum_grad / -count, mean, coef_x, value=-1)
        if grad_mean is not None:  # dμ/dx = 1/M
            coef_1.add_(grad_mean, alpha=1 / count)
    grad = _product(grad_output, scales[0], workspace)
    for scale in scales[1:]:
        grad.mul_(scale)
    grad.addcmul_(input, coef_x)
    return grad if coef_1 is None else grad.add_(coef_1)


def _product(left: Tensor, right: Tensor, workspace: Tensor | None) -> Tensor:
    """left ∘ right, written into the spent temporary ``workspace`` (of ``left``'s shape) in a
    first-order backward (:func:`scratch_allowed`), since a fresh full-size allocation costs
    more than the pass itself; out of place when an operand is batched by a transform (``out=``
    has no batching rule)."""
    if (
        workspace is None
        or not scratch_allowed()
        or workspace.shape != left.shape
        or transforms_or_tracing(left, right, workspace)
    ):
        return left * right
    return torch.mul(left, right, out=workspace)


def _zeros_if_none(grad: Tensor | None, like: Tensor) -> Tensor:
    """Gradients of unused outputs arrive as None (materialisation is off): μ and r get none in a
    first backward, the main output none in a double backward that reaches only μ and r."""
    return torch.zeros_like(like) if grad is None else grad


def _save_statistics(ctx, input: Tensor, weight: Tensor | None, output: tuple[Tensor, ...]) -> None:
    """The layer, RMS and group norms' saved state: x, w and the statistics the forward returns
    after y (mean and 1/σ, or 1/rms); gradients not computed stay None (not materialized)."""
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(input, weight, *output[1:])


def _moments(input: Tensor, dims: list[int], eps: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """x − μ (a fresh tensor the caller may overwrite), μ, v, r over ``dims`` (keepdim).

    Over trailing dims v is ‖x − μ‖²/M, a reduction with no full-size temporary; otherwise
    (batch norm's dims 0, 2, ...) the mean of (x − μ)², which is faster there."""
    mean = input.mean(dims, keepdim=True)
    centred = input - mean
    dims = [dim % input.dim() for dim in dims]
    if dims == list(range(input.dim() - len(dims), input.dim())):
        count = math.prod(input.shape[dim] for dim in dims)
        var = torch.linalg.vector_norm(centred, dim=dims, keepdim=True).square_().div_(count)
    else:
        var = centred.square().mean(dims, keepdim=True)
    return centred, mean, var, (var + eps).rsqrt()


class BatchNormFunction(Function):
    r"""Batch norm over channel dim 1: S = (batch, spatial) cells of one channel.

    training: μ, r from the batch (biased variance); running stats updated in place as torch
    does:  running_mean ← (1 − m) running_mean + m μ,
           running_var  ← (1 − m) running_var  + m v · M/(M − 1)   (unbiased).
    eval:  μ = running_mean, r = (running_var + ε)^(−1/2), constants (dL/dμ = dL/dr = 0).

    Saved: x (needed by dL/dw, and by dL/dx in training), w, and the outputs μ, r (C each);
    nothing for an empty batch (all gradients are then zero, as torch's).

    dL/dx = r w ∘ dL/dy + B x + C  (training; module docstring with Σ ĝ = w Σ dL/dy,
            Σ ĝ x = w Σ dL/dy ∘ x — computed per channel, ĝ is never materialised)
          = r w ∘ dL/dy            (eval)
    dL/dw = r (Σ dL/dy ∘ x − μ Σ dL/dy),   dL/db = Σ dL/dy.

    float16/bfloat16: computed in float32, the output cast back (module docstring).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(
        input: Tensor,
        weight: Tensor | None,
        bias: Tensor | None,
        running_mean: Tensor | None,
        running_var: Tensor | None,
        training: bool,
        momentum: float,
        eps: float,
    ) -> tuple[Tensor, Tensor, Tensor]:
        if input.numel() == 0:  # nothing to normalise, running stats untouched (as torch; w, b
            # may have any size here)
            stats = input.new_empty(input.shape[1])
            return input.clone(), stats, stats.clone()
        dims = _channel_reduce_dims(input)
        shape = _channel_shape(input)
        if training:
            output, mean, var, rstd = _moments(input, dims, eps)
            _update_running_stats(running_mean, running_var, mean, var, input, momentum)
            output.mul_(rstd if weight is None else rstd * weight.reshape(shape))
            if bias is not None:
                output.add_(bias.reshape(shape))
            return output, mean.flatten(), rstd.flatten()
        mean = running_mean.reshape(shape).clone()
        rstd = (running_var.reshape(shape) + eps).rsqrt()
        scale = rstd if weight is None else rstd * weight.reshape(shape)
        shift = -mean * scale if bias is None else bias.reshape(shape) - mean * scale
        output = (input * scale).add_(shift)
        return output, mean.flatten(), rstd.flatten()

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.set_materialize_grads(False)
        input, weight, _, _, _, training, _, _ = inputs
        _, mean, rstd = output
        needs_input, needs_weight = ctx.needs_input_grad[:2]
        if not training:
            ctx.mark_non_differentiable(mean, rstd)
        keep_input = needs_weight or (training and needs_input)
        ctx.empty = input.numel() == 0  # nothing normalised: every gradient is zero
        # w, b may have any size on an empty input (torch does not check them there)
        ctx.parameter_sizes = [0 if t is None else t.numel() for t in inputs[1:3]]
        if ctx.empty:
            ctx.save_for_backward(None, None, None, None)
        else:
            ctx.save_for_backward(input if keep_input else None, weight, mean, rstd)
        ctx.training = training
        ctx.count = input.numel() // max(input.shape[1], 1)

    @staticmethod
    def backward(ctx, grad_output: Tensor, grad_mean: Tensor | None, grad_rstd: Tensor | None):
        input, weight, mean, rstd = ctx.saved_tensors
        needs_input, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        if grad_output is None and (ctx.empty or not ctx.training):
            return (None,) * 8  # only μ, r were reached, and they are constants here
        grad_output = _zeros_if_none(grad_output, input)
        if ctx.empty:
            weight_zeros, bias_zeros = (grad_output.new_zeros(n) for n in ctx.parameter_sizes)
            return (
                torch.zeros_like(grad_output) if needs_input else None,
                weight_zeros if needs_weight else None,
                bias_zeros if needs_bias else None,
                *[None] * 5,
            )
        dims, shape = _channel_reduce_dims(grad_output), _channel_shape(grad_output)
        mean, rstd = mean.reshape(shape), rstd.reshape(shape)
        scale = rstd if weight is None else rstd * weight.reshape(shape)
        sum_grad = grad_output.sum(dims, keepdim=True)
        sum_grad_input = grad_times_input = None
        if needs_weight or (ctx.training and needs_input):
            grad_times_input = grad_output * input  # reduced, then overwritten by dL/dx
            sum_grad_input = grad_times_input.sum(dims, keepdim=True)
        grad_input = grad_weight = None
        if needs_input and ctx.training:
            w = 1 if weight is None else weight.reshape(shape)
            grad_input = _input_grad(
                grad_output,
                input,
                w * sum_grad,
                w * sum_grad_input,
                mean,
                rstd,
                ctx.count,
                grad_mean.reshape(shape) if grad_mean is not None else None,
                grad_rstd.reshape(shape) if grad_rstd is not None else None,
                [scale],
                grad_times_input,
            )
        elif needs_input:
            grad_input = _product(grad_output, scale, grad_times_input)
        if needs_weight:
            grad_weight = (rstd * (sum_grad_input - mean * sum_grad)).reshape(-1)
        grad_bias = sum_grad.reshape(-1) if needs_bias else None
        return grad_input, grad_weight, grad_bias, None, None, None, None, None


def _channel_reduce_dims(input: Tensor) -> list[int]:
    return [0, *range(2, input.dim())]


def _channel_shape(input: Tensor) -> list[int]:
    """Broadcast shape of a per-channel vector against ``input``: (1, C, 1, ...)."""
    return [1, input.shape[1]] + [1] * (input.dim() - 2)


def _update_running_stats(
    running_mean: Tensor | None,
    running_var: Tensor | None,
    mean: Tensor,
    var: Tensor,
    input: Tensor,
    momentum: float,
) -> None:
    """Exponential moving averages of μ and of the unbiased variance v·M/(M − 1), in place."""
    count = input.numel() // max(input.shape[1], 1)
    if running_mean is not None:
        running_mean.mul_(1 - momentum).add_(mean.flatten(), alpha=momentum)
    if running_var is not None:
        unbiased = var.flatten() * (count / max(count - 1, 1))
        running_var.mul_(1 - momentum).add_(unbiased, alpha=momentum)


def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """``torch.nn.functional.batch_norm`` through :class:`BatchNormFunction` (float16/bfloat16
    computed in float32, the output in the input's dtype; an empty input of fewer than 2 dims is
    returned as a copy, as torch)."""
    if input.dim() < 2 and input.numel() == 0:
        return input.clone()
    if input.dim() < 2:
        raise IndexError(
            f"batch_norm: expected an input with a channel dim 1, got size {list(input.shape)}"
        )
    channels = input.shape[1]
    if (
        not input.numel()
        and channels
        and any(t is not None and not t.numel() for t in (weight, bias))
    ):
        raise IndexError("batch_norm: an empty `weight` or `bias` for a channel (as torch)")
    if training and eps <= 0:
        raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
    if eps < 0:
        raise ValueError(f"batch_norm eps must be non-negative, but got {eps}")
    if training and channels and input.numel() // channels == 1:
        raise ValueError(
            f"Expected more than 1 value per channel when training, got input size {input.size()}"
        )
    if not training and (running_mean is None or running_var is None):
        name = "running_mean" if running_mean is None else "running_var"
        raise RuntimeError(f"{name} must be defined in evaluation mode")
    for name, tensor in (
        ("weight", weight),
        ("bias", bias),
        ("running_mean", running_mean),
        ("running_var", running_var),
    ):
        if tensor is not None and tensor.numel() != channels and input.numel():
            raise RuntimeError(f"{name} should contain {channels} elements not {tensor.numel()}")
    wide, weight, bias = upcast(input, weight, bias)
    if not training:  # constants here; in training they are updated in place
        running_mean, running_var = upcast(running_mean, running_var)
    output, _, _ = BatchNormFunction.apply(
        wide, weight, bias, running_mean, running_var, training, momentum, eps
    )
    return downcast(output, input.dtype)


class LayerNormFunction(Function):
    r"""Layer norm over the last D dims (S = those M cells of one row), element-wise affine w, b
    of the normalised shape. With rows flattened to a (R, M) matrix G = dL/dy, X = x:

    Saved: x, w, and the outputs μ, r (one per row).

    dL/dx = r ĝ + B x + C   (module docstring; Σ ĝ = G w and Σ ĝ x = (G ∘ X) w, matrix-vector
            products, without materialising ĝ = G ∘ w)
    dL/dw = Σ_rows G ∘ x̂ = (G ∘ X)ᵀ r − Gᵀ (μ ∘ r),   dL/db = Σ_rows G.

    float16/bfloat16: computed in float32, the output cast back (module docstring).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(
        input: Tensor, weight: Tensor | None, bias: Tensor | None, dims: int, eps: float
    ) -> tuple[Tensor, Tensor, Tensor]:
        output, mean, _, rstd = _moments(input, list(range(-dims, 0)), eps)
        output.mul_(rstd)
        if weight is not None:
            output.mul_(weight)
        if bias is not None:
            output.add_(bias)
        return output, mean, rstd

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, weight, _, ctx.dims, _ = inputs
        _save_statistics(ctx, input, weight, output)

    @staticmethod
    def backward(ctx, grad_output: Tensor, grad_mean: Tensor | None, grad_rstd: Tensor | None):
        grads = layer_norm_grads(
            ctx.saved_tensors, ctx.needs_input_grad, ctx.dims, grad_output, grad_mean, grad_rstd
        )
        return (*grads, None, None)


def layer_norm_grads(
    saved: tuple,
    needs: tuple,
    dims: int,
    grad_output: Tensor | None,
    grad_mean: Tensor | None,
    grad_rstd: Tensor | None,
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """dL/dx, dL/dw, dL/db of :class:`LayerNormFunction` from its saved (x, w, μ, r) and needs
    flags (also the norm part of the fused add + norm in ``functional/transformer.py``)."""
    input, weight, mean, rstd = saved
    needs_input, needs_weight, needs_bias = needs[:3]
    grad_output = _zeros_if_none(grad_output, input)
    rows = _Rows(grad_output, input, weight, dims)
    mean, rstd = mean.reshape(-1, 1), rstd.reshape(-1, 1)
    grad_input = grad_weight = grad_bias = None
    if needs_input or needs_weight:
        # One (R, M) temporary, reduced both ways, then overwritten by dL/dx.
        grad_times_input = rows.grad * rows.input
        if needs_input:
            sum_grad_input = rows.weighted_sum(grad_times_input)
        if needs_weight:
            grad_weight = rows.column_sums(grad_times_input, rstd)
            grad_weight = grad_weight - rows.column_sums(rows.grad, mean * rstd)
            grad_weight = grad_weight.view(weight.shape)
    if needs_input:
        grad_input = _input_grad(
            rows.grad,
            rows.input,
            rows.weighted_sum(rows.grad),
            sum_grad_input,
            mean,
            rstd,
            rows.width,
            None if grad_mean is None else grad_mean.reshape(-1, 1),
            None if grad_rstd is None else grad_rstd.reshape(-1, 1),
            rows.scales(rstd),
            grad_times_input,
        ).view(grad_output.shape)
    if needs_bias:
        grad_bias = rows.column_sums(rows.grad).view(grad_output.shape[-dims:])
    return grad_input, grad_weight, grad_bias


class _Rows:
    """dL/dy, x (and w) of a norm over the last ``dims`` dims as (R, M) matrices (and an M
    vector), with the row and column sums the backward needs as matrix products."""

    def __init__(self, grad: Tensor, input: Tensor, weight: Tensor | None, dims: int) -> None:
        self.width = math.prod(input.shape[input.dim() - dims :])
        rows = math.prod(input.shape[: input.dim() - dims])  # explicit: the width may be 0
        self.grad = grad.reshape(rows, self.width)
        self.input = input.reshape(rows, self.width)
        self.weight = None if weight is None else weight.reshape(self.width)

    def weighted_sum(self, matrix: Tensor) -> Tensor:
        """Row sums of matrix ∘ w, (R, 1)."""
        if self.weight is None:
            return matrix.sum(1, keepdim=True)
        return matrix.matmul(self.weight).unsqueeze(1)

    def column_sums(self, matrix: Tensor, row_weights: Tensor | None = None) -> Tensor:
        """Σ_rows matrix (optionally ∘ the (R, 1) ``row_weights``), (M,)."""
        if row_weights is None:
            return matrix.sum(0)
        return matrix.t().matmul(row_weights).squeeze(1)

    def scales(self, rstd: Tensor) -> list[Tensor]:
        """The factors of r ∘ w: r per row, then w per column."""
        return [rstd] if self.weight is None else [rstd, self.weight]


def _check_normalized_shape(
    op: str, input: Tensor, normalized_shape: int | Sequence[int], **params: Tensor | None
) -> tuple[int, ...]:
    """torch's checks of ``normalized_shape`` and of the affine parameters' shapes."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if not shape:
        raise RuntimeError(
            "Expected normalized_shape to be at least 1-dimensional, i.e., containing at least "
            "one element, but got normalized_shape = []"
        )
    for name, param in params.items():
        if param is not None and tuple(param.shape) != shape:
            raise RuntimeError(
                f"Expected {name} to be of same shape as normalized_shape, but got {name} of "
                f"shape {list(param.shape)} and normalized_shape = {list(shape)}"
            )
    if tuple(input.shape[input.dim() - len(shape) :]) != shape or input.dim() < len(shape):
        star = "*, " if op == "layer_norm" else "*"
        expected = star + ", ".join(str(size) for size in shape)
        raise RuntimeError(
            f"Given normalized_shape={list(shape)}, expected input with shape [{expected}], "
            f"but got input of size{list(input.shape)}"
        )
    return shape


def layer_norm(
    input: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """``torch.nn.functional.layer_norm`` through :class:`LayerNormFunction`."""
    shape = _check_normalized_shape("layer_norm", input, normalized_shape, weight=weight, bias=bias)
    output, _, _ = LayerNormFunction.apply(*upcast(input, weight, bias), len(shape), eps)
    return downcast(output, input.dtype)


class RMSNormFunction(Function):
    r"""RMS norm over the last D dims:  r = ((1/M) Σ x² + ε)^(−1/2),  y = x r ∘ w.

    The module docstring's derivation with μ ≡ 0 (no centring, so no Σ ĝ term).

    Saved: x, w, and the output r (one per row).

    dL/dx = r ĝ − x r³ (Σ ĝ x)/M − x r³ dL/dr / M   (ĝ = dL/dy ∘ w, Σ ĝ x = (G ∘ X) w)
    dL/dw = Σ_rows dL/dy ∘ x r = (G ∘ X)ᵀ r.

    float16/bfloat16: computed in float32, the output cast back (module docstring).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(
        input: Tensor, weight: Tensor | None, dims: int, eps: float
    ) -> tuple[Tensor, Tensor]:
        rstd = input.square().mean(list(range(-dims, 0)), keepdim=True).add_(eps).rsqrt_()
        output = input * rstd
        if weight is not None:
            output.mul_(weight)
        return output, rstd

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, weight, ctx.dims, _ = inputs
        _save_statistics(ctx, input, weight, output)

    @staticmethod
    def backward(ctx, grad_output: Tensor, grad_rstd: Tensor | None):
        grads = rms_norm_grads(
            ctx.saved_tensors, ctx.needs_input_grad, ctx.dims, grad_output, grad_rstd
        )
        return (*grads, None, None)


def rms_norm_grads(
    saved: tuple, needs: tuple, dims: int, grad_output: Tensor | None, grad_rstd: Tensor | None
) -> tuple[Tensor | None, Tensor | None]:
    """dL/dx, dL/dw of :class:`RMSNormFunction` from its saved (x, w, r) and needs flags
    (also the norm part of the fused add + norm in ``functional/transformer.py``)."""
    input, weight, rstd = saved
    needs_input, needs_weight = needs[:2]
    grad_output = _zeros_if_none(grad_output, input)
    rows = _Rows(grad_output, input, weight, dims)
    rstd = rstd.reshape(-1, 1)
    grad_input = grad_weight = None
    # One (R, M) temporary, reduced both ways and released before dL/dx is allocated.
    grad_times_input = rows.grad * rows.input
    if needs_weight:
        grad_weight = rows.column_sums(grad_times_input, rstd).view(weight.shape)
    sum_grad_input = rows.weighted_sum(grad_times_input) if needs_input else None
    del grad_times_input
    if needs_input:
        grad_input = _input_grad(
            rows.grad,
            rows.input,
            None,
            sum_grad_input,
            None,
            rstd,
            rows.width,
            None,
            None if grad_rstd is None else grad_rstd.reshape(-1, 1),
            rows.scales(rstd),
        ).view(grad_output.shape)
    return grad_input, grad_weight


def rms_norm(
    input: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    eps: float | None = None,
) -> Tensor:
    """``torch.nn.functional.rms_norm`` through :class:`RMSNormFunction`; ``eps=None`` means
    the machine epsilon of the computation dtype, as torch: float32's for float16/bfloat16
    inputs (computed in float32), not the small dtype's (bfloat16's is 7.8e-3)."""
    shape = _check_normalized_shape("rms_norm", input, normalized_shape, weight=weight)
    eps = torch.finfo(accumulation_dtype(input.dtype)).eps if eps is None else eps
    output, _ = RMSNormFunction.apply(*upcast(input, weight), len(shape), eps)
    return downcast(output, input.dtype)


class GroupNormFunction(Function):
    r"""Group norm: the C channels of each sample split into G groups; S = a group's C/G
    channels × spatial cells. Per-channel affine w, b.

    Saved: x, w, and the outputs μ, r (N × G each).

    dL/dx = r w ∘ dL/dy + B x + C  (module docstring; the group sums Σ ĝ = Σ_c w_c Σ dL/dy,
            Σ ĝ x = Σ_c w_c Σ dL/dy ∘ x are built from per-channel sums, ĝ is never
            materialised; B, C, r are then repeated over each group's channels)
    dL/dw_c = Σ_n r_{n,g(c)} (Σ dL/dy ∘ x − μ_{n,g(c)} Σ dL/dy)_{n,c},   dL/db_c = Σ dL/dy.

    float16/bfloat16: computed in float32, the output cast back (module docstring).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(
        input: Tensor, weight: Tensor | None, bias: Tensor | None, groups: int, eps: float
    ) -> tuple[Tensor, Tensor, Tensor]:
        grouped = input.reshape(input.shape[0], groups, math.prod(input.shape[1:]) // groups)
        output, mean, _, rstd = _moments(grouped, [2], eps)
        mean, rstd = mean.flatten(1), rstd.flatten(1)
        # x̂ w + b in two passes: r and w folded into one (N, C) scale.
        batch, channels = input.shape[:2]
        per_channel = output.view(batch, channels, math.prod(input.shape[2:]))
        scale = rstd.repeat_interleave(channels // groups, dim=1)
        per_channel.mul_((scale if weight is None else scale * weight).unsqueeze(2))
        if bias is not None:
            per_channel.add_(bias.unsqueeze(1))
        return output.view(input.shape), mean, rstd

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, weight, _, ctx.groups, _ = inputs
        _save_statistics(ctx, input, weight, output)

    @staticmethod
    def backward(ctx, grad_output: Tensor, grad_mean: Tensor | None, grad_rstd: Tensor | None):
        input, weight, mean, rstd = ctx.saved_tensors
        needs_input, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        grad_output = _zeros_if_none(grad_output, input)
        batch, channels = input.shape[:2]
        # Work on (N, C, L) views; per (sample, channel) quantities are (N, C, 1).
        flat = (batch, channels, math.prod(input.shape[2:]))
        input, grad = input.reshape(flat), grad_output.reshape(flat)
        sum_grad = grad.sum(2, keepdim=True)
        grad_times_input = grad * input  # reduced, then overwritten by dL/dx
        sum_grad_input = grad_times_input.sum(2, keepdim=True)
        size = channels // ctx.groups

        def per_channel(per_group: Tensor) -> Tensor:
            """(N, G) → (N, C, 1): each group's value on each of its channels."""
            return per_group.repeat_interleave(size, dim=1).unsqueeze(2)

        def group_sum(per_sample_channel: Tensor) -> Tensor:
            """(N, C, 1) → (N, C, 1): the sum over each channel's group."""
            return per_channel(per_sample_channel.reshape(batch, ctx.groups, size).sum(2))

        mean_c, rstd_c = per_channel(mean), per_channel(rstd)
        w = 1 if weight is None else weight.reshape(channels, 1)
        grad_input = grad_weight = None
        if needs_input:
            grad_input = _input_grad(
                grad,
                input,
                group_sum(w * sum_grad),
                group_sum(w * sum_grad_input),
                mean_c,
                rstd_c,
                size * flat[2],
                None if grad_mean is None else per_channel(grad_mean),
                None if grad_rstd is None else per_channel(grad_rstd),
                [rstd_c * w],
                grad_times_input,
            ).view(grad_output.shape)
        if needs_weight:
            grad_weight = (rstd_c * (sum_grad_input - mean_c * sum_grad)).sum(0).reshape(-1)
        grad_bias = sum_grad.sum(0).reshape(-1) if needs_bias else None
        return grad_input, grad_weight, grad_bias, None, None


def group_norm(
    input: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """``torch.nn.functional.group_norm`` through :class:`GroupNormFunction`."""
    if input.dim() < 2:
        raise RuntimeError(
            f"Expected at least 2 dimensions for input tensor but received {input.dim()}"
        )
    channels = input.shape[1]
    if num_groups <= 0 or channels % num_groups:
        raise RuntimeError(
            "Expected number of channels in input to be divisible by num_groups, but got input "
            f"of shape {list(input.shape)} and num_groups={num_groups}"
        )
    if input.shape[0] * channels // num_groups * math.prod(input.shape[2:]) == 1:
        raise ValueError(
            "Expected more than 1 value per channel when training, got input size "
            f"{list(input.shape)}"
        )
    for name, param in (("weight", weight), ("bias", bias)):
        if param is not None and (param.dim() != 1 or param.numel() != channels):
            raise RuntimeError(
                f"Expected {name} to be a vector of size equal to the number of channels in "
                f"input, but got {name} of shape {list(param.shape)} and input of shape "
                f"{list(input.shape)}"
            )
    output, _, _ = GroupNormFunction.apply(*upcast(input, weight, bias), num_groups, eps)
    return downcast(output, input.dtype)


def _norm_dims(v: Tensor, dim: int) -> tuple[int, ...]:
    """The dims ``_weight_norm`` reduces: all but ``dim`` (all of them for dim = −1, as torch's
    ``norm_except_dim``)."""
    if dim == -1:
        return tuple(range(v.dim()))
    return tuple(d for d in range(v.dim()) if d != dim)


class WeightNormFunction(Function):
    r"""Weight normalisation  w = g ⊙ v / ‖v‖,  ‖v‖ the 2-norm of v over every dim but ``dim``
    (over all dims for dim = −1), kept as a broadcastable n; g has n's shape.

    Saved: v and g (n is recomputed from v in backward).
    With G = dL/dw and s = Σ_{reduced dims} G ⊙ v (shaped like n):
        dL/dg = s / n
        dL/dv = (g / n) ⊙ (G − v ⊙ s / n²)
    (the second term removes G's component along v: w does not change when v is scaled).
    Built from mul/sum/div/sqrt, so the backward is itself differentiable.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(v: Tensor, g: Tensor, dim: int) -> Tensor:
        norm = v.square().sum(_norm_dims(v, dim), keepdim=True).sqrt()
        return v * (g / norm)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        v, g, dim = inputs
        ctx.dim = dim
        ctx.save_for_backward(v, g)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        v, g = ctx.saved_tensors
        dims = _norm_dims(v, ctx.dim)
        norm = v.square().sum(dims, keepdim=True).sqrt()
        s = (grad_output * v).sum(dims, keepdim=True)
        grad_v = grad_g = None
        if ctx.needs_input_grad[0]:
            grad_v = (g / norm) * (grad_output - v * (s / norm.square()))
        if ctx.needs_input_grad[1]:
            grad_g = (s / norm).sum_to_size(g.shape)
        return grad_v, grad_g, None


def _weight_norm(v: Tensor, g: Tensor, dim: int = 0) -> Tensor:
    """``torch._weight_norm`` (what ``torch.nn.utils.parametrizations.weight_norm`` calls)
    through :class:`WeightNormFunction`."""
    return WeightNormFunction.apply(v, g, dim)


__all__ = [
    "BatchNormFunction",
    "GroupNormFunction",
    "LayerNormFunction",
    "RMSNormFunction",
    "WeightNormFunction",
    "_weight_norm",
    "batch_norm",
    "group_norm",
    "layer_norm",
    "rms_norm",
]
