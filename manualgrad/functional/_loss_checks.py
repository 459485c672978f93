"""Argument checks of the loss wrappers: torch's exception type for the same bad call, a message
naming the argument.

Shape/dtype checks read metadata only. The value checks (class index in range, hinge target in
{−1, +1}) read data, so they are skipped while torch.compile traces or inside a torch.func
transform (:func:`data_dependent_checks_allowed`). The hinge and multi-margin checks run in the
wrapper; cross_entropy's and nll_loss's class range is checked where the targets are read: in
the Python Function's forward, or in the C++ twin's row loop (``csrc/losses.cpp``) when the twin
runs, so an eager call reads its targets once.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from manualgrad.functional._checks import broadcast_shapes
from manualgrad.functional._function import transforms_or_tracing

# Class-index target dtypes, as torch's nll_loss (1-d/2-d input) and nll_loss2d/nd.
_CLASS_DTYPES = (torch.long, torch.uint8)
_CLASS_DTYPES_ND = (torch.long,)


def data_dependent_checks_allowed(tensor: Tensor) -> bool:
    """False under torch.compile tracing (a check would break the graph) or when ``tensor`` is
    wrapped by a torch.func transform (vmap cannot branch on data)."""
    return not transforms_or_tracing(tensor)


def scalar_name(tensor: Tensor) -> str:
    """torch's short dtype name used in its messages: Float, Double, Long, Byte, ..."""
    return tensor.type().removeprefix("torch.").removesuffix("Tensor")


def broadcast_shape(
    input: Tensor, target: Tensor, op: str, warn_stacklevel: int | None = None
) -> torch.Size:
    """The common shape of ``input`` and ``target`` (RuntimeError naming both if there is none).
    With ``warn_stacklevel``, repeat torch's UserWarning of the regression losses when the sizes
    differ, attributed to that frame (counted from this function)."""
    if warn_stacklevel is not None and target.shape != input.shape:
        warnings.warn(
            f"Using a target size ({target.size()}) that is different to the input size "
            f"({input.size()}). This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            stacklevel=warn_stacklevel,
        )
    try:
        return broadcast_shapes(input.shape, target.shape)
    except RuntimeError:
        raise RuntimeError(
            f"{op}: the size of `target` {list(target.shape)} cannot be broadcast with the size "
            f"of `input` {list(input.shape)}"
        ) from None


def check_elementwise_weight(input: Tensor, weight: Tensor | None) -> None:
    """mse/l1/huber: a per-element ``weight`` must have exactly ``input``'s size (ValueError)."""
    if weight is not None and weight.size() != input.size():
        raise ValueError(
            f"Weights and input must have the same size: `weight` {list(weight.shape)}, "
            f"`input` {list(input.shape)}"
        )


def check_constant_weight(weight: Tensor | None, name: str, op: str) -> None:
    """Class/element weights of ce, nll, multi_margin and bce are constants, as in torch."""
    if weight is not None and weight.requires_grad and torch.is_grad_enabled():
        raise RuntimeError(
            f"The function '{op}' is not differentiable with respect to argument '{name}'. "
            "This input cannot have requires_grad True."
        )


def check_class_weight(input: Tensor, weight: Tensor | None, n_classes: int, op: str) -> None:
    """A class weight is a 1-d tensor of ``n_classes`` entries with ``input``'s dtype."""
    if weight is None:
        return
    if weight.dim() != 1 or weight.numel() != n_classes:
        raise RuntimeError(
            f"{op}: `weight` tensor should be defined either for all {n_classes} classes or no "
            f"classes but got weight tensor of shape: {list(weight.shape)}"
        )
    if weight.dtype != input.dtype:
        raise RuntimeError(
            f"{op}: expected `weight` of scalar type {scalar_name(input)} but found "
            f"{scalar_name(weight)}"
        )
    check_constant_weight(weight, "weight", op)


