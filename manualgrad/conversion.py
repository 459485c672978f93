"""``manualgrad.convert(model)``: run an existing PyTorch model on hand-derived gradients, and
its inverse :func:`to_torch`.

Every manualgrad module subclasses its torch.nn twin of the same name and only overrides
``forward``, so an instance of the torch class becomes the manualgrad one by swapping its
``__class__``: parameters, buffers, hooks, train/eval mode and ``state_dict`` stay exactly as they
were. The submodules of a swapped module (MultiheadAttention's ``out_proj``) are left to its
twin's ``forward``. Only exact torch types are swapped: a user subclass of a torch layer (whose
``forward`` may be its own) is left alone and listed. The converted model's ``forward`` then runs
inside :func:`manualgrad.hand_derived` (forward hooks on the model), so the torch calls a custom
``forward`` makes itself (``F.gelu`` through an attribute, ``torch.tanh`` in a helper,
``x.softmax(-1)``, ``a * b``) and those of the torch layers left as they are run manualgrad's
Functions too, wherever manualgrad has one.

Modules of other libraries whose ``forward`` is a formula manualgrad has as one Function
(Hugging Face's RMSNorms and tanh GELU, :mod:`manualgrad.forms`: recognised by exact class and
by their ``forward``'s bytecode) are swapped the same way, to a subclass whose ``forward`` calls
that Function: one backward node where the library's ops would make 6–8; the report lists them
under ``swapped``.

Fewer nodes (issue 11): inside a plain ``torch.nn.Sequential``, a Linear directly followed by a
ReLU or GELU runs as one fused Function (:func:`manualgrad.functional.linear_relu` /
``linear_gelu``: one backward node instead of two, a bool mask or nothing saved instead of the
pre-activation). The Sequential's class becomes :class:`FusedSequential`, whose ``forward`` makes
that choice at every call; the layers themselves are not touched, so ``model[i]``, slices,
``state_dict`` and :func:`to_torch` behave as before, and a pair where either module has hooks
of its own (or global module hooks exist) runs unfused. ``convert(fuse=False)`` leaves the
Sequentials alone; the report's ``fused`` lists the pairs.

What is still torch's is read from the graph, not the source: with ``example_inputs``,
:func:`manualgrad.coverage` runs one forward of the converted model and the report lists every
native backward node by module and op; ``strict=True`` raises ``NotImplementedError`` with that
list.

:func:`to_torch` goes the other way (the torch twin behind the trainer's ``check/max_grad_diff``):
each manualgrad module's class is set back to its :func:`torch_base`, so the copy runs torch's
own forward and autograd backward on the same parameters. Modules without a torch.nn
counterpart (``Step``, ``HingeLoss``) map to a small reference module written with plain
differentiable torch ops, whose backward is therefore autograd's.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.nn.modules import module as torch_module

import manualgrad.functional as F
import manualgrad.nn as mnn
from manualgrad.forms import form_class
from manualgrad.graph_coverage import Coverage, coverage
from manualgrad.interception import (
    MODE_HOOKS,
    outside_mode,
    run_forward_in_mode,
    run_forward_outside_mode,
    stop_forward_in_mode,
)


@dataclass
class ConvertReport:
    """What :func:`convert` did. Names are qualified module names (``""`` is the model itself).

    ``swapped``: (name, torch class, manualgrad class) for every module converted;
    ``kept``: (name, class, reason) for modules left as they are (their forward runs inside the
    hand-derived mode, so their ops are routed wherever manualgrad has them);
    ``fused``: (Linear's name, activation's name, fused function) for every Linear + activation
    pair of a Sequential that runs as one node (see :class:`FusedSequential`);
    ``coverage``: the :class:`~manualgrad.graph_coverage.Coverage` of one forward on the example
    inputs, ``None`` when none were given.
    """

    swapped: list[tuple[str, str, str]] = field(default_factory=list)
    kept: list[tuple[str, str, str]] = field(default_factory=list)
    fused: list[tuple[str, str, str]] = field(default_factory=list)
    coverage: Coverage | None = None

    @property
    def complete(self) -> bool:
        """True when the example forward's backward graph has no native compute node (False
        when no example inputs were given: nothing was measured)."""
        return self.coverage is not None and self.coverage.complete

    def __str__(self) -> str:
        lines = [f"converted {len(self.swapped)} module(s)"]
        lines += [f"  {_label(name)}: {old} -> {new}" for name, old, new in self.swapped]
        if self.kept:
            lines.append(f"kept {len(self.kept)} module(s), run inside the hand-derived mode")
            lines += [f"  {_label(n)}: {cls} ({why})" for n, cls, why in self.kept]
        if self.fused:
            lines.append(f"fused {len(self.fused)} Linear + activation pair(s) into one node")
            lines += [f"  {linear} + {act}: {function}" for linear, act, function in self.fused]
        if self.coverage is None:
            lines.append("no example inputs: the backward graph was not read")
        else:
            lines.append(str(self.coverage))
        return "\n".join(lines)


def _label(name: str) -> str:
    return name or "(model)"


def twin_classes() -> dict[type[torch.nn.Module], type[torch.nn.Module]]:
    """torch.nn class → manualgrad.nn class, for every manualgrad module whose base class of the
    same name comes from torch.nn (so ``manualgrad.nn.LinearReLU``, a Linear, is not a twin)."""
    mapping = {}
    for name in mnn.__all__:
        cls = getattr(mnn, name)
        if not (isinstance(cls, type) and cls.__module__.startswith("manualgrad.")):
            continue
        for base in cls.__mro__[1:]:
            if base.__module__.startswith("torch.nn") and base.__name__ == cls.__name__:
                mapping[base] = cls
                break
    return mapping


def _plumbing() -> frozenset[type]:
    """torch.nn classes manualgrad.nn re-exports unchanged (containers, Flatten, Identity...)."""
    return frozenset(
        cls
        for cls in (getattr(mnn, name) for name in mnn.__all__)
        if isinstance(cls, type) and cls.__module__.startswith("torch.nn")
    )


def torch_base(cls: type) -> type | None:
    """The nearest torch.nn layer class ``cls`` derives from (not ``torch.nn.Module`` itself):
    the class a manualgrad module is swapped back to by :func:`to_torch`."""
    for base in cls.__mro__[1:]:
        if base.__module__.startswith("torch.nn") and base is not torch.nn.Module:
            return base
    return None


def _plan(model: torch.nn.Module) -> tuple[list, ConvertReport]:
    """Decide every swap and fill the report, before anything is changed."""
    twins, plumbing = twin_classes(), _plumbing()
    report, swaps = ConvertReport(), []
    owned: list[str] = []  # submodules of a twin (MultiheadAttention.out_proj) are its own
    for name, module in model.named_modules():
        cls = type(module)
        if any(name.startswith(f"{prefix}.") for prefix in owned):
            continue
        form = form_class(cls)
        if form is not None:  # a library's module whose forward is one manualgrad Function
            swaps.append((module, form))
            report.swapped.append((name, _qualname(cls), _qualname(form)))
            continue
        if cls in twins:
            swaps.append((module, twins[cls]))
            report.swapped.append((name, _qualname(cls), _qualname(twins[cls])))
            owned.append(name)
            continue
        if cls in plumbing or cls.__module__.startswith("manualgrad."):
            continue
        base = torch_base(cls)
        if cls.__module__.startswith("torch."):
            report.kept.append((name, _qualname(cls), "no manualgrad twin"))
        elif base is not None and base not in plumbing:
            why = f"subclass of {_qualname(base)}; only exact torch types are swapped"
            report.kept.append((name, _qualname(cls), why))
    return swaps, report


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _linear_relu(input: Tensor, linear: torch.nn.Module, activation: torch.nn.Module) -> Tensor:
    return F.linear_relu(input, linear.weight, linear.bias)


def _linear_gelu(input: Tensor, linear: torch.nn.Module, activation: torch.nn.Module) -> Tensor:
    return F.linear_gelu(input, linear.weight, linear.bias, activation.approximate)


# activation class (after the swap) → (fused function's name, its call on (x, linear, activation))
_FUSIONS: dict[type, tuple[str, Callable[[Tensor, Any, Any], Tensor]]] = {
    mnn.ReLU: ("linear_relu", _linear_relu),
    mnn.GELU: ("linear_gelu", _linear_gelu),
}
_GLOBAL_HOOKS = (
    "_global_forward_pre_hooks",
    "_global_forward_hooks",
    "_global_backward_pre_hooks",
    "_global_backward_hooks",
)


def _has_hooks(module: torch.nn.Module) -> bool:
    """Whether calling ``module`` would run hooks other than the hand-derived mode's own."""
    forward = (*module._forward_pre_hooks.values(), *module._forward_hooks.values())
    return (
        any(hook not in MODE_HOOKS for hook in forward)
        or bool(module._backward_pre_hooks)
        or bool(module._backward_hooks)
    )


