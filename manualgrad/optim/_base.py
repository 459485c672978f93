"""Bookkeeping shared by the first-order optimizers: validation, lazy state, gradient helpers.

The classes in this package keep torch.optim's public contract (defaults, ``param_groups`` keys,
per-parameter state keys, ``step`` as a tensor) so that ``state_dict()`` moves freely between
``manualgrad.optim.X`` and ``torch.optim.X`` and ``torch.optim.lr_scheduler`` drives either.
Everything torch's ``Optimizer`` base class provides (``zero_grad``, ``add_param_group``,
``state_dict``/``load_state_dict``, step and state-dict hooks, pickling/``deepcopy``) is inherited.

The update math lives in one pure function per optimizer, working in place, parameter by
parameter (each parameter's state stays in cache through its whole update), with torch's
for-loop operations in torch's order: the results are bitwise equal, except where a rewrite saves
a pass (Adam's bias corrections, SGD's undamped momentum buffer, Adadelta's single square root;
the results then differ in the last bits). Temporaries are allocated per parameter and updated in
place, as in torch; with ``differentiable=True`` an in-place update of a temporary that autograd
saved becomes out of place (:func:`plus`), again as in torch.

Flags accepted for compatibility with torch.optim (documented once, here):

- ``foreach``: accepted and validated as torch does; manualgrad has a single implementation.
- ``fused``: accepted and validated as torch does (floating point parameters, not together with
  ``foreach`` or ``differentiable``); the written-out update runs, and ``step`` is kept as torch's
  fused kernels keep it (float32, on the parameter's device) so state dicts stay interchangeable.
  ``GradScaler`` is not given the fused fast path: it unscales the gradients itself.
- ``capturable``: accepted; ``step`` lives on the parameter's device as in torch. The update reads
  ``step`` on the host, so it is correct but not CUDA-graph capturable.
- ``differentiable``: supported. ``step()`` then runs with autograd enabled, state tensors are
  cloned before being updated and temporaries autograd saved are not overwritten, so gradients
  flow from the new parameters back to the old ones, the gradients and the state (parameters must
  be non-leaf tensors, as in torch). Hyper-parameters are taken as Python numbers; a tensor
  hyper-parameter that requires grad raises ``NotImplementedError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.optim import Optimizer

Closure = Callable[[], Any]


def require(condition: object, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``condition`` holds (torch's validation idiom)."""
    if not condition:
        raise ValueError(message)


def check_non_negative(**values: float | Tensor) -> None:
    """torch.optim's ``ValueError("Invalid <name> value: <value>")`` for the first negative
    value, checked in the order given."""
    for name, value in values.items():
        require(value >= 0.0, f"Invalid {name} value: {value}")


def check_lr(lr: float | Tensor, nan_allowed: bool = False) -> None:
    """torch.optim's learning-rate checks: a 1-element tensor or a number, not negative.

    Most of torch's optimizers test ``0.0 <= lr``, which a NaN fails; SGD tests ``lr < 0.0``,
    which a NaN passes (``nan_allowed=True`` keeps that quirk, so the same calls are accepted)."""
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    require(not lr < 0.0 if nan_allowed else lr >= 0.0, f"Invalid learning rate: {lr}")


def check_single_group(optimizer: Optimizer) -> None:
    """torch.optim.LBFGS's ``step()`` check, for the optimizers that work on one flat parameter
    vector: a group added after construction (``add_param_group``) would otherwise never move."""
    if len(optimizer.param_groups) != 1:
        raise AssertionError(
            f"Expected exactly one param_group, but got {len(optimizer.param_groups)}"
        )


def check_fused_flags(defaults: dict[str, Any]) -> None:
    """The ``RuntimeError`` torch raises for ``fused`` combined with other flags."""
    if defaults.get("fused"):
        if defaults.get("differentiable"):
            raise RuntimeError("`fused` does not support `differentiable`")
        if defaults.get("foreach"):
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")


def scalar(value: float | Tensor, name: str = "hyper-parameter") -> float:
    """A hyper-parameter as a Python float (tensor hyper-parameters are 1-element)."""
    if isinstance(value, Tensor):
        if value.requires_grad:
            raise NotImplementedError(
                f"manualgrad.optim takes {name} as a number; a tensor {name} that requires grad "
                "(a differentiable hyper-parameter) is not supported, use torch.optim instead"
            )
        return value.item()
    return value


def step_dtype(fused: bool | None = None) -> torch.dtype:
    """dtype of the ``step`` counter, as torch.optim picks it."""
    if fused:
        return torch.float32
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def new_step(param: Tensor, on_device: bool = False, fused: bool | None = None) -> Tensor:
    """A zero ``step`` counter: a 0-d tensor on the CPU, or on ``param``'s device if asked."""
    device = param.device if on_device or fused else torch.device("cpu")
    return torch.zeros((), dtype=step_dtype(fused), device=device)


def zero_buffers(param: Tensor, **wanted: bool) -> dict[str, Tensor]:
    """A zero tensor shaped and laid out like ``param`` for each key flagged True, in order."""
    return {
        key: torch.zeros_like(param, memory_format=torch.preserve_format)
        for key, on in wanted.items()
        if on
    }