def check_class_targets(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None,
    ignore_index: int,
    op: str,
    check_range: bool = True,
) -> Tensor:
    """Validate class-index targets for input (C,), (N, C) or (N, C, d1, ..., dK) as torch's
    nll_loss_nd does; return the target (a one-element target of a 1-d input as 0-d).
    ``check_range=False`` leaves the value check (:func:`check_class_range`) to the caller's
    Function, which reads the targets anyway."""
    shape, target_shape = input.shape, target.shape  # read once: this runs on every loss call
    dims, target_dims = len(shape), len(target_shape)
    if dims < 1:
        raise ValueError(f"{op}: Expected 1 or more dimensions of `input` (got {dims})")
    if dims != 1 and (target_dims == 0 or shape[0] != target_shape[0]):
        target_batch = target_shape[0] if target_dims else 0
        raise ValueError(
            f"{op}: Expected input batch_size ({shape[0]}) to match target batch_size "
            f"({target_batch})."
        )
    if dims <= 2:
        if target_dims > 1:
            raise RuntimeError(
                f"{op}: 0D or 1D `target` tensor expected, multi-target not supported"
            )
        allowed = _CLASS_DTYPES
    else:
        if target_shape[1:] != shape[2:]:
            expected = [shape[0], *shape[2:]]
            raise RuntimeError(f"{op}: Expected `target` size {expected}, got {list(target_shape)}")
        allowed = _CLASS_DTYPES_ND
    if target.dtype not in allowed:
        names = " or ".join("Long" if dtype == torch.long else "Byte" for dtype in allowed)
        raise RuntimeError(
            f"{op}: expected `target` dtype to be {names}, but got {scalar_name(target)}"
        )
    n_classes = shape[0 if dims == 1 else 1]
    if n_classes == 0 and dims > 2:  # torch's nll_loss2d message for no classes
        raise RuntimeError(
            f"{op}: size mismatch (got input: {list(shape)}, target: {list(target_shape)})"
        )
    check_class_weight(input, weight, n_classes, op)
    if dims == 1 and target_dims == 1 and target_shape[0] == 1:
        target = target.reshape(())
    if check_range:
        check_class_range(target, n_classes, ignore_index)
    return target


def check_class_range(target: Tensor, n_classes: int, ignore_index: int | None) -> None:
    """IndexError "Target k is out of bounds." for a class index outside [0, C) that is not
    ``ignore_index`` (skipped under tracing, see the module docstring)."""
    if not data_dependent_checks_allowed(target) or target.numel() == 0:
        return
    lowest, highest = torch.aminmax(target)  # one pass: the common, valid case ends here
    if lowest.item() >= 0 and highest.item() < n_classes:
        return
    bad = (target < 0) | (target >= n_classes)
    if ignore_index is not None:
        bad &= target != ignore_index
    if bad.any():
        raise IndexError(f"Target {target[bad][0].item()} is out of bounds.")


def check_probability_targets(
    input: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int, op: str
) -> None:
    """Class-probability targets (same shape as ``input``) are floating point, have no
    ignore_index, and a class weight of C entries."""
    if not target.is_floating_point():
        raise RuntimeError(
            f"{op}: Expected floating point type for `target` with class probabilities, "
            f"got {scalar_name(target)}"
        )
    if ignore_index >= 0:
        raise RuntimeError(f"{op}: `ignore_index` is not supported for floating point target")
    if input.dim() == 0:
        raise IndexError(f"{op}: `input` has no class dimension (got a 0-d tensor)")
    check_class_weight(input, weight, input.shape[0 if input.dim() == 1 else 1], op)


def check_label_smoothing(label_smoothing: float, op: str) -> float:
    """torch accepts ε ≤ 1 and ignores ε ≤ 0; returns the effective ε (0 when ≤ 0)."""
    if label_smoothing > 1.0:
        raise RuntimeError(
            f"{op}: `label_smoothing` must be between 0.0 and 1.0. Got: {label_smoothing}"
        )
    return float(label_smoothing) if label_smoothing > 0.0 else 0.0
