"""Fused ops whose hand-derived backward needs less memory than autograd's composition.

- ``linear_cross_entropy``: the classifier head and its loss in one Function that never holds
  the (N, V) logits: rows are processed chunk by chunk and, for ``mean``/``sum``, the gradients
  are computed in the forward pass, so backward only scales them.
- ``linear_relu`` / ``linear_gelu``: an affine map and its activation in one Function saving
  less than ``linear`` followed by the activation.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import LinearCrossEntropyOptions

from manualgrad.functional import _reduction
from manualgrad.functional._elementwise import scratch_allowed
from manualgrad.functional._function import Function, transforms_or_tracing
from manualgrad.functional._loss_checks import check_class_targets, check_label_smoothing
from manualgrad.functional._precision import downcast, upcast
from manualgrad.functional.activations import (
    check_gelu_approximate,
    gelu_derivative,
    gelu_value,
)
from manualgrad.functional.linear import LinearFunction, affine_grads, linear
from manualgrad.functional.losses import cross_entropy
from manualgrad.functional.softmax import log_softmax_values

# Default chunking: at most 8 MiB of float32 logits a chunk and at least 32 rows (every chunk's
# product reads all of W). Smaller chunks hold less but launch more kernels: on the shared
# 2-core VM, with two threads, each parallel kernel can wait a time slice for its second thread
# (head fwd + bwd, 1024 × 128 → 8192: 64-row chunks 4.6× native, 256-row 1.4×; one thread 0.5×).
_CHUNK_LOGITS = 1 << 21
_MIN_CHUNK_ROWS = 32


class LinearCrossEntropyFunction(Function):
    r"""Cross-entropy of a linear head:  z_i = W x_i + b,
    ℓ_i = lse(z_i) − (1 − ε) z_{i,t_i} − ε z̄_i.

    x: (N, H), W: (V, H), b: (V,), t: (N,) class indices; lse(z) = log Σ_j exp z_j,
    z̄ = mean_j z_j, ε the label smoothing. Rows with t_i = ignore_index have ℓ_i = 0 and no
    gradient. The loss is Σ_i ℓ_i (sum), Σ_i ℓ_i / n (mean, n = number of non-ignored rows) or
    ℓ (none).

    Per row, with softmax p_i = exp(z_i − lse(z_i)) and q_i = (1 − ε) e_{t_i} + ε/V:

        dℓ_i/dz_i = p_i − q_i
        dL/dx_i = c_i (p_i − q_i) W
        dL/dW = Σ_i c_i (p_i − q_i) x_iᵀ,   dL/db = Σ_i c_i (p_i − q_i)

    where c_i = dL/dℓ_i: g (sum), g/n (mean), g_i (none), and 0 on ignored rows. The rows are
    processed ``chunk_size`` at a time, so at most (chunk_size × V) logits exist at once.

    Two ways to the gradients, chosen by ``needs`` (see :func:`linear_cross_entropy`):

    Saved, precomputed (``needs`` a tuple; mean/sum): dL/dx, dL/dW, dL/db for g = 1, computed
    chunk by chunk in the forward pass (N·H + V·H + V numbers instead of x, W and the N·V
    log-probabilities autograd keeps); backward multiplies them by g. They are constants to
    autograd, so double backward is not supported (backward raises under ``create_graph=True``).
    Saved, recomputed (``needs`` None): x, W, b and t; backward recomputes each chunk's logits
    and applies the formulas with c_i from g — in a first-order backward with the forward's
    in-place chunk loop, under ``create_graph`` (or a transform) with plain differentiable ops,
    so double backward works.
    """

    generate_vmap_rule = True
    autocast = "float32"

    @staticmethod
    def forward(
        input: Tensor,
        weight: Tensor,
        target: Tensor,
        bias: Tensor | None,
        ignore_index: int,
        reduction: str,
        label_smoothing: float,
        chunk_size: int,
        needs: tuple[bool, bool, bool] | None,
    ):
        valid = target != ignore_index
        count = valid.sum()
        if needs is None:
            losses = torch.cat(
                [
                    _chunk_loss(_logits(x, weight, bias), t, v, label_smoothing)
                    for x, t, v in _chunks(chunk_size, input, target, valid)
                ]
            )
            return _reduction.reduce(losses, reduction, count), None, None, None
        row_scale = valid.to(input.dtype)
        if reduction == "mean":
            row_scale = row_scale / count.clamp_min(1)  # all ignored: loss 0/0 = nan, grads 0
        loss, grads = _loss_and_grads(
            input, weight, bias, target, valid, row_scale, label_smoothing, chunk_size, needs
        )
        return (loss / count if reduction == "mean" else loss), *grads

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, weight, target, bias, ignore_index, reduction, label_smoothing, chunk_size, needs = (
            inputs
        )
        ctx.reduction, ctx.label_smoothing, ctx.chunk_size = reduction, label_smoothing, chunk_size
        ctx.ignore_index = ignore_index
        ctx.recompute = needs is None
        ctx.mark_non_differentiable(*(grad for grad in output[1:] if grad is not None))
        ctx.set_materialize_grads(False)  # no zero (N, H) and (V, H) for the unused grad outputs
        if ctx.recompute:
            ctx.save_for_backward(input, weight, target, bias)
        else:
            ctx.save_for_backward(*output[1:])

    @staticmethod
    def backward(ctx, grad_output: Tensor | None, *_):
        if grad_output is None:  # the loss got no (an undefined) gradient
            return (None,) * 9
        if ctx.recompute:
            grads = _recomputed_grads(ctx, grad_output)
        else:
            if torch.is_grad_enabled():
                raise RuntimeError(
                    f"linear_cross_entropy(reduction={ctx.reduction!r}, options=...) does not "
                    "support double backward (create_graph=True): its gradients are computed in "
                    "the forward pass and saved as constants. Use options=None (gradients "
                    "recomputed in backward), as torch's reference path."
                )
            grads = tuple(None if g is None else g * grad_output for g in ctx.saved_tensors)
        grad_input, grad_weight, grad_bias = grads
        return grad_input, grad_weight, None, grad_bias, None, None, None, None, None


def _chunks(size: int, *tensors: Tensor):
    """Row chunks of equal-length tensors, zipped."""
    return zip(*(t.split(size) for t in tensors), strict=True)


def _logits(
    input: Tensor, weight: Tensor, bias: Tensor | None, out: Tensor | None = None
) -> Tensor:
    """z = x Wᵀ + b for a chunk of rows (written into ``out`` when given)."""
    if bias is None:
        return torch.mm(input, weight.t(), out=out)
    return torch.addmm(bias, input, weight.t(), out=out)


def _chunk_loss(logits: Tensor, target: Tensor, valid: Tensor, smoothing: float) -> Tensor:
    """ℓ_i = −(1 − ε) log p_{i,t_i} − ε mean_j log p_ij (= lse(z_i) − (1 − ε) z_{i,t_i} − ε z̄_i),
    0 on ignored rows; log p as torch's log_softmax (NaN where a row holds +inf, as torch)."""
    log_p = log_softmax_values(logits, 1)
    loss = -(1 - smoothing) * log_p.gather(1, target.where(valid, 0).unsqueeze(1)).squeeze(1)
    if smoothing:
        loss = loss - smoothing * log_p.mean(1)
    return loss.where(valid, 0.0)


