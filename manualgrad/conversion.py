"""``manualgrad.convert(model)``: run an existing PyTorch model on hand-derived gradients, and
its inverse :func:`to_torch`.

Every manualgrad module subclasses its torch.nn twin of the same name and only overrides
``forward``, so an instance of the torch class becomes the manualgrad one by swapping its
``__class__``: parameters, buffers, hooks, train/eval mode and ``state_dict`` stay exactly as they
were. The submodules of a swapped module (MultiheadAttention's ``out_proj``) are left to its
twin's ``forward``. Only exact torch types are swapped: a user subclass of a torch layer (whose
``forward`` may be its own) is left alone and reported. Calls to torch's functional ops inside a
custom module's ``forward`` (``F.relu``, ``torch.nn.functional.gelu``, ``torch.tanh``,
``x.softmax(-1)``...) cannot be swapped and are reported too.

:func:`to_torch` goes the other way (the torch twin behind the trainer's ``check/max_grad_diff``):
each manualgrad module's class is set back to its :func:`torch_base`, so the copy runs torch's
own forward and autograd backward on the same parameters. Modules without a torch.nn
counterpart (``Step``, ``HingeLoss``) map to a small reference module written with plain
differentiable torch ops, whose backward is therefore autograd's.
"""

from __future__ import annotations

import ast
import copy
import inspect
import textwrap
from dataclasses import dataclass, field

import torch
import torch.nn.functional as TF
from torch import Tensor

import manualgrad.nn as mnn

_FUNCTIONAL_NAMES = frozenset(
    name for name in dir(TF) if not name.startswith("_") and callable(getattr(TF, name))
)
# torch.relu, torch.softmax, ...: the same ops reached through the torch namespace
_FUNCTIONAL_OBJECTS = {
    id(getattr(module, name))
    for module in (TF, torch)
    for name in _FUNCTIONAL_NAMES
    if callable(getattr(module, name, None))
}
# x.relu(), x.softmax(-1), ...: tensor methods named like a functional op (Tensor.unfold is a
# view, not F.unfold)
_TENSOR_METHODS = frozenset(
    name for name in _FUNCTIONAL_NAMES if hasattr(torch.Tensor, name) and name != "unfold"
)


@dataclass
class ConvertReport:
    """What :func:`convert` did. Names are qualified module names (``""`` is the model itself).

    ``swapped``: (name, torch class, manualgrad class) for every module converted;
    ``unsupported``: (name, class, reason) for modules left running torch's autograd;
    ``functional_calls``: (name, call) for torch functional calls found in a custom ``forward``.
    """

    swapped: list[tuple[str, str, str]] = field(default_factory=list)
    unsupported: list[tuple[str, str, str]] = field(default_factory=list)
    functional_calls: list[tuple[str, str]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when nothing in the model still runs torch's own backward."""
        return not self.unsupported and not self.functional_calls

    def __str__(self) -> str:
        lines = [f"converted {len(self.swapped)} module(s)"]
        lines += [f"  {_label(name)}: {old} -> {new}" for name, old, new in self.swapped]
        if self.unsupported:
            lines.append(f"not converted {len(self.unsupported)} module(s)")
            lines += [f"  {_label(n)}: {cls} ({why})" for n, cls, why in self.unsupported]
        if self.functional_calls:
            lines.append(f"not converted {len(self.functional_calls)} functional call(s)")
            lines += [f"  {_label(name)}: {call}" for name, call in self.functional_calls]
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


def _functional_calls(cls: type) -> list[str]:
    """torch functional calls in ``cls.forward``'s source, as written (empty if none, if the
    forward is torch's or manualgrad's own, or if the source is unavailable)."""
    forward = cls.forward
    if getattr(forward, "__module__", "").startswith(("torch.", "manualgrad.")):
        return []
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(forward)))
    except (OSError, TypeError, SyntaxError):
        return []
    namespace = {**getattr(forward, "__globals__", {}), **_closure(forward)}
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and _is_functional(node.func, namespace)
    ]
    calls.sort(key=lambda node: (node.lineno, node.col_offset))
    return [ast.unparse(node.func) for node in calls]


