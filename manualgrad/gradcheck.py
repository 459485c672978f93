"""``check_function``: prove a hand-derived backward right, input by input.

For every differentiable input it runs ``torch.autograd.gradcheck`` and ``gradgradcheck`` in
float64 (analytical Jacobian vs finite differences, and the same for the backward itself), then
compares the vector-Jacobian product for a random, non-unit output gradient against a reference
(a callable differentiated by torch autograd) or, without one, against central differences.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass(frozen=True)
class InputCheck:
    """The verdict on one input: errors of its gradient and the two checks."""

    index: int
    shape: tuple[int, ...]
    max_abs_error: float
    max_rel_error: float
    gradcheck: bool
    gradgradcheck: bool | None
    passed: bool


@dataclass
class CheckReport:
    """What :func:`check_function` found; ``str(report)`` is a table."""

    name: str
    forward_error: float | None
    inputs: list[InputCheck] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every input passed and nothing raised."""
        return not self.errors and all(check.passed for check in self.inputs)

    def __str__(self) -> str:
        forward = "n/a" if self.forward_error is None else f"{self.forward_error:.2e}"
        lines = [f"{self.name}: {'PASS' if self.passed else 'FAIL'} (forward error {forward})"]
        lines.append(
            f"  {'input':<6}{'shape':<18}{'max abs err':>12}{'max rel err':>12}"
            f"{'gradcheck':>11}{'gradgrad':>10}{'result':>8}"
        )
        for c in self.inputs:
            lines.append(
                f"  {c.index:<6}{list(c.shape)!s:<18}{c.max_abs_error:>12.2e}"
                f"{c.max_rel_error:>12.2e}{_mark(c.gradcheck):>11}{_mark(c.gradgradcheck):>10}"
                f"{_mark(c.passed):>8}"
            )
        lines.extend(f"  error: {message}" for message in self.errors)
        return "\n".join(lines)


class DerivationError(AssertionError):
    """Raised by ``check_function(..., raise_on_failure=True)``; its message is the report."""


def _mark(ok: bool | None) -> str:
    if ok is None:
        return "n/a"
    return "ok" if ok else "FAIL"


def check_function(
    function: Callable[..., object] | type[torch.autograd.Function],
    *inputs: object,
    reference: Callable[..., object] | None = None,
    raise_on_failure: bool = False,
    atol: float = 1e-6,
    rtol: float = 1e-5,
    seed: int = 0,
    name: str | None = None,
    constant: Collection[int] = (),
    second_order: bool = True,
    **kwargs: object,
) -> CheckReport:
    """Check ``function(*inputs, **kwargs)`` (an autograd.Function class or any callable).

    Floating-point tensor inputs are cast to float64 and checked one at a time (the others held
    constant); positions in ``constant`` (targets, class weights) are not checked.
    ``second_order=False`` skips gradgradcheck (for a Function documented as first-order only).
    ``reference`` is called the same way and differentiated by autograd. Returns a
    :class:`CheckReport`; with ``raise_on_failure=True`` a failing report raises
    :class:`DerivationError` carrying the table.
    """
    call = function.apply if _is_autograd_function(function) else function
    label = name or getattr(function, "__name__", repr(function))
    values = [_as_float64(value) for value in inputs]
    report = CheckReport(name=label, forward_error=None)
    generator = torch.Generator().manual_seed(seed)
    try:
        outputs = _tensor_outputs(call(*values, **kwargs))
        if reference is not None:
            expected = _tensor_outputs(reference(*values, **kwargs))
            report.forward_error = max(
                (_max_abs(a - b) for a, b in zip(outputs, expected, strict=True)), default=0.0
            )
        for index, value in enumerate(values):
            if isinstance(value, Tensor) and value.is_floating_point() and index not in constant:
                report.inputs.append(
                    _check_input(
                        call, reference, values, index, kwargs, generator, atol, rtol, second_order
                    )
                )
    except Exception as error:
        report.errors.append(f"{type(error).__name__}: {error}")
    forward_error = report.forward_error
    if forward_error is not None and forward_error > atol + rtol:
        report.errors.append(f"forward differs from reference by {report.forward_error:.2e}")
    if raise_on_failure and not report.passed:
        raise DerivationError(str(report))
    return report