def _chunk_logit_grad(
    logits: Tensor, target: Tensor, valid: Tensor, row_scale: Tensor, smoothing: float
) -> Tensor:
    """c_i (p_i − q_i) for a chunk (row_scale = c, zero on ignored rows)."""
    probs = logits.softmax(1)
    hits = torch.full_like(target, 1, dtype=probs.dtype).mul(smoothing - 1).unsqueeze(1)
    grad = probs.scatter_add(1, target.where(valid, 0).unsqueeze(1), hits)
    if smoothing:
        grad = grad - smoothing / logits.shape[1]
    return grad * row_scale.unsqueeze(1)


def _loss_and_grads(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    target: Tensor,
    valid: Tensor,
    row_scale: Tensor,
    smoothing: float,
    chunk_size: int,
    needs: tuple[bool, bool, bool],
) -> tuple[Tensor, tuple[Tensor | None, Tensor | None, Tensor | None]]:
    """Σ_i ℓ_i and, for the gradients in ``needs``, the sums above with c = row_scale.

    Forward-only (no autograd here), so one (chunk × V) buffer serves every chunk's logits, in
    place: z, z − max, exp, then c ⊙ (p − q); lse = max + log Σ exp(z − max).
    """
    needs_input, needs_weight, needs_bias = needs
    grad_input = torch.empty_like(input) if needs_input else None
    grad_weight = torch.zeros_like(weight) if needs_weight else None
    grad_bias = torch.zeros_like(bias) if needs_bias else None
    buffer = input.new_empty((min(chunk_size, input.shape[0]), weight.shape[0]))
    loss = input.new_zeros(())
    for i, (x, t, v, c) in enumerate(_chunks(chunk_size, input, target, valid, row_scale)):
        logits = _logits(x, weight, bias, out=buffer[: x.shape[0]])
        index = t.where(v, 0).unsqueeze(1)
        loss -= (1 - smoothing) * logits.gather(1, index).squeeze(1).where(v, 0.0).sum()
        if smoothing:
            loss -= smoothing * logits.mean(1).where(v, 0.0).sum()
        peak = logits.amax(1, keepdim=True)
        exps = logits.sub_(peak).exp_()
        total = exps.sum(1)
        loss += (peak.squeeze(1) + total.log()).where(v, 0.0).sum()
        if not any(needs):
            continue
        grad_logits = exps.mul_((c / total).unsqueeze(1))  # c ⊙ p
        grad_logits.scatter_add_(1, index, (c * (smoothing - 1)).unsqueeze(1))  # − c (1 − ε) e_t
        if smoothing:
            grad_logits.sub_((c * (smoothing / weight.shape[0])).unsqueeze(1))  # − c ε / V
        if grad_input is not None:
            start = i * chunk_size
            torch.mm(grad_logits, weight, out=grad_input[start : start + x.shape[0]])
        if grad_weight is not None:
            grad_weight.addmm_(grad_logits.t(), x)
        if grad_bias is not None:
            grad_bias += grad_logits.sum(0)
    return loss, (grad_input, grad_weight, grad_bias)