def real(tensors: list[Tensor]) -> list[Tensor]:
    """Complex tensors viewed as real ``(..., 2)`` tensors; the updates then act per component."""
    return [torch.view_as_real(t) if t.is_complex() else t for t in tensors]


def increment(steps: list[Tensor]) -> list[float]:
    """``step ← step + 1`` for every counter; returns the new values as Python floats."""
    torch._foreach_add_(steps, 1.0)
    return [step.item() for step in steps]


def effective_grad(param: Tensor, grad: Tensor, weight_decay: float, maximize: bool) -> Tensor:
    """g' = ±g + λθ (minus when maximizing); ``grad`` itself when that is g'."""
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)
    return grad


def plus(tensor: Tensor, value: float, differentiable: bool) -> Tensor:
    """tensor + value: in place on a temporary, out of place when autograd may have saved it."""
    return tensor + value if differentiable else tensor.add_(value)


class Traits:
    """What the trainer, the experiments and the bench read off an optimizer class, declared on
    the class itself. Every concrete optimizer must have all three (a class without them raises
    ``TypeError`` when it is defined); an intermediate base class passes ``abstract=True``.

    Attributes:
        default_lr: the learning rate ``manualgrad train`` uses when ``--lr`` is not given (a
            sensible first try for the method).
        second_order: ``step(closure)`` differentiates the closure's loss itself (twice, for
            Hessian-vector products): the closure returns the loss *without* calling
            ``backward()``, and ``step`` needs one.
        closure_evaluations: how many times one ``step`` calls the closure: 1 (at most once,
            and ``step()`` without a closure updates from ``p.grad``), or ``None`` when it
            varies (line-search trials, inner iterations).
    """

    default_lr: ClassVar[float]
    second_order: ClassVar[bool]
    closure_evaluations: ClassVar[int | None]

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        """Refuse a concrete optimizer class that leaves a trait undeclared."""
        super().__init_subclass__(**kwargs)
        missing = [name for name in Traits.__annotations__ if not hasattr(cls, name)]
        if missing and not abstract:
            raise TypeError(
                f"optimizer {cls.__name__} must declare {', '.join(missing)} "
                "(see manualgrad.optim._base.Traits)"
            )


class FirstOrderOptimizer(Traits, Optimizer, abstract=True):
    """torch.optim.Optimizer plus what every first-order optimizer here shares.

    Subclasses declare ``default_lr`` (the other :class:`Traits` are set here: first order, the
    closure called at most once) and define ``_init_state(param, group) -> dict`` (fresh
    per-parameter state, torch's keys) and ``_update(group, params, grads)``, which fetches the
    state with :meth:`_states` and calls the pure update function.
    """

    second_order = False
    closure_evaluations = 1

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        super().__init__(params, defaults)
        check_fused_flags(defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Fill hyper-parameters missing from an older state dict; make ``step`` a tensor."""
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)
            for param in group["params"]:
                param_state = self.state.get(param, {})
                step = param_state.get("step")
                if step is not None and not torch.is_tensor(step):
                    counter = new_step(param, group.get("capturable", False), group.get("fused"))
                    param_state["step"] = counter.fill_(float(step))

    def _init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Tensor]:
        raise NotImplementedError

    def _update(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> None:
        raise NotImplementedError

    def _states(self, group: dict[str, Any], params: list[Tensor]) -> list[dict[str, Tensor]]:
        """Per-parameter state, created on first use; cloned first when ``differentiable``."""
        states = []
        differentiable = group.get("differentiable")
        for param in params:
            state = self.state[param]
            if not state:
                state.update(self._init_state(param, group))
            if differentiable:
                for key, value in state.items():
                    if key != "step" and torch.is_tensor(value):
                        state[key] = value.clone()
            states.append(state)
        return states

    @staticmethod
    def _column(states: list[dict[str, Tensor]], key: str, present: bool = True) -> list[Tensor]:
        """Every parameter's ``state[key]`` (complex ones viewed as real); empty unless
        ``present``."""
        return real([state[key] for state in states]) if present else []

    def _grads(self, group: dict[str, Any], params: list[Tensor]) -> list[Tensor]:
        """The parameters' gradients, refusing sparse ones (and non-float parameters if fused)."""
        fused = group.get("fused")
        for p in params:
            if p.grad.is_sparse:
                raise RuntimeError(
                    f"manualgrad.optim.{type(self).__name__} does not support sparse gradients; "
                    "densify them (grad.to_dense()) or use torch.optim.SparseAdam"
                )
            if fused and not torch.is_floating_point(p):
                raise RuntimeError(
                    "`fused=True` requires all the params to be floating point Tensors, "
                    f"got {p.dtype}"
                )
        return [p.grad for p in params]

    def step(self, closure: Closure | None = None) -> Any:
        """Perform a single optimization step.

        Args:
            closure (Callable, optional): A closure that reevaluates the model and returns the
                loss.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.set_grad_enabled(self.defaults["differentiable"]):
            for group in self.param_groups:
                params = [p for p in group["params"] if p.grad is not None]
                if not params:
                    continue
                grads = self._grads(group, params)
                self._update(group, params, grads)
        return loss
