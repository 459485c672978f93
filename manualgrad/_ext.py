"""Loader of the compiled eager path: ``manualgrad._C``, C++ twins of the hot Functions
(``manualgrad/csrc/``, listed in ``twins.h``), built by default by ``make`` (see setup.py) when a
C++ compiler is there.

:func:`twin` gives a Function class its twin (``Function.apply`` calls it when :func:`eligible`);
the Python Function stays the reference and the path everywhere else (torch.func transforms,
torch.compile, autocast, other devices and dtypes, tensor subclasses). ``MANUALGRAD_NO_EXT=1``
forces the Python path, and so does an extension that was not built (no compiler, a failed
build: ``make`` said so) or that does not load (then with one warning at import); a Function
whose twin a stale build lacks runs in Python (one warning at import: run ``make`` again).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import warnings
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import torch
from torch import Tensor
from torch.nn import Parameter


def _load() -> ModuleType | None:
    """``manualgrad._C``, or None (forced off, not built, or failing to load: one warning)."""
    if os.environ.get("MANUALGRAD_NO_EXT") == "1":
        return None
    if importlib.util.find_spec("manualgrad._C") is None:  # not built
        return None
    try:
        extension = importlib.import_module("manualgrad._C")
    except ImportError as error:
        warnings.warn(
            f"manualgrad: the compiled eager path is unavailable ({error}); the Python "
            "Functions run instead (set MANUALGRAD_NO_EXT=1 to silence this)",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return extension


EXTENSION = _load()

# Function (module.qualname) → the name of its twin in manualgrad._C.
_TWINS = {
    "manualgrad.functional.activations.ReLUFunction": "relu",
    "manualgrad.functional.activations.LeakyReLUFunction": "leaky_relu",
    "manualgrad.functional.activations.GELUFunction": "gelu",
    "manualgrad.functional.activations.SiLUFunction": "silu",
    "manualgrad.functional.activations.SigmoidFunction": "sigmoid",
    "manualgrad.functional.activations.TanhFunction": "tanh",
    "manualgrad.functional.activations.ELUFunction": "elu",
    "manualgrad.functional.activations.HardtanhFunction": "hardtanh",
    "manualgrad.functional.activations.HardsigmoidFunction": "hardsigmoid",
    "manualgrad.functional.activations.HardswishFunction": "hardswish",
    "manualgrad.functional.activations.SoftplusFunction": "softplus",
    "manualgrad.functional.activations.MishFunction": "mish",
    "manualgrad.functional.activations.LogSigmoidFunction": "logsigmoid",
    "manualgrad.functional.activations.PReLUFunction": "prelu",
    "manualgrad.functional.activations.GLUFunction": "glu",
    "manualgrad.functional.linear.LinearFunction": "linear",
    "manualgrad.functional.fused.LinearReLUFunction": "linear_relu",
    "manualgrad.functional.fused.LinearGELUFunction": "linear_gelu",
    "manualgrad.functional.dropout.DropoutFunction": "dropout",
    "manualgrad.functional.dropout.AlphaDropoutFunction": "alpha_dropout",
    "manualgrad.functional.softmax.SoftmaxFunction": "softmax",
    "manualgrad.functional.softmax.LogSoftmaxFunction": "log_softmax",
    "manualgrad.functional.losses.MSELossFunction": "mse_loss",
    "manualgrad.functional.losses.L1LossFunction": "l1_loss",
    "manualgrad.functional.losses.HuberLossFunction": "huber_loss",
    "manualgrad.functional.losses.CrossEntropyFunction": "cross_entropy",
    "manualgrad.functional.losses.NLLLossFunction": "nll_loss",
    "manualgrad.functional.losses.BCEWithLogitsFunction": "binary_cross_entropy_with_logits",
    "manualgrad.functional.losses.CrossEntropyProbsFunction": "cross_entropy_probabilities",
    "manualgrad.functional.losses.HingeLossFunction": "hinge_loss",
    "manualgrad.functional.losses.MultiMarginLossFunction": "multi_margin_loss",
    "manualgrad.functional.embedding.EmbeddingFunction": "embedding",
    "manualgrad.functional.arithmetic.AddFunction": "add",
    "manualgrad.functional.arithmetic.SubFunction": "sub",
    "manualgrad.functional.arithmetic.MulFunction": "mul",
    "manualgrad.functional.arithmetic.DivFunction": "div",
    "manualgrad.functional.arithmetic.PowFunction": "pow",
    "manualgrad.functional.arithmetic.NegFunction": "neg",
    "manualgrad.functional.arithmetic.RsqrtFunction": "rsqrt",
    "manualgrad.functional.reductions.SumFunction": "sum",
    "manualgrad.functional.reductions.MeanFunction": "mean",
    "manualgrad.functional.products.MatmulFunction": "matmul",
    "manualgrad.functional.products.AddmmFunction": "addmm",
    "manualgrad.functional.normalization.LayerNormFunction": "layer_norm",
    "manualgrad.functional.normalization.RMSNormFunction": "rms_norm",
    "manualgrad.functional.normalization.GroupNormFunction": "group_norm",
    "manualgrad.functional.normalization.BatchNormFunction": "batch_norm",
    "manualgrad.functional.transformer.AddNormFunction": "add_norm",
    "manualgrad.functional.conv.ConvolutionFunction": "convolution",
    "manualgrad.functional.conv_transpose.ConvTransposeFunction": "conv_transpose",
    "manualgrad.functional.pooling.MaxPool2dFunction": "max_pool2d",
    "manualgrad.functional.pooling.AvgPool2dFunction": "avg_pool2d",
    "manualgrad.functional.pooling.AdaptiveAvgPool2dFunction": "adaptive_avg_pool2d",
    "manualgrad.functional.pooling.AdaptiveMaxPool2dFunction": "adaptive_max_pool2d",
    "manualgrad.functional.attention.AttentionFunction": "attention",
}
TWINNED = frozenset(_TWINS)
"""The Functions that have a C++ twin (by ``module.qualname``), whether or not it is built."""
LOW_PRECISION = frozenset(
    {"relu", "leaky_relu", "silu", "sigmoid", "tanh", "hardtanh", "hardsigmoid", "hardswish", "elu"}
)
"""The twins that take float16/bfloat16 too: their forward and first-order backward are fused
passes (csrc/common.h's ``fused``/``chain``: the formula in float, rounded once, as torch's
reduced-precision kernels) or ATen kernels that compute so (clamp, sigmoid, tanh). The others'
row kernels are float32/float64 only; gelu, softplus, mish, logsigmoid, glu (and selu, celu
through elu) reach theirs in float32, upcast by the Python wrapper."""

if EXTENSION is not None and (_missing := sorted(set(_TWINS.values()) - set(dir(EXTENSION)))):
    warnings.warn(
        f"manualgrad: manualgrad._C is older than its sources (no {', '.join(_missing)}); "
        "those Functions run in Python until it is rebuilt (make)",
        RuntimeWarning,
        stacklevel=1,
    )

_enabled = True
_DTYPES = (torch.float32, torch.float64)
_LOW_DTYPES = (torch.float16, torch.bfloat16)
_INDEX_DTYPES = (torch.int64, torch.int32, torch.uint8, torch.bool)
_PLAIN = (Tensor, Parameter)
_is_wrapped = torch._C._functorch.is_functorch_wrapped_tensor


def _twin_name(function: type) -> str | None:
    """The entry-point name of ``function``'s twin (a Function class), or None."""
    return _TWINS.get(f"{function.__module__}.{function.__qualname__}")