def _recomputed_grads(ctx, grad_output: Tensor):
    """The recomputing backward: the chunked formulas with c_i = dL/dℓ_i (0 on ignored rows, also
    when every row is, where 'mean' divides by n = 0). A first-order backward outside
    transforms (:func:`scratch_allowed`) runs the forward's in-place chunk loop with that c (one
    chunk × V buffer at a time); otherwise differentiable ops, so double backward works."""
    input, weight, target, bias = ctx.saved_tensors
    needs_input, needs_weight, _, needs_bias = ctx.needs_input_grad[:4]
    valid = target != ctx.ignore_index
    scale = _reduction.unreduce(grad_output, ctx.reduction, target.shape, valid.sum())
    row_scale = torch.where(valid, scale, 0)
    if scratch_allowed() and not transforms_or_tracing(grad_output):  # legacy-vmap grads
        needs = (needs_input, needs_weight, needs_bias)
        smoothing, chunk_size = ctx.label_smoothing, ctx.chunk_size
        args = (input, weight, bias, target, valid, row_scale, smoothing, chunk_size, needs)
        return _loss_and_grads(*args)[1]
    grad_inputs, grad_weight, grad_bias = [], None, None
    for x, t, v, c in _chunks(ctx.chunk_size, input, target, valid, row_scale):
        grad_logits = _chunk_logit_grad(_logits(x, weight, bias), t, v, c, ctx.label_smoothing)
        if needs_input:
            grad_inputs.append(grad_logits.matmul(weight))
        if needs_weight:
            term = grad_logits.t().matmul(x)
            grad_weight = term if grad_weight is None else grad_weight + term
        if needs_bias:
            term = grad_logits.sum(0)
            grad_bias = term if grad_bias is None else grad_bias + term
    if needs_weight and grad_weight is None:
        grad_weight = torch.zeros_like(weight)
    if needs_bias and grad_bias is None:
        grad_bias = torch.zeros_like(bias)
    return torch.cat(grad_inputs) if needs_input else None, grad_weight, grad_bias


def _check_cross_entropy(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    target: Tensor,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
) -> tuple[str, float]:
    """The checks of the composed ``cross_entropy(linear(input, weight), target, ...)`` (those
    of :mod:`~manualgrad.functional._loss_checks`, on the logits' metadata only) for the fused
    case (input (N, H), weight (V, H)); returns the resolved reduction and the effective label
    smoothing."""
    reduction = _reduction.resolve(reduction)
    if weight.shape[1] != input.shape[1] or (bias is not None and bias.shape != weight.shape[:1]):
        bias_shape = None if bias is None else list(bias.shape)
        raise RuntimeError(
            f"linear_cross_entropy: `input` {list(input.shape)}, `linear_weight` "
            f"{list(weight.shape)} and `linear_bias` {bias_shape} do not make a linear map"
        )
    smoothing = check_label_smoothing(label_smoothing, "linear_cross_entropy")
    logits = input.new_empty((input.shape[0], weight.shape[0]), device="meta")
    check_class_targets(logits, target, None, ignore_index, "linear_cross_entropy")
    return reduction, smoothing