def _fusion(linear: Any, activation: Any) -> tuple[str, Callable[..., Tensor]] | None:
    """The fused call for this adjacent pair, or None: ``linear`` exactly manualgrad's Linear,
    ``activation`` exactly a ReLU or GELU of manualgrad's, neither with hooks of its own, and no
    global module hooks (they would see both calls)."""
    if type(linear) is not mnn.Linear or type(activation) not in _FUSIONS:
        return None
    if _has_hooks(linear) or _has_hooks(activation):
        return None
    if any(getattr(torch_module, name) for name in _GLOBAL_HOOKS):
        return None
    return _FUSIONS[type(activation)]


def _steps(children: list) -> Iterator[tuple[int, tuple[str, Callable[..., Tensor]] | None]]:
    """Walk a Sequential's children: (i, None) for child i called alone, (i, fusion) for the
    fusable pair (i, i + 1), which is then skipped past."""
    i = 0
    while i < len(children):
        fusion = _fusion(children[i], children[i + 1]) if i + 1 < len(children) else None
        yield i, fusion
        i += 1 if fusion is None else 2


class FusedSequential(torch.nn.Sequential):
    """``torch.nn.Sequential`` whose ``forward`` runs each manualgrad Linear directly followed
    by a manualgrad ReLU or GELU as one fused Function (``linear_relu`` / ``linear_gelu``), the
    pair chosen at every call (neither with hooks of its own, no global module hooks). The
    children are the Sequential's as they were: indexing, slicing and ``state_dict`` are
    unchanged; :func:`to_torch` turns it back into a ``torch.nn.Sequential``."""

    def forward(self, input: Any) -> Any:
        """Each child in turn; a fusable Linear + activation pair in one call."""
        children = list(self._modules.values())
        for i, fusion in _steps(children):
            if fusion is None:
                input = children[i](input)
                continue
            with outside_mode():
                input = fusion[1](input, children[i], children[i + 1])
        return input