def twin(function: type) -> Callable[..., Any] | None:
    """The compiled twin of ``function`` (a Function class), or None (none, or not built)."""
    name = _twin_name(function)
    return None if EXTENSION is None or name is None else getattr(EXTENSION, name, None)


def low_precision(function: type) -> bool:
    """Whether the twin of ``function`` (a Function class) takes float16/bfloat16 too."""
    return _twin_name(function) in LOW_PRECISION


@contextlib.contextmanager
def python_path() -> Iterator[None]:
    """Within the block every Function runs its Python implementation (the reference), as
    without the extension (the twin-equality tests and ``manualgrad bench ops`` compare both)."""
    global _enabled
    previous, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = previous


def eligible(args: tuple, low_precision: bool = False) -> bool:
    """Whether a twin may run these arguments: not inside :func:`python_path`, and
    :func:`eligible_arguments` (its compiled form when the extension is built);
    ``low_precision`` for a twin of :data:`LOW_PRECISION`."""
    return _enabled and _arguments_eligible(args, low_precision)


def eligible_arguments(args: tuple, low_precision: bool = False) -> bool:
    """Autocast off, and every tensor a plain CPU strided tensor, not wrapped by a torch.func
    transform: the floating ones float32/float64, or float16/bfloat16 too with ``low_precision``
    (one dtype for all, at least one), the others integer index tensors (class targets, embedding
    indices) or bool masks (dropout's keep-mask).

    The reference of ``manualgrad._C.eligible_arguments``, the same test in one C++ call (it
    saves about 1 µs of attribute reads per tensor argument), which :func:`eligible` runs when
    the extension has it."""
    if torch.is_autocast_enabled("cpu"):
        return False
    dtype = None
    for arg in args:
        if isinstance(arg, Tensor):
            if type(arg) not in _PLAIN or not arg.is_cpu or arg.layout != torch.strided:
                return False
            if _is_wrapped(arg):
                return False
            arg_dtype = arg.dtype
            if arg_dtype in _INDEX_DTYPES:
                continue
            if dtype is None:
                dtype = arg_dtype
            if arg_dtype != dtype:
                return False
            if dtype not in _DTYPES and not (low_precision and dtype in _LOW_DTYPES):
                return False
    return dtype is not None


if EXTENSION is not None and hasattr(EXTENSION, "eligible_arguments"):
    EXTENSION.set_eligible_dtypes(list(_DTYPES), list(_INDEX_DTYPES), list(_LOW_DTYPES))
    _arguments_eligible = EXTENSION.eligible_arguments
else:  # not built, or a build older than eligible_arguments
    _arguments_eligible = eligible_arguments