def default_chunk_size(rows: int, vocab: int) -> int:
    """Rows per chunk: at most 2^21 logits (8 MiB in float32: the head's working set stays small
    beside the model's activations), at least 32 rows so each chunk's matmul stays efficient
    (it reads all of W), and at least four chunks, so the full (N, V) logits never exist."""
    return max(1, min(max(_CHUNK_LOGITS // max(vocab, 1), _MIN_CHUNK_ROWS), math.ceil(rows / 4)))


def _fused_case(
    input: Tensor, linear_weight: Tensor, target: Tensor, linear_bias: Tensor | None
) -> bool:
    """The calls :class:`LinearCrossEntropyFunction` covers: (N, H) rows, a (V, H) head, a (V,)
    bias or none, class-index targets."""
    return (
        input.dim() == 2
        and linear_weight.dim() == 2
        and (linear_bias is None or linear_bias.dim() == 1)
        and not target.is_floating_point()
    )


def linear_cross_entropy(
    input: Tensor,
    linear_weight: Tensor,
    target: Tensor,
    *,
    linear_bias: Tensor | None = None,
    weight: Tensor | None = None,
    reduction: str = "mean",
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    options: LinearCrossEntropyOptions | None = None,
) -> Tensor:
    """``torch.nn.functional.linear_cross_entropy`` (torch 2.13's signature):
    ``cross_entropy(linear(input, linear_weight, linear_bias), target, weight=weight, ...)``
    without the (N, V) logits.

    input: (N, H), linear_weight: (V, H), linear_bias: (V,) or None, target: (N,) int64 (or
    uint8) class indices, ``ignore_index=None`` meaning −100 — this case runs as one
    :class:`LinearCrossEntropyFunction`, chunked (``options.batch_chunk_size`` rows at a time,
    default :func:`default_chunk_size`). ``options=None`` recomputes each chunk's logits in
    backward (double backward works, as on torch's reference path); with ``options`` and
    ``mean``/``sum`` the gradients are computed during the forward pass (when grad mode is on
    and an argument requires one) and double backward is unsupported, as on torch's chunked path.
    ``options``' other fields (accumulation policy, chunking method) are torch's tuning knobs
    and are not used. Everything else torch accepts — class ``weight``, probability targets, an
    unbatched input, K-dimensional heads (V, d_1, …, d_K, H) — is computed as that composition
    of manualgrad's :func:`linear` and :func:`cross_entropy`. float16/bfloat16 operands are
    computed in float32 and the loss cast back.
    """
    ignore_index = -100 if ignore_index is None else ignore_index
    if weight is not None or not _fused_case(input, linear_weight, target, linear_bias):
        classes = linear_weight.shape[:-1]
        flat_bias = None if linear_bias is None else linear_bias.reshape(-1)
        logits = linear(input, linear_weight.reshape(-1, linear_weight.shape[-1]), flat_bias)
        logits = logits.unflatten(-1, classes)  # (N, V, d_1, …, d_K), or (V, …) unbatched
        return cross_entropy(
            logits,
            target,
            weight,
            ignore_index=ignore_index,
            reduction=reduction,
            label_smoothing=label_smoothing,
        )
    reduction, label_smoothing = _check_cross_entropy(
        input, linear_weight, linear_bias, target, ignore_index, reduction, label_smoothing
    )
    chunk_size = None if options is None else options.batch_chunk_size
    if chunk_size is None:  # torch's LinearCrossEntropyOptions checks a given one is positive
        chunk_size = default_chunk_size(input.shape[0], linear_weight.shape[0])
    dtype = torch.promote_types(input.dtype, linear_weight.dtype)
    input, linear_weight, linear_bias = upcast(input, linear_weight, linear_bias)
    needs = None
    if options is not None and reduction != "none":
        grad_on = torch.is_grad_enabled()
        needs = tuple(
            grad_on and t is not None and t.requires_grad
            for t in (input, linear_weight, linear_bias)
        )
    outputs = LinearCrossEntropyFunction.apply(
        input,
        linear_weight,
        target.long(),
        linear_bias,
        ignore_index,
        reduction,
        label_smoothing,
        chunk_size,
        needs,
    )
    return downcast(outputs[0], dtype)


class LinearReLUFunction(Function):
    r"""y = max(z, 0),  z = x Wᵀ + b  (x: (..., in), W: (out, in), b: (out,)).

    With m = 1 − 1[y ≤ 0] (bool; subgradient 0 at z = 0, and 1 at z = NaN, as torch's relu)
    and G = dL/dy:

        dL/dz = G ⊙ m,   dL/dx = (G ⊙ m) W,   dL/dW = (G ⊙ m)ᵀ X,   dL/db = Σ_rows G ⊙ m

    Saved: x (if W needs a gradient), W (if x needs one) and the bool mask m — 1 byte per output
    element where linear + relu keeps the float relu output (4–8 bytes). In a chain whose next
    layer keeps y anyway that output would have been free; the mask is the smaller choice in
    isolation. All gradients are linear in G: double backward applies the same formulas.
    """

    generate_vmap_rule = True
    autocast = "lower"

    @staticmethod
    def forward(input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return LinearFunction.forward(input, weight, bias).clamp_min(0)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, weight, _ = inputs
        needs_input, needs_weight, _ = ctx.needs_input_grad
        ctx.save_for_backward(
            input if needs_weight else None, weight if needs_input else None, ~(output <= 0)
        )

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        input, weight, mask = ctx.saved_tensors
        return affine_grads(ctx.needs_input_grad, grad_output * mask, input, weight)


class LinearGELUFunction(Function):
    r"""y = GELU(z),  z = x Wᵀ + b.

    GELU and GELU' are :class:`~manualgrad.functional.activations.GELUFunction`'s (the same
    helpers, ``gelu_value`` and ``gelu_derivative``); the affine part is
    :class:`~manualgrad.functional.linear.LinearFunction`'s (``affine_grads``):

        dL/dz = G ⊙ GELU'(z),  dL/dx = dL/dz W,  dL/dW = (dL/dz)ᵀ X,  dL/db = Σ_rows dL/dz

    Saved: x, W and b only — z is recomputed in backward (one extra matmul) instead of being kept
    like linear + gelu keeps it (N·out numbers). The formulas are plain differentiable ops of x,
    W, b and G, so double backward works. float16/bfloat16 operands are computed in float32 and
    the result cast back (:func:`linear_gelu`), as gelu's kernel computes in float32.
    """

    generate_vmap_rule = True
    autocast = "lower"

    @staticmethod
    def forward(input: Tensor, weight: Tensor, bias: Tensor | None, approximate: str) -> Tensor:
        return gelu_value(LinearFunction.forward(input, weight, bias), approximate)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        input, weight, bias, approximate = inputs
        ctx.approximate = approximate
        ctx.save_for_backward(input, weight, bias)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        input, weight, bias = ctx.saved_tensors
        pre = LinearFunction.forward(input, weight, bias)
        grad_pre = grad_output * gelu_derivative(pre, ctx.approximate)
        return (*affine_grads(ctx.needs_input_grad[:3], grad_pre, input, weight), None)


def _as_matrix_weight(weight: Tensor):
    """A 1-d weight (in,) acts as (1, in) with the output's last dim squeezed, as in linear."""
    return (weight.unsqueeze(0), True) if weight.dim() == 1 else (weight, False)


def linear_relu(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``relu(linear(input, weight, bias))`` as one :class:`LinearReLUFunction`."""
    weight, squeeze = _as_matrix_weight(weight)
    output = LinearReLUFunction.apply(input, weight, bias)
    return output.squeeze(-1) if squeeze else output


def linear_gelu(
    input: Tensor, weight: Tensor, bias: Tensor | None = None, approximate: str = "none"
) -> Tensor:
    """``gelu(linear(input, weight, bias), approximate)`` as one :class:`LinearGELUFunction`."""
    check_gelu_approximate(approximate, "linear_gelu")
    weight, squeeze = _as_matrix_weight(weight)
    output = LinearGELUFunction.apply(*upcast(input, weight, bias), approximate)
    output = downcast(output, torch.promote_types(input.dtype, weight.dtype))
    return output.squeeze(-1) if squeeze else output


__all__ = [
    "LinearCrossEntropyFunction",
    "LinearGELUFunction",
    "LinearReLUFunction",
    "linear_cross_entropy",
    "linear_gelu",
    "linear_relu",
]
