"""``Function``: the base class of every manualgrad autograd Function.

It is ``torch.autograd.Function`` minus a per-call cost. torch's Python ``apply`` binds each
call's arguments to ``forward``'s signature (``inspect.Signature.bind``, to fill in defaults for
``setup_context``) before it hands them to the C++ ``_FunctionBase.apply``; on this machine that
is about 33 µs of a 43 µs ReLU call on a 32×64 tensor, where the native op takes 5 µs. A call that
passes every parameter of ``forward`` positionally — what the functional wrappers do — has
nothing to bind, so eager calls go straight to the C++ entry point. torch's ``apply`` still runs

- inside torch.func transforms (it routes the call through functorch's ``custom_function_call``,
  which applies the ``generate_vmap_rule`` and the transforms' own rules);
- while torch.compile traces (Dynamo does not execute ``apply``: it traces forward and backward
  itself, so this is only a safeguard);
- for calls with keyword arguments or fewer arguments than ``forward`` takes (defaults).

Tensors left wrapped by a transform that has exited ("dead wrappers", e.g. a ``torch.func.vjp``
closure called later) are unwrapped first, as torch does.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor
from torch._functorch.utils import unwrap_dead_wrappers


def transforms_or_tracing(*tensors: Tensor) -> bool:
    """True while torch.compile traces, or inside a torch.func transform: there a fresh
    temporary may be unbatched where an operand is batched, ``out=`` forms have no batching rule,
    and data cannot be branched on. With ``tensors`` given, the transform case counts only when
    one of them is wrapped by the transform (a captured, unbatched tensor can still be read)."""
    if torch.compiler.is_compiling():
        return True
    if tensors:
        return any(torch._C._functorch.is_functorch_wrapped_tensor(t) for t in tensors)
    return torch._C._are_functorch_transforms_active()


class Function(torch.autograd.Function):
    """``torch.autograd.Function`` whose eager, fully positional ``apply`` skips the per-call
    argument binding (see the module docstring); subclasses write ``forward``,
    ``setup_context`` and ``backward`` exactly as for torch."""

    _arity: int | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Record how many positional arguments ``forward`` takes (``None`` with ``*args``), and
        cache its signature for the binding torch's ``apply`` does on the slow path."""
        super().__init_subclass__(**kwargs)
        signature = inspect.signature(cls.forward)
        cls.forward.__signature__ = signature
        kinds = [parameter.kind for parameter in signature.parameters.values()]
        cls._arity = None if inspect.Parameter.VAR_POSITIONAL in kinds else len(kinds)

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        """Run the Function: forward, then ``setup_context``, recording ``backward``."""
        if kwargs or len(args) != cls._arity or transforms_or_tracing():
            return super().apply(*args, **kwargs)
        return super(torch.autograd.Function, cls).apply(*unwrap_dead_wrappers(args))