def _check_input(
    call: Callable[..., object],
    reference: Callable[..., object] | None,
    values: Sequence[object],
    index: int,
    kwargs: dict[str, object],
    generator: torch.Generator,
    atol: float,
    rtol: float,
    second_order: bool,
) -> InputCheck:
    target = values[index]
    assert isinstance(target, Tensor)

    def only(fn: Callable[..., object]) -> Callable[[Tensor], tuple[Tensor, ...]]:
        def partial(x: Tensor) -> tuple[Tensor, ...]:
            args = list(values)
            args[index] = x
            return _tensor_outputs(fn(*args, **kwargs))

        return partial

    leaf = target.detach().requires_grad_(True)
    outputs = only(call)(leaf)
    grad_outputs = [torch.randn(out.shape, dtype=out.dtype, generator=generator) for out in outputs]
    grad_inputs = _vjp(outputs, leaf, grad_outputs)
    if reference is not None:
        expected = _vjp(only(reference)(leaf), leaf, grad_outputs)
    else:
        expected = _numerical_vjp(only(call), target.detach(), grad_outputs)
    abs_error = _max_abs(grad_inputs - expected)
    rel_error = abs_error / max(_max_abs(expected), 1e-12)
    close = torch.allclose(grad_inputs, expected, atol=atol, rtol=rtol)
    ok1 = torch.autograd.gradcheck(only(call), (leaf,), atol=atol, rtol=rtol, raise_exception=False)
    ok2 = None
    if second_order:
        ok2 = torch.autograd.gradgradcheck(
            only(call), (leaf,), atol=atol, rtol=rtol, raise_exception=False
        )
    passed = close and ok1 and ok2 is not False
    return InputCheck(index, tuple(target.shape), abs_error, rel_error, ok1, ok2, passed)


def _vjp(outputs: Sequence[Tensor], leaf: Tensor, grad_outputs: Sequence[Tensor]) -> Tensor:
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs, strict=True) if o.requires_grad]
    if not pairs:
        return torch.zeros_like(leaf)
    (grad,) = torch.autograd.grad(
        [o for o, _ in pairs], leaf, [g for _, g in pairs], allow_unused=True
    )
    return torch.zeros_like(leaf) if grad is None else grad.detach()


def _numerical_vjp(
    fn: Callable[[Tensor], tuple[Tensor, ...]],
    x: Tensor,
    grad_outputs: Sequence[Tensor],
    eps: float = 1e-6,
) -> Tensor:
    """Central differences of ⟨f(x), v⟩, one coordinate at a time."""
    flat = x.clone().reshape(-1)
    result = torch.zeros_like(flat)

    def inner(point: Tensor) -> float:
        with torch.no_grad():
            outs = fn(point.reshape(x.shape))
        return sum(float((o * g).sum()) for o, g in zip(outs, grad_outputs, strict=True))

    for i in range(flat.numel()):
        original = float(flat[i])
        flat[i] = original + eps
        upper = inner(flat)
        flat[i] = original - eps
        lower = inner(flat)
        flat[i] = original
        result[i] = (upper - lower) / (2 * eps)
    return result.reshape(x.shape)


def _is_autograd_function(function: object) -> bool:
    return isinstance(function, type) and issubclass(function, torch.autograd.Function)


def _as_float64(value: object) -> object:
    if isinstance(value, Tensor) and value.is_floating_point():
        return value.detach().to(torch.float64)
    return value


def _tensor_outputs(output: object) -> tuple[Tensor, ...]:
    if isinstance(output, Tensor):
        return (output,)
    if isinstance(output, (tuple, list)):
        return tuple(o for o in output if isinstance(o, Tensor) and o.is_floating_point())
    raise TypeError(f"function must return a tensor or a tuple of tensors, got {type(output)}")


def _max_abs(tensor: Tensor) -> float:
    return float(tensor.abs().max()) if tensor.numel() else 0.0


__all__ = ["CheckReport", "DerivationError", "InputCheck", "check_function"]
