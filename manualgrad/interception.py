"""``manualgrad.hand_derived()``: run every torch call that has a manualgrad Function on it.

Inside ``with manualgrad.hand_derived():`` a ``torch.overrides.TorchFunctionMode`` sees every
call of a ``torch`` function, a ``torch.nn.functional`` op, a ``torch.Tensor`` method and a
Python operator on tensors (``a * b`` arrives as ``Tensor.mul``, ``2 ** a`` as
``Tensor.__rpow__``, ``a[i]`` as ``Tensor.__getitem__``), wherever the call is written: in a
helper function, through an attribute (``self.act = F.gelu``), in a lambda. A call whose op has a
manualgrad Function runs that Function instead, with the same arguments and the same result;
every other call (views, casts, in-place ops, ops manualgrad lacks) runs unchanged, and
:func:`manualgrad.coverage` reports the native backward nodes those leave in the graph.

The routing table is built by name from ``manualgrad.functional.__all__``:
``manualgrad.functional.X`` serves ``torch.nn.functional.X``, ``torch.X`` and ``torch.Tensor.X``,
plus the operator dunders and their reflected forms (``__rsub__(a, b)`` is ``sub(b, a)``) and a
few torch aliases (``torch.multiply`` is ``mul``). A new op in ``manualgrad.functional`` is
routed without any edit here. ``torch.nn.functional.X`` and ``manualgrad.functional.X`` share a
signature by contract; ``torch.X`` and ``Tensor.X`` may not (``torch.softmax(x, dim, dtype)``
has no ``_stacklevel``; ``torch.embedding(weight, indices)`` swaps the operands;
``Tensor.where(condition, other)`` is ``where(condition, self, other)``), so their argument
names are read from the aten schema (or the Python signature) once: a call whose positional
arguments line up with the Function's parameters by name goes straight through, one whose names
differ is passed by keyword, and one that binds a name the Function does not take (``out=``,
``torch.embedding``'s ``indices``) runs torch's op. ``torch.embedding_bag``, whose operands,
``mode`` and results are aten's (weight first, an int mode, four tensors), goes through a
function of its own form (:data:`_TORCH_FORMS`).

Calls made while grad mode is off, or with no tensor argument that requires grad (masks,
position ids, a padded mask: nothing to differentiate), run torch's op (no backward graph is
built, so the result is the same and the Function's overhead is saved), and so do the torch
calls made by the Functions themselves: torch pops the mode while ``__torch_function__`` runs,
so a routed call runs with the mode off and cannot recurse. A Python-level torch op that has no
Function (``F.multi_head_attention_forward``) runs whole with the mode popped, so the ops inside
it are native; the coverage report shows them.

Cost per call (``manualgrad bench models``, rows ``mode pass-through`` and ``mode routed``; the
project's 2-core CPU, one thread, fastest of 9 × 5000 calls on a 32×64 tensor): a call passed
through unchanged pays the mode's Python dispatch, about 3 µs (``x.view(-1)``: 3.5 → 6.9 µs); a
routed call pays that plus the binding, about 6 µs over calling the manualgrad function directly
(``manualgrad.functional.tanh(x)`` 21.9 µs, ``x.tanh()`` in the mode 28.3 µs, native
``x.tanh()`` 7.3 µs: the rest is the Function's own cost). Run to run these move by up to 2×
on the shared machine. ``convert`` suspends the mode inside the
twins' forward (:func:`run_forward_outside_mode`), whose torch ops need no routing.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as TF
from torch.overrides import TorchFunctionMode

import manualgrad.functional as MF
from manualgrad.functional.embedding import embedding_bag_aten

# torch.X aliases of ops manualgrad.functional names by their main name
_ALIASES = {
    "absolute": "abs",
    "clip": "clamp",
    "concat": "cat",
    "concatenate": "cat",
    "divide": "div",
    "multiply": "mul",
    "negative": "neg",
    "subtract": "sub",
    "true_divide": "div",
}
# operator dunders of torch.Tensor → (op name, reflected: operands swapped)
_OPERATORS = {
    "__add__": ("add", False),
    "__radd__": ("add", True),
    "__sub__": ("sub", False),
    "__rsub__": ("sub", True),
    "__mul__": ("mul", False),
    "__rmul__": ("mul", True),
    "__truediv__": ("div", False),
    "__rtruediv__": ("div", True),
    "__div__": ("div", False),
    "__rdiv__": ("div", True),
    "__matmul__": ("matmul", False),
    "__rmatmul__": ("matmul", True),
    "__pow__": ("pow", False),
    "__rpow__": ("pow", True),
    "__neg__": ("neg", False),
    "__abs__": ("abs", False),
    "__getitem__": ("index", False),  # a key without tensors stays a view inside index()
}
# torch.X that takes other operands and returns other results than manualgrad.functional.X:
# the function of torch's form the call goes through (its route's target stays X)
_TORCH_FORMS = {"embedding_bag": embedding_bag_aten}
# a schema's argument name → the name manualgrad's (torch.nn.functional's) signature uses
_RENAMED = {"self": "input", "train": "training"}
# schema arguments with no effect on the result on this backend (cuDNN switches)
_IGNORED = frozenset({"cudnn_enable", "cudnn_enabled"})
# aten losses take ``reduction`` as torch's enum (torch.binary_cross_entropy_with_logits(..., 1))
_REDUCTIONS = {0: "none", 1: "mean", 2: "sum"}


class _Route:
    """How one torch callable reaches its manualgrad function.

    ``direct``: how many leading positional arguments line up by name with the function's
    parameters (all of them when the two signatures are the same by contract); ``names``: the
    torch-side name of each positional argument (``None`` where overloads disagree), used to
    pass the rest by keyword; ``accepted``: the keyword names the function takes; ``call``: the
    function called, ``target`` itself or ``via``, a function of torch's form onto it.
    """

    __slots__ = ("accepted", "call", "direct", "names", "reflected", "target")

    def __init__(
        self,
        target: Callable[..., Any],
        names: Sequence[str | None] | None,
        reflected: bool = False,
        via: Callable[..., Any] | None = None,
    ) -> None:
        self.target, self.reflected = target, reflected
        self.call = target if via is None else via
        params, self.accepted, variadic = _parameters(self.call)
        if names is None or variadic:
            self.direct, self.names = 1 << 30, ()
            return
        self.names = tuple(_RENAMED.get(name, name) if name else None for name in names)
        direct = 0
        while direct < min(len(params), len(self.names)) and params[direct] == self.names[direct]:
            direct += 1
        self.direct = direct

    def bind(self, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]] | None:
        """The (positional, keyword) arguments of the manualgrad function for this call, or
        ``None`` when the call binds an argument the function does not take (torch's op runs
        then)."""
        if self.reflected:
            args = (args[1], args[0], *args[2:])
        named = {_RENAMED.get(k, k): v for k, v in kwargs.items() if k not in _IGNORED}
        head = args
        if len(args) > self.direct:
            if len(args) > len(self.names):
                return None
            head = args[: self.direct]
            for name, value in zip(self.names[self.direct :], args[self.direct :], strict=False):
                if name in _IGNORED:
                    continue
                if name is None or name in named:
                    return None
                named[name] = value
        if not named.keys() <= self.accepted:
            return None
        if isinstance(named.get("reduction"), int):
            named["reduction"] = _REDUCTIONS[named["reduction"]]
        return head, named


def _parameters(function: Callable[..., Any]) -> tuple[list[str], frozenset[str], bool]:
    """(positional parameter names, keyword-passable names, takes ``*args``) of a function."""
    signature = inspect.signature(function)
    positional, keywords, variadic = [], set(), False
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            variadic = True
        elif parameter.kind is not inspect.Parameter.VAR_KEYWORD:
            if parameter.kind is not inspect.Parameter.KEYWORD_ONLY and not variadic:
                positional.append(parameter.name)
            if parameter.kind is not inspect.Parameter.POSITIONAL_ONLY:
                keywords.add(parameter.name)
    return positional, frozenset(keywords), variadic


def _torch_names(name: str, callable_: Callable[..., Any], method: bool) -> list[str | None] | None:
    """The name of each positional argument of torch's ``name`` (from its aten schemas, or the
    Python signature of a Python-level op); ``None`` at a position where overloads disagree and
    for the whole list when nothing is known. A ``Tensor`` method takes ``self`` first wherever
    the schema has it (``Tensor.where(condition, other)`` is ``where(condition, self, other)``)."""
    schemas = [
        schema
        for schema in torch._C._jit_get_schemas_for_operator(f"aten::{name}")
        if any("Tensor" in str(argument.type) for argument in schema.arguments)
    ]
    if not schemas:
        try:
            return _parameters(callable_)[0]
        except (TypeError, ValueError):
            return None
    signatures = [
        [argument.name for argument in schema.arguments if not argument.kwarg_only]
        for schema in schemas
    ]
    if method:  # the overloads a method can bind, self first
        signatures = [names for names in signatures if "self" in names] or signatures
        signatures = [["self", *(n for n in names if n != "self")] for names in signatures]
    per_position: list[set[str]] = []
    for positional in signatures:
        for index, argument_name in enumerate(positional):
            if index == len(per_position):
                per_position.append(set())
            per_position[index].add(argument_name)
    return [next(iter(names)) if len(names) == 1 else None for names in per_position]


def _build_routes() -> dict[Callable[..., Any], _Route]:
    """torch callable → route, for every public function of ``manualgrad.functional``."""
    functions = {
        name: getattr(MF, name)
        for name in MF.__all__
        if not isinstance(getattr(MF, name), type) and callable(getattr(MF, name))
    }
    torch_names = {name: name for name in functions}
    torch_names.update({alias: name for alias, name in _ALIASES.items() if name in functions})
    routes: dict[Callable[..., Any], _Route] = {}
    for torch_name, name in torch_names.items():
        for namespace in (torch, torch.Tensor):
            member = getattr(namespace, torch_name, None)
            if callable(member) and not isinstance(member, type):
                names = _torch_names(name, member, namespace is torch.Tensor)
                routes[member] = _Route(functions[name], names)
    for name, via in _TORCH_FORMS.items():
        member = getattr(torch, name)
        routes[member] = _Route(functions[name], _torch_names(name, member, False), via=via)
    for dunder, (name, reflected) in _OPERATORS.items():
        member = getattr(torch.Tensor, dunder, None)
        if name in functions and member is not None:  # an operator's operands are positional
            routes[member] = _Route(functions[name], None, reflected)
    for name, function in functions.items():
        member = getattr(TF, name, None)
        if callable(member):
            routes[member] = _Route(function, None)
    return routes


ROUTES = _build_routes()


class HandDerived(TorchFunctionMode):
    """The mode :func:`hand_derived` returns: routes torch calls to manualgrad Functions (see the
    module docstring for what is routed and what runs unchanged)."""

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Sequence[type],
        args: tuple = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        """Run ``func(*args, **kwargs)`` through its manualgrad Function when it has one."""
        kwargs = kwargs or {}
        route = ROUTES.get(func)
        if route is not None and torch.is_grad_enabled() and _wants_grad(args, kwargs):
            bound = route.bind(args, kwargs)
            if bound is not None:
                return route.call(*bound[0], **bound[1])
        return func(*args, **kwargs)


def _wants_grad(args: tuple, kwargs: dict[str, Any]) -> bool:
    """Whether a tensor argument, or a tensor in a list or tuple argument (``torch.cat``'s),
    requires grad: without one a Function builds no backward graph, so torch's op runs."""
    for arg in (*args, *kwargs.values()):
        if isinstance(arg, torch.Tensor):
            if arg.requires_grad:
                return True
        elif isinstance(arg, (list, tuple)):
            for item in arg:
                if isinstance(item, torch.Tensor) and item.requires_grad:
                    return True
    return False


def hand_derived() -> HandDerived:
    """A context manager under which every torch call that has a manualgrad Function runs it::

        with manualgrad.hand_derived():
            loss = model(x).logsumexp(-1).mean()   # helpers, lambdas, operators included
        loss.backward()                             # hand-derived backward nodes

    Routed: ``torch.nn.functional.X``, ``torch.X``, ``torch.Tensor.X`` and the tensor operators
    for every ``X`` in ``manualgrad.functional.__all__``; everything else runs unchanged.
    """
    return HandDerived()


def run_forward_in_mode(module: torch.nn.Module) -> None:
    """Make every call of ``module`` run its ``forward`` inside :func:`hand_derived` (forward
    hooks on the module itself, so parameters, ``state_dict``, deep copies and pickling are
    untouched; the mode is left even when ``forward`` raises). A second call changes nothing."""
    _register(module, _enter_mode, _exit_mode)


def run_forward_outside_mode(module: torch.nn.Module) -> None:
    """Suspend :func:`hand_derived` while ``module``'s ``forward`` runs: for a manualgrad twin,
    whose forward calls manualgrad's Functions itself, so the torch ops inside need no routing
    and would only pay the mode's dispatch (hooks as in :func:`run_forward_in_mode`)."""
    _register(module, _suspend_mode, _resume_mode)


def stop_forward_in_mode(module: torch.nn.Module) -> None:
    """Undo :func:`run_forward_in_mode` and :func:`run_forward_outside_mode` on ``module``
    (nothing if neither was done)."""
    for hooks, mine in (
        (module._forward_pre_hooks, (_enter_mode, _suspend_mode)),
        (module._forward_hooks, (_exit_mode, _resume_mode)),
    ):
        for key in [key for key, value in hooks.items() if value in mine]:
            del hooks[key]
            module._forward_hooks_always_called.pop(key, None)


def _register(module: torch.nn.Module, pre: Callable[..., None], post: Callable[..., None]) -> None:
    if pre not in module._forward_pre_hooks.values():
        module.register_forward_pre_hook(pre)
        module.register_forward_hook(post, always_call=True)


# per thread: .modes, the modes entered by the hooks; .suspended, the modes each suspension took
_ACTIVE = threading.local()


@contextlib.contextmanager
def outside_mode() -> Iterator[None]:
    """Suspend :func:`hand_derived` within the block, as :func:`run_forward_outside_mode` does
    for a module's forward (for a call of manualgrad's own Functions: nothing inside needs
    routing)."""
    _suspend_mode(None, ())
    try:
        yield
    finally:
        _resume_mode(None, (), None)


def _enter_mode(module: torch.nn.Module, args: tuple) -> None:
    mode = HandDerived()
    mode.__enter__()
    _ACTIVE.__dict__.setdefault("modes", []).append(mode)


def _exit_mode(module: torch.nn.Module, args: tuple, output: Any) -> None:
    _ACTIVE.modes.pop().__exit__(None, None, None)


def _suspend_mode(module: torch.nn.Module, args: tuple) -> None:
    taken = []
    while isinstance(torch.overrides._get_current_function_mode(), HandDerived):
        taken.append(torch.overrides._pop_mode())
    _ACTIVE.__dict__.setdefault("suspended", []).append(taken)


def _resume_mode(module: torch.nn.Module, args: tuple, output: Any) -> None:
    for mode in reversed(_ACTIVE.suspended.pop()):
        torch.overrides._push_mode(mode)


MODE_HOOKS = frozenset((_enter_mode, _exit_mode, _suspend_mode, _resume_mode))
"""The forward hooks :func:`run_forward_in_mode` and :func:`run_forward_outside_mode` register
(a module carrying only these runs no hooks of anyone else's)."""


def in_mode(cls: type[torch.nn.Module], module: str) -> type[torch.nn.Module]:
    """A subclass of the torch.nn class ``cls``, of the same name, defined as if in ``module``,
    whose ``forward`` runs inside :func:`hand_derived` (what ``manualgrad.nn.X`` is for a torch
    layer without a twin)."""

    def forward(self: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
        with HandDerived():
            return cls.forward(self, *args, **kwargs)

    forward.__doc__ = cls.forward.__doc__
    doc = f"``torch.nn.{cls.__name__}`` whose forward runs inside ``manualgrad.hand_derived()``."
    namespace = {"forward": forward, "__doc__": doc, "__module__": module}
    with warnings.catch_warnings():  # a deprecated class warns on subclassing; its users still do
        warnings.simplefilter("ignore", FutureWarning)
        return type(cls.__name__, (cls,), namespace)


__all__ = [
    "MODE_HOOKS",
    "ROUTES",
    "HandDerived",
    "hand_derived",
    "in_mode",
    "outside_mode",
    "run_forward_in_mode",
    "run_forward_outside_mode",
    "stop_forward_in_mode",
]
