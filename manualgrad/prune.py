r"""Magnitude pruning with persistent masks: ``torch.nn.utils.prune``'s names and state_dict layout.

Pruning ``module.<name>`` re-parametrises it exactly as torch does:

    <name>_orig   the trainable Parameter (the original tensor, which keeps its values)
    <name>_mask   a buffer of 0/1 of the same shape and dtype
    <name>        a plain attribute, recomputed by a forward pre-hook before every forward:
                  <name> = <name>_orig ⊙ <name>_mask

so ``state_dict`` holds ``<name>_orig`` and ``<name>_mask`` (same keys, order and values as
torch's prune) and a torch-pruned checkpoint loads unchanged into a model pruned here.

Why the masks persist through any optimizer: the product's gradient is ∂L/∂orig = ∂L/∂w ⊙ mask
(:class:`~manualgrad.functional.masking.MaskFunction`, re-exported here), so a pruned entry's
gradient is exactly 0 at every step. A momentum buffer, Adam's m and v, Adagrad's sum that start at
0 and only ever receive 0 stay 0, the update of that entry of ``<name>_orig`` is 0 (weight decay
may still shrink the stored original, which is never used), and the effective weight orig ⊙ 0 is
exactly 0.

Magnitude criterion (``l1_unstructured``, ``global_unstructured``): prune the k entries with the
smallest |w| among those still unpruned — for a single weight, by Taylor expansion the loss change
of zeroing wᵢ is ≈ −gᵢwᵢ + ½Hᵢᵢwᵢ², and at a minimum (g ≈ 0) with comparable curvatures the
smallest |wᵢ| cost least. ``amount`` is a fraction of the *remaining* entries (rounded, as
``round(amount · n)``) or an int count of them, so pruning 50 % twice leaves 25 %. Ties are broken
by ``torch.topk`` as in torch, so masks are identical to torch's for the same weights.

One difference from torch: a repeated pruning ranks the current orig ⊙ mask, whereas torch ranks
the attribute ``<name>`` as of the last forward pass (stale after an optimizer step).
Mixing this module and ``torch.nn.utils.prune`` on the same tensor is not supported.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

import torch
from torch import Tensor, nn
from torch.nn.utils import prune as _torch_prune

from manualgrad.functional.masking import MaskFunction, masked_weight

__all__ = [
    "MaskFunction",
    "PruningHook",
    "global_unstructured",
    "is_pruned",
    "l1_unstructured",
    "remove",
    "sparsity_report",
]


class PruningHook:
    """Forward pre-hook that sets ``module.<name> = <name>_orig ⊙ <name>_mask``."""

    def __init__(self, name: str) -> None:
        self._tensor_name = name

    def __call__(self, module: nn.Module, inputs: object) -> None:
        _refresh(module, self._tensor_name)

    def __repr__(self) -> str:
        return f"PruningHook({self._tensor_name!r})"


def _refresh(module: nn.Module, name: str) -> None:
    """module.<name> = <name>_orig ⊙ <name>_mask through :func:`masked_weight`."""
    orig = getattr(module, name + "_orig")
    mask = getattr(module, name + "_mask")
    setattr(module, name, masked_weight(orig, mask.to(dtype=orig.dtype)))


def _find_hook(module: nn.Module, name: str) -> int | None:
    """Handle id of the :class:`PruningHook` of ``module.<name>``, or None."""
    for key, hook in module._forward_pre_hooks.items():
        if isinstance(hook, PruningHook) and hook._tensor_name == name:
            return key
    return None


def _validate_amount(amount: float) -> None:
    """torch's checks: TypeError unless a real number; ValueError for a negative int or a float
    outside [0, 1]."""
    if not isinstance(amount, numbers.Real):
        raise TypeError(f"Invalid type for amount: {amount}. Must be int or float.")
    if (isinstance(amount, numbers.Integral) and amount < 0) or (
        not isinstance(amount, numbers.Integral) and not 0.0 <= float(amount) <= 1.0
    ):
        raise ValueError(
            f"amount={amount} should either be a float in the range [0, 1] or a "
            "non-negative integer"
        )


def _current(module: nn.Module, name: str) -> Tensor:
    """The effective tensor now: orig ⊙ mask if pruned, else the parameter (detached)."""
    if _find_hook(module, name) is None:
        return getattr(module, name).detach()
    return (getattr(module, name + "_orig") * getattr(module, name + "_mask")).detach()


def _mask_of(module: nn.Module, name: str) -> Tensor:
    """The current mask, or ones for an unpruned tensor."""
    if _find_hook(module, name) is None:
        return torch.ones_like(getattr(module, name))
    return getattr(module, name + "_mask").detach()


def _magnitude_mask(scores: Tensor, mask: Tensor, amount: float) -> Tensor:
    """New mask: ``mask`` with the ``amount`` smallest |scores| among its 1-entries set to 0.

    ``amount`` is a fraction (round(amount · remaining)) or a count of the remaining entries;
    ValueError (torch's message) if the count exceeds them.
    """
    remaining = mask == 1
    candidates = scores[remaining]
    size = candidates.numel()
    count = amount if isinstance(amount, numbers.Integral) else round(amount * size)
    if count > size:
        raise ValueError(
            f"amount={count} should be smaller than the number of parameters to prune={size}"
        )
    kept = torch.ones_like(candidates)
    if count:
        kept[torch.topk(candidates.abs(), k=count, largest=False).indices] = 0
    new_mask = mask.clone(memory_format=torch.contiguous_format)
    new_mask[remaining] = kept.to(new_mask.dtype)
    return new_mask


def _set_mask(module: nn.Module, name: str, mask: Tensor) -> None:
    """Install (first time) or replace the mask of ``module.<name>`` and refresh ``<name>``."""
    if _find_hook(module, name) is None:
        module.register_parameter(name + "_orig", getattr(module, name))
        del module._parameters[name]
        module.register_forward_pre_hook(PruningHook(name))
    module.register_buffer(name + "_mask", mask)
    _refresh(module, name)


def l1_unstructured(
    module: nn.Module, name: str, amount: float, importance_scores: Tensor | None = None
) -> nn.Module:
    """Zero the ``amount`` smallest-|w| unpruned entries of ``module.<name>`` (in place).

    ``amount``: float in [0, 1] = fraction of the remaining entries, int = their count.
    ``importance_scores`` (same shape) replaces |w| as the ranking, as in torch. Repeated calls
    compose: each prunes among the entries the previous masks kept. Returns ``module``.
    """
    _validate_amount(amount)
    scores = _current(module, name) if importance_scores is None else importance_scores
    if scores.shape != getattr(module, name).shape:
        raise AssertionError(
            f"importance_scores should have the same shape as parameter {name} of {module}, "
            f"got {scores.shape} vs {getattr(module, name).shape}"
        )
    _set_mask(module, name, _magnitude_mask(scores, _mask_of(module, name), amount))
    return module


def global_unstructured(
    parameters: Iterable[tuple[nn.Module, str]],
    amount: float,
    *,
    pruning_method: type | None = None,
    importance_scores: dict[tuple[nn.Module, str], Tensor] | None = None,
) -> None:
    """Prune the ``amount`` smallest-|w| unpruned entries across all ``(module, name)`` pairs.

    One global ranking over the concatenated tensors, so layers with many small weights lose
    more. ``amount`` as in :func:`l1_unstructured`, counted over all remaining entries.

    ``pruning_method`` exists for torch call compatibility
    (``global_unstructured(params, pruning_method=prune.L1Unstructured, amount=0.2)``): only L1
    magnitude is implemented, so it must be None or ``torch.nn.utils.prune.L1Unstructured``
    (TypeError otherwise). ``amount`` is keyword-or-second-positional, unlike torch where the
    second positional argument is the method.
    """
    if not isinstance(parameters, Iterable):
        raise TypeError("global_unstructured(): parameters is not an Iterable")
    importance_scores = importance_scores if importance_scores is not None else {}
    if not isinstance(importance_scores, dict):
        raise TypeError("global_unstructured(): importance_scores must be of type dict")
    if pruning_method not in (None, _torch_prune.L1Unstructured):
        raise TypeError(
            "global_unstructured(): only L1 magnitude pruning is implemented; pruning_method "
            f"must be None or torch.nn.utils.prune.L1Unstructured, got {pruning_method}"
        )
    _validate_amount(amount)
    parameters = list(parameters)
    scores = torch.cat(
        [importance_scores.get((m, n), _current(m, n)).reshape(-1).detach() for m, n in parameters]
    )
    masks = torch.cat([_mask_of(m, n).reshape(-1) for m, n in parameters])
    final = _magnitude_mask(scores, masks, amount)
    start = 0
    for module, name in parameters:
        like = getattr(module, name)
        _set_mask(module, name, final[start : start + like.numel()].view_as(like).clone())
        start += like.numel()


def remove(module: nn.Module, name: str) -> nn.Module:
    """Make the pruning of ``module.<name>`` permanent: ``<name>`` becomes a Parameter again
    holding orig ⊙ mask (the same Parameter object as ``<name>_orig``, so an optimizer keeps
    its state), and ``<name>_orig``, ``<name>_mask`` and the hook are deleted. The zeros are
    then ordinary values that training may move. ValueError (torch's message) if not pruned.
    """
    key = _find_hook(module, name)
    if key is None:
        raise ValueError(
            f"Parameter '{name}' of module {module} has to be pruned before pruning can be removed"
        )
    orig = module._parameters.pop(name + "_orig")
    mask = module._buffers.pop(name + "_mask")
    with torch.no_grad():
        orig.mul_(mask.to(dtype=orig.dtype))
    if hasattr(module, name):
        delattr(module, name)
    setattr(module, name, orig)
    del module._forward_pre_hooks[key]
    return module


def is_pruned(module: nn.Module) -> bool:
    """True if ``module`` or any submodule carries a pruning hook (this module's or torch's)."""
    return any(
        isinstance(hook, PruningHook | _torch_prune.BasePruningMethod)
        for submodule in module.modules()
        for hook in submodule._forward_pre_hooks.values()
    )


def sparsity_report(module: nn.Module) -> dict[str, float]:
    """Fraction of exactly-zero entries per tensor, keyed by its unpruned state_dict name
    (``"0.weight"``, ``"0.bias"``, ...; a pruned tensor counts orig ⊙ mask), plus ``"total"``
    over all of them."""
    report: dict[str, float] = {}
    zeros = count = 0
    for prefix, submodule in module.named_modules():
        for param_name, param in submodule.named_parameters(recurse=False):
            base = param_name.removesuffix("_orig")
            if base != param_name and _find_hook(submodule, base) is not None:
                name, tensor = base, _current(submodule, base)
            else:
                name, tensor = param_name, param.detach()
            tensor_zeros = int((tensor == 0).sum())
            report[f"{prefix}.{name}" if prefix else name] = tensor_zeros / max(tensor.numel(), 1)
            zeros += tensor_zeros
            count += tensor.numel()
    report["total"] = zeros / max(count, 1)
    return report