def _closure(function: object) -> dict[str, object]:
    try:
        return dict(inspect.getclosurevars(function).nonlocals)
    except (TypeError, ValueError):
        return {}


def _is_functional(func: ast.expr, namespace: dict[str, object]) -> bool:
    """Whether a call target resolves to a torch functional op, or is a tensor method named like
    one (``x.relu()``; calls on ``self`` are submodule or method calls and are not counted)."""
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        return False
    parts.append(func.id)
    parts.reverse()
    if parts[0] not in namespace:
        return parts[0] != "self" and len(parts) == 2 and parts[1] in _TENSOR_METHODS
    target = namespace[parts[0]]
    for part in parts[1:]:
        target = getattr(target, part, None)
        if target is None:
            return False
    return id(target) in _FUNCTIONAL_OBJECTS


def _plan(model: torch.nn.Module, strict: bool) -> tuple[list, ConvertReport]:
    """Decide every swap and fill the report, before anything is changed."""
    twins, plumbing = twin_classes(), _plumbing()
    report, swaps = ConvertReport(), []
    owned: list[str] = []  # submodules of a twin (MultiheadAttention.out_proj) are its own
    for name, module in model.named_modules():
        cls = type(module)
        if any(name.startswith(f"{prefix}.") for prefix in owned):
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
            _unsupported(report, strict, name, cls, "no manualgrad twin")
        elif base is not None and base not in plumbing:
            why = f"subclass of {_qualname(base)}; only exact torch types are swapped"
            _unsupported(report, strict, name, cls, why)
        for call in _functional_calls(cls):
            if strict:
                raise NotImplementedError(
                    f"convert(strict=True): {_label(name)} ({_qualname(cls)}) calls {call} in "
                    "forward, which cannot be swapped for a manualgrad op"
                )
            report.functional_calls.append((name, call))
    return swaps, report


def _unsupported(report: ConvertReport, strict: bool, name: str, cls: type, why: str) -> None:
    if strict:
        raise NotImplementedError(
            f"convert(strict=True): {_label(name)} ({_qualname(cls)}) cannot be converted: {why}"
        )
    report.unsupported.append((name, _qualname(cls), why))


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def convert(model: torch.nn.Module, inplace: bool = False, strict: bool = False) -> torch.nn.Module:
    """Return ``model`` (a deep copy unless ``inplace``) with every torch.nn layer that manualgrad
    implements replaced by its manualgrad twin, holding the same parameters and buffers.

    The report (:class:`ConvertReport`) is attached as ``converted.convert_report``: what was
    swapped, what was not (torch layers without a twin, subclasses of torch layers) and the torch
    functional calls found in custom ``forward`` methods. ``strict=True`` raises
    ``NotImplementedError`` naming the first module that cannot be fully converted (before
    anything is swapped).
    """
    converted = model if inplace else copy.deepcopy(model)
    swaps, report = _plan(converted, strict)
    for module, twin in swaps:
        module.__class__ = twin
    converted.convert_report = report
    return converted


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
    is replaced by its torch twin: its :func:`torch_base`, or its entry in :data:`REFERENCES`.
    ``TypeError`` for a manualgrad module with neither."""

    def swap(m: torch.nn.Module) -> torch.nn.Module:
        if type(m) in REFERENCES:
            return REFERENCES[type(m)](m)
        if any(c.__module__.startswith("manualgrad.") for c in type(m).__mro__):
            base = torch_base(type(m))
            if base is None:
                raise TypeError(f"no torch twin for {type(m).__name__}")
            m.__class__ = base
        for name, child in m.named_children():
            setattr(m, name, swap(child))
        return m

    return swap(copy.deepcopy(module))


__all__ = ["ConvertReport", "convert", "to_torch", "torch_base", "twin_classes"]
