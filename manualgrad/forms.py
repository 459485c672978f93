"""Modules of other libraries whose ``forward`` is a formula manualgrad has as one Function.

Hugging Face writes RMSNorm and the tanh GELU out op by op (``pow``, ``mean``, ``rsqrt``, three
products; ``pow``, four products and sums, ``tanh``): inside the hand-derived mode each op runs
its own Function, 6–8 backward nodes and as many Python calls per module. :func:`convert
<manualgrad.conversion.convert>` swaps such a module's class for a subclass whose ``forward``
calls the one Function of the same formula (:func:`~manualgrad.functional.rms_norm`,
:func:`~manualgrad.functional.gelu` with ``approximate="tanh"``), the way it swaps torch.nn
layers for their twins, and :func:`~manualgrad.conversion.to_torch` swaps it back.

A form is recognised by the module's exact class (a subclass may have a ``forward`` of its own)
*and* by that class's ``forward`` compiling to the same bytecode as the form's reference (the
library's own code, kept here): a library version that changes the formula is no longer
swapped, its ops are routed one by one as before. The replacement keeps the library's
arithmetic where it differs from the Function's: an RMSNorm of any dtype but float32 (the library
computes in float32 and rounds back before the weight's product) runs the library's ``forward``,
in the mode.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType

import torch
from torch import Tensor

import manualgrad.functional as F
from manualgrad.interception import hand_derived


def _rms_norm_reference(self, hidden_states):
    input_dtype = hidden_states.dtype
    hidden_states = hidden_states.to(torch.float32)
    variance = hidden_states.pow(2).mean(-1, keepdim=True)
    hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
    return self.weight * hidden_states.to(input_dtype)


def _tanh_gelu_reference(self, input):
    return (
        0.5
        * input
        * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (input + 0.044715 * torch.pow(input, 3.0))))
    )


def _rms_norm(module: torch.nn.Module, hidden_states: Tensor) -> Tensor:
    """y = w ⊙ x / √(mean(x²) + ε) as one :func:`~manualgrad.functional.rms_norm` node for a
    float32 input and weight; any other dtype runs the library's own ``forward`` (which computes
    in float32 whatever the input's dtype, and rounds back before the weight's product)."""
    weight = module.weight
    if hidden_states.dtype != torch.float32 or weight.dtype != torch.float32:
        with hand_derived():
            return _rms_norm_reference(module, hidden_states)
    shape = (hidden_states.shape[-1],)
    return F.rms_norm(hidden_states, shape, weight, module.variance_epsilon)


def _tanh_gelu(module: torch.nn.Module, input: Tensor) -> Tensor:
    """½x(1 + tanh(√(2/π)(x + 0.044715x³))) as one :func:`~manualgrad.functional.gelu` node."""
    return F.gelu(input, approximate="tanh")


@dataclass(frozen=True)
class Form:
    """Classes (qualified names) whose ``forward`` is ``reference``; ``forward`` computes it as
    ``function`` (the name the convert report gives)."""

    classes: tuple[str, ...]
    reference: Callable[..., Tensor]
    forward: Callable[[torch.nn.Module, Tensor], Tensor]
    function: str


_RMS_NORMS = ("llama.modeling_llama.LlamaRMSNorm", "mistral.modeling_mistral.MistralRMSNorm")
_RMS_NORMS += ("qwen2.modeling_qwen2.Qwen2RMSNorm", "qwen3.modeling_qwen3.Qwen3RMSNorm")
_RMS_NORMS += ("phi3.modeling_phi3.Phi3RMSNorm",)
FORMS = (
    Form(
        tuple(f"transformers.models.{name}" for name in _RMS_NORMS),
        _rms_norm_reference,
        _rms_norm,
        "rms_norm",
    ),
    Form(("transformers.activations.NewGELUActivation",), _tanh_gelu_reference, _tanh_gelu, "gelu"),
)
_BY_CLASS = {name: form for form in FORMS for name in form.classes}
_SUBCLASSES: dict[type, type] = {}


def _code(function: Callable[..., object]) -> tuple:
    code: CodeType = function.__code__
    return code.co_code, code.co_consts, code.co_names, code.co_varnames


def form_class(cls: type) -> type | None:
    """The subclass of ``cls`` that runs its form's Function, or None when ``cls`` is not a
    recognised class or its ``forward`` is not the form's formula."""
    form = _BY_CLASS.get(f"{cls.__module__}.{cls.__qualname__}")
    if form is None or _code(cls.forward) != _code(form.reference):
        return None
    if cls not in _SUBCLASSES:
        forward = form.forward

        def hand_derived_forward(self: torch.nn.Module, input: Tensor) -> Tensor:
            return forward(self, input)

        hand_derived_forward.__doc__ = f"``{cls.__name__}.forward`` as one {form.function} node."
        attributes = {"forward": hand_derived_forward, "form_of": cls, "__module__": __name__}
        _SUBCLASSES[cls] = type(f"HandDerived{cls.__name__}", (cls,), attributes)
    return _SUBCLASSES[cls]


__all__ = ["FORMS", "Form", "form_class"]