def _fuse(model: torch.nn.Module, report: ConvertReport) -> None:
    """Swap every plain Sequential holding a fusable pair to :class:`FusedSequential` and list
    its pairs in ``report.fused``."""
    for name, module in model.named_modules():
        if type(module) is not torch.nn.Sequential:
            continue
        prefix = f"{name}." if name else ""
        names = [f"{prefix}{child}" for child in module._modules]
        pairs = [
            (names[i], names[i + 1], fusion[0])
            for i, fusion in _steps(list(module._modules.values()))
            if fusion is not None
        ]
        if pairs:
            module.__class__ = FusedSequential
            report.fused.extend(pairs)


def convert(
    model: torch.nn.Module,
    inplace: bool = False,
    strict: bool = False,
    example_inputs: Any = None,
    fuse: bool = True,
) -> torch.nn.Module:
    """Return ``model`` (a deep copy unless ``inplace``) with every torch.nn layer that manualgrad
    implements replaced by its manualgrad twin, holding the same parameters and buffers, and its
    ``forward`` run inside :func:`manualgrad.hand_derived`; with ``fuse`` (the default) every
    plain Sequential's Linear + ReLU/GELU pairs run as one fused node (:class:`FusedSequential`,
    listed in the report's ``fused``).

    ``example_inputs`` (a tensor, a tuple of positional arguments or a dict of keyword
    arguments) runs one forward through :func:`manualgrad.coverage`; the report
    (:class:`ConvertReport`, attached as ``converted.convert_report``) then holds it.
    ``strict=True`` requires ``example_inputs`` and raises ``NotImplementedError`` listing every
    native backward node by module and op (with ``inplace=True`` the swaps are made by then).
    """
    if strict and example_inputs is None:
        raise ValueError("convert(strict=True) needs example_inputs to read the backward graph")
    converted = model if inplace else copy.deepcopy(model)
    swaps, report = _plan(converted)
    for module, twin in swaps:
        module.__class__ = twin
        run_forward_outside_mode(module)  # a twin's forward is manualgrad's own already
    if fuse:
        _fuse(converted, report)
    run_forward_in_mode(converted)
    if example_inputs is not None:
        args, kwargs = _arguments(example_inputs)
        report.coverage = coverage(converted, *args, **kwargs)
    if strict and not report.complete:
        rows = "\n".join(
            f"  {_label(row.module)}: {row.op} x{row.nodes}" for row in report.coverage.native
        )
        raise NotImplementedError(
            f"convert(strict=True): {report.coverage.native_nodes} backward node(s) still run "
            f"torch's derivative (module: op):\n{rows}"
        )
    converted.convert_report = report
    return converted


