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
- for calls with keyword arguments or fewer arguments than ``forward`` takes (defaults). A
  ``forward`` with ``*args`` (``CatFunction.forward(dim, *tensors)``) has nothing to bind once
  its leading parameters are given, so such a call takes the direct path too (torch's binding
  was 30 µs of a 4-tensor ``cat``).

An eager call of a Function that has a compiled twin (:mod:`manualgrad._ext`: the same
derivation as a C++ autograd Function, ``csrc/twin_function.h``'s ``TwinFunction``, when the
extension is built) runs the twin instead, if its arguments are :func:`manualgrad._ext.eligible`
(plain CPU float32/float64 tensors, float16/bfloat16 too for the twins of
``_ext.LOW_PRECISION``, autocast off); the checks above run first, so transforms and tracing
keep the Python Function.

Tensors left wrapped by a transform that has exited ("dead wrappers", e.g. a ``torch.func.vjp``
closure called later) are unwrapped first, as torch does.

``torch.autocast``: a custom Function is invisible to autocast (its forward's ops would each be
cast on their own, and its backward would see other dtypes), so a Function declares the policy
torch's native twin has (:attr:`Function.autocast`) and ``apply`` does what
``torch.amp.custom_fwd(cast_inputs=...)`` does: inside an enabled autocast region it casts the
floating tensor arguments (float16/bfloat16/float32; float64 is left alone, as autocast does)
to the policy's dtype — the casts are ordinary autograd nodes, so each gradient comes back in
its input's dtype — and runs the Function with autocast disabled. Backward runs outside the
region, as torch recommends (``loss.backward()`` after the ``with`` block).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch._functorch.utils import unwrap_dead_wrappers

from manualgrad import _ext

_compiling = torch.compiler.is_compiling
_transforms_active = torch._C._are_functorch_transforms_active
_autocast_anywhere = torch._C._is_any_autocast_enabled
_functorch_wrapped = torch._C._functorch.is_functorch_wrapped_tensor
_legacy_batched = torch._C._functorch.is_legacy_batchedtensor


def transforms_or_tracing(*tensors: Tensor) -> bool:
    """True while torch.compile traces, or inside a torch.func transform: there a fresh
    temporary may be unbatched where an operand is batched, ``out=`` forms have no batching rule,
    and data cannot be branched on. With ``tensors`` given, the transform case counts only when
    one of them is wrapped by the transform (a captured, unbatched tensor can still be read), or
    batched by autograd's own vmap (``torch.autograd.grad(..., is_grads_batched=True)``)."""
    if _compiling():
        return True
    if not tensors:
        return _transforms_active()
    for tensor in tensors:  # noqa: SIM110 (any() over a generator: +0.3 µs a loss call)
        if _functorch_wrapped(tensor) or _legacy_batched(tensor):
            return True
    return False


class Function(torch.autograd.Function):
    """``torch.autograd.Function`` whose eager, fully positional ``apply`` skips the per-call
    argument binding (see the module docstring); subclasses write ``forward``,
    ``setup_context`` and ``backward`` exactly as for torch."""

    _arity: int = 0
    """How many positional parameters ``forward`` takes (before ``*args`` where it has one; -1,
    no call is direct, when keyword-only parameters follow ``*args``)."""
    _variadic: bool = False
    """Whether ``forward`` takes ``*args`` (``CatFunction.forward(dim, *tensors)``)."""
    _twin: Callable[..., Any] | None = None
    """The compiled twin (:mod:`manualgrad._ext`) an eager call runs when it is eligible."""
    _low_precision: bool = False
    """Whether the twin takes float16/bfloat16 too (``manualgrad._ext.LOW_PRECISION``)."""
    autocast: str | None = None
    """The op's torch.autocast policy: None (runs in its inputs' dtypes: activations, norms,
    pooling, softmax), ``"lower"`` (cast to the autocast dtype: linear, conv, prelu, as torch's
    lower-precision list) or ``"float32"`` (cast to float32: the losses, as torch's fp32 list)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Record how many positional arguments ``forward`` takes and whether it takes
        ``*args``, and cache its signature for the binding torch's ``apply`` does on the slow
        path."""
        super().__init_subclass__(**kwargs)
        signature = inspect.signature(cls.forward)
        cls.forward.__signature__ = signature
        kinds = [parameter.kind for parameter in signature.parameters.values()]
        variadic = inspect.Parameter.VAR_POSITIONAL
        cls._variadic = kinds[-1:] == [variadic]  # keyword-only parameters after *args: no
        cls._arity = len(kinds) - cls._variadic if variadic not in kinds[:-1] else -1
        cls._twin = _ext.twin(cls)
        cls._low_precision = _ext.low_precision(cls)

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        """Run the Function: forward, then ``setup_context``, recording ``backward``."""
        if cls.autocast is not None and _autocast_anywhere():
            device = _autocast_device(args)
            if device is not None:
                dtype = torch.get_autocast_dtype(device) if cls.autocast == "lower" else None
                with torch.autocast(device, enabled=False):
                    return cls.apply(*_autocast_cast(args, dtype or torch.float32), **kwargs)
        arity = len(args) if cls._variadic and len(args) >= cls._arity else cls._arity
        if kwargs or len(args) != arity or transforms_or_tracing():
            return super().apply(*args, **kwargs)
        if cls._twin is not None and _ext.eligible(args, cls._low_precision):
            return cls._twin(*args)
        return super(torch.autograd.Function, cls).apply(*unwrap_dead_wrappers(args))


_AUTOCAST_ELIGIBLE = (torch.float16, torch.bfloat16, torch.float32)


def _autocast_device(args: tuple) -> str | None:
    """The device type of the first tensor argument if autocast is enabled there, else None."""
    for arg in args:
        if isinstance(arg, Tensor):
            return arg.device.type if torch.is_autocast_enabled(arg.device.type) else None
    return None


def _autocast_cast(args: tuple, dtype: torch.dtype) -> tuple:
    """The arguments with each autocast-eligible floating tensor cast to ``dtype``."""
    return tuple(
        arg.to(dtype)
        if isinstance(arg, Tensor) and arg.dtype in _AUTOCAST_ELIGIBLE and arg.dtype != dtype
        else arg
        for arg in args
    )
