"""Loss reductions: torch's ``reduction`` / legacy ``size_average``+``reduce`` resolution, the
reduction itself, and its gradient.

A loss ℓ = (ℓ_1, …, ℓ_n) is reduced to L ∈ {ℓ ('none'), Σ ℓ_i ('sum'), Σ ℓ_i / D ('mean')}; D is
n unless the loss says otherwise (cross-entropy divides by the summed class weights). Hence

    dL/dℓ_i = g_i ('none'),  g ('sum'),  g / D ('mean'),     g = dL/d(output),

which :func:`unreduce` builds from plain ops, so it is differentiable in g (double backward).
"""

from __future__ import annotations

import warnings

from torch import Tensor

_LEGACY_WARNING = (
    "size_average and reduce args will be deprecated, please use reduction='{}' instead."
)


def resolve(reduction: str, size_average: bool | None = None, reduce: bool | None = None) -> str:
    """torch's rules: legacy ``size_average``/``reduce`` override ``reduction`` (with torch's
    deprecation warning); 'elementwise_mean' is a deprecated alias of 'mean'; anything else
    raises ``ValueError('<reduction> is not a valid value for reduction')``."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = ("mean" if size_average else "sum") if reduce else "none"
        warnings.warn(_LEGACY_WARNING.format(reduction), stacklevel=3)
    if reduction == "elementwise_mean":
        warnings.warn(
            "reduction='elementwise_mean' is deprecated. Please use reduction='mean' instead.",
            stacklevel=3,
        )
        return "mean"
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def reduce(loss: Tensor, reduction: str, denominator: Tensor | float | None = None) -> Tensor:
    """ℓ, Σ ℓ, or Σ ℓ / D (D = ``denominator``, by default the element count: an empty mean
    is 0/0 = nan, as torch)."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.mean() if denominator is None else loss.sum() / denominator


def unreduce(
    grad: Tensor,
    reduction: str,
    shape: tuple[int, ...],
    denominator: Tensor | float | None = None,
) -> Tensor:
    """dL/dℓ from g = dL/d(reduced output) (see the module docstring), broadcastable to ℓ's
    ``shape``: ℓ-shaped for 'none', 0-d for 'sum'/'mean' (scale it before it meets a full-size
    tensor: one pass instead of two). An empty 'mean' gives g·0: no ℓ_i receives it, and g/0
    would make the double backward's dL/dg = 0·inf = nan where torch's is 0."""
    if reduction == "mean":
        count = _numel(shape) if denominator is None else denominator
        return grad * 0 if isinstance(count, int) and count == 0 else grad / count
    return grad


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for size in shape:
        count *= size
    return count