def _arguments(example_inputs: Any) -> tuple[tuple, dict[str, Any]]:
    """``example_inputs`` as (args, kwargs): a dict is keyword arguments, a tuple or list the
    positional ones, anything else the one positional argument."""
    if isinstance(example_inputs, dict):
        return (), example_inputs
    if isinstance(example_inputs, (tuple, list)):
        return tuple(example_inputs), {}
    return (example_inputs,), {}


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


REFERENCES = {
    mnn.Step: lambda m: TorchStep(m.straight_through),
    mnn.HingeLoss: lambda m: TorchHinge(m.margin, m.reduction),
}


def to_torch(module: torch.nn.Module) -> torch.nn.Module:
    """A deep copy of ``module`` in which every manualgrad module (or a user's subclass of one)
    is replaced by its torch twin: its :func:`torch_base`, or its entry in :data:`REFERENCES`;
    a library's module :func:`convert` swapped (:mod:`manualgrad.forms`) gets its class back.
    ``TypeError`` for a manualgrad module with neither."""

    def swap(m: torch.nn.Module) -> torch.nn.Module:
        if type(m) in REFERENCES:
            return REFERENCES[type(m)](m)
        if hasattr(type(m), "form_of"):  # a library's class (manualgrad.forms)
            m.__class__ = type(m).form_of
        elif any(c.__module__.startswith("manualgrad.") for c in type(m).__mro__):
            base = torch_base(type(m))
            if base is None:
                raise TypeError(f"no torch twin for {type(m).__name__}")
            m.__class__ = base
        for name, child in m.named_children():
            setattr(m, name, swap(child))
        return m

    copied = copy.deepcopy(module)
    for each in copied.modules():
        stop_forward_in_mode(each)
    return swap(copied)


__all__ = ["ConvertReport", "FusedSequential", "convert", "to_torch", "torch_base", "twin_classes"]
