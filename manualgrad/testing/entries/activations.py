"""Registry entries (see manualgrad.testing.registry): activations, step, softmax, log-softmax."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import torch
import torch.nn.functional as TF
from torch import Tensor

import manualgrad.functional as F
import manualgrad.nn as mnn
from manualgrad.testing.registry import (
    ErrorCase,
    ModuleInfo,
    OpInfo,
    Sample,
    elementwise_samples,
    tensor,
)

_INTEGER_INPUT = torch.tensor([1, -2, 3])


def _integer_input_error() -> Iterator[ErrorCase]:
    """torch's element-wise kernels are not implemented for integer tensors."""
    yield ErrorCase((_INTEGER_INPUT,), {}, NotImplementedError, "`input`")


def _not_a_tensor_error(error: type[Exception]):
    def errors() -> Iterator[ErrorCase]:
        yield ErrorCase(([0.5, -1.0],), {}, error, "`input`")

    return errors


def prelu_samples(dtype: torch.dtype) -> Iterator[Sample]:
    def make(*shape: int, noncontiguous: bool = False) -> Tensor:
        return tensor(*shape, dtype=dtype, noncontiguous=noncontiguous, exclude_zero=True)

    yield Sample("single_2d", (make(4, 3), make(1)))
    yield Sample("per_channel_2d", (make(4, 3), make(3)))
    yield Sample("per_channel_4d", (make(2, 3, 2, 2), make(3)))
    yield Sample("single_4d", (make(2, 3, 2, 2), make(1)))
    yield Sample("scalar_weight_3d", (make(2, 3, 4), make()))
    yield Sample("vector_input", (make(5), make(1)))
    yield Sample("scalar_input", (make(), make(1)))
    yield Sample("scalar_input_scalar_weight", (make(), make()))
    yield Sample("size1", (make(1, 1), make(1)))
    yield Sample("empty_batch", (make(0, 3), make(3)))
    yield Sample(
        "noncontiguous_4d",
        (make(2, 3, 2, 4, noncontiguous=True), make(3)),
        noncontiguous_grad=True,
    )
    yield Sample(
        "noncontiguous_2d",
        (make(5, 3, noncontiguous=True), make(3)),
        noncontiguous_grad=True,
    )


def prelu_errors() -> Iterator[ErrorCase]:
    yield ErrorCase((torch.randn(2, 3), torch.randn(4)), {}, RuntimeError, "`weight` has 4")
    yield ErrorCase((torch.randn(3), torch.randn(3)), {}, RuntimeError, "`weight` has 3")
    yield ErrorCase((torch.randn(()), torch.randn(3)), {}, RuntimeError, "zero-dim `input`")
    yield ErrorCase((torch.randn(2, 3), torch.randn(3, 1)), {}, RuntimeError, "`weight` must be")
    yield ErrorCase(
        (torch.randn(2, 3), torch.randn(3, dtype=torch.float64)), {}, RuntimeError, "dtype"
    )


def gelu_errors() -> Iterator[ErrorCase]:
    yield ErrorCase((torch.randn(3),), {"approximate": "fast"}, RuntimeError, "`approximate`")
    yield from _integer_input_error()


def hardtanh_errors() -> Iterator[ErrorCase]:
    yield ErrorCase((torch.randn(3),), {"min_val": 2.0, "max_val": 1.0}, ValueError, "`min_val`")


def celu_errors() -> Iterator[ErrorCase]:
    yield ErrorCase((torch.randn(3),), {"alpha": 0.0}, RuntimeError, "`alpha`")
    yield from _integer_input_error()


def glu_samples(dtype: torch.dtype) -> Iterator[Sample]:
    def make(*shape: int, noncontiguous: bool = False) -> Tensor:
        return tensor(*shape, dtype=dtype, low=-3, high=3, noncontiguous=noncontiguous)

    yield Sample("last_dim", (make(3, 4),))
    yield Sample("first_dim", (make(4, 3),), {"dim": 0})
    yield Sample("middle_dim", (make(2, 6, 3),), {"dim": 1})
    yield Sample("negative_dim", (make(2, 4, 3),), {"dim": -2})
    yield Sample("vector", (make(6),))
    yield Sample("size2", (make(2),))
    yield Sample("empty_batch", (make(0, 4),))
    yield Sample(
        "noncontiguous",
        (make(2, 3, 4, noncontiguous=True),),
        {"dim": -1},
        noncontiguous_grad=True,
    )


def glu_errors() -> Iterator[ErrorCase]:
    yield ErrorCase((torch.randn(()),), {}, RuntimeError, "`input`")
    yield ErrorCase((torch.randn(3),), {}, RuntimeError, "`dim`")
    yield ErrorCase((torch.randn(2, 4),), {"dim": 5}, IndexError, "`dim` out of range")
    yield ErrorCase((torch.tensor([1, 2]),), {}, NotImplementedError, "`input`")


def softmax_samples(dtype: torch.dtype) -> Iterator[Sample]:
    def make(*shape: int, noncontiguous: bool = False) -> Tensor:
        return tensor(*shape, dtype=dtype, low=-3, high=3, noncontiguous=noncontiguous)

    yield Sample("last_dim", (make(3, 4),), {"dim": 1})
    yield Sample("first_dim", (make(3, 4),), {"dim": 0})
    yield Sample("negative_dim", (make(2, 3, 4),), {"dim": -2})
    yield Sample("middle_dim", (make(2, 3, 4),), {"dim": 1})
    yield Sample("size1_dim", (make(3, 1),), {"dim": 1})
    yield Sample("vector", (make(5),), {"dim": 0})
    yield Sample("scalar", (make(),), {"dim": -1})
    yield Sample("empty_dim", (make(3, 0),), {"dim": 1})
    yield Sample("empty_batch", (make(0, 4),), {"dim": 1})
    yield Sample("dtype_kwarg", (make(3, 4),), {"dim": -1, "dtype": torch.float64})
    yield Sample(
        "noncontiguous_last",
        (make(2, 3, 4, noncontiguous=True),),
        {"dim": -1},
        noncontiguous_grad=True,
    )
    yield Sample(
        "noncontiguous_first",
        (make(4, 3, noncontiguous=True),),
        {"dim": 0},
        noncontiguous_grad=True,
    )


def softmax_errors() -> Iterator[ErrorCase]:
    yield ErrorCase((torch.randn(2, 3),), {"dim": 2}, IndexError, "`dim` out of range")
    yield ErrorCase((torch.randn(2, 3),), {"dim": -3}, IndexError, "`dim` out of range")
    yield ErrorCase((torch.randn(()),), {"dim": 1}, IndexError, "`dim` out of range")
    yield ErrorCase((_INTEGER_INPUT,), {"dim": 0}, NotImplementedError, "`input`")


def _step_reference(input: Tensor) -> Tensor:
    """1[z > 0] with gradient 0, by autograd (a zero term that stays 0 at ±inf and NaN)."""
    return (input > 0).to(input.dtype) + _zero_term(input)


def _zero_term(input: Tensor) -> Tensor:
    """0 with gradient 0 attached to ``input`` (0·z would be NaN at ±inf and NaN)."""
    return (input - input.detach()).nan_to_num(0.0, 0.0, 0.0) * 0


def _straight_through_reference(input: Tensor) -> Tensor:
    """1[z > 0] forward; backward that of clamp(z, −1, 1), i.e. 1[|z| ≤ 1], by autograd."""
    clamped = input.clamp(-1, 1)
    return (input > 0).to(input.dtype) + (clamped - clamped.detach()).nan_to_num(0.0, 0.0, 0.0)


def _straight_through_step(input: Tensor) -> Tensor:
    return F.step(input, straight_through=True)


# Shape-only cases: run once per op, for its first kwargs variant (no kwarg changes shapes).
_SHAPE_CASES = {"empty", "size1", "scalar"}


def _elementwise_op(name, op, reference, function, variants, **options) -> OpInfo:
    """An OpInfo sampling :func:`elementwise_samples` for each (label, kwargs, (low, high)):
    every case for the first variant, regular and non-contiguous inputs for the others."""

    def samples(dtype: torch.dtype) -> Iterator[Sample]:
        for index, (label, kwargs, (low, high)) in enumerate(variants):
            for sample in elementwise_samples(low, high, **kwargs)(dtype):
                if index == 0 or sample.name not in _SHAPE_CASES:
                    yield dataclasses.replace(sample, name=f"{label}-{sample.name}")

    return OpInfo(name, op, reference, function, samples, **options)


_DEFAULT_RANGE = (-2, 2)

OPS = [
    OpInfo("relu", F.relu, TF.relu, F.ReLUFunction, elementwise_samples(), compile=True),
    _elementwise_op(
        "leaky_relu",
        F.leaky_relu,
        TF.leaky_relu,
        F.LeakyReLUFunction,
        [
            ("default", {}, _DEFAULT_RANGE),
            ("slope0.2", {"negative_slope": 0.2}, _DEFAULT_RANGE),
            ("slope0", {"negative_slope": 0.0}, _DEFAULT_RANGE),
            ("negative_slope", {"negative_slope": -0.5}, _DEFAULT_RANGE),
        ],
        errors=_integer_input_error,
    ),
    OpInfo("prelu", F.prelu, TF.prelu, F.PReLUFunction, prelu_samples, prelu_errors, compile=True),
    _elementwise_op(
        "elu",
        F.elu,
        TF.elu,
        F.ELUFunction,
        [
            ("default", {}, _DEFAULT_RANGE),
            ("alpha0.5", {"alpha": 0.5}, _DEFAULT_RANGE),
            ("alpha0", {"alpha": 0.0}, _DEFAULT_RANGE),
            ("negative_alpha", {"alpha": -0.7}, _DEFAULT_RANGE),
        ],
        errors=_integer_input_error,
    ),
    _elementwise_op(
        "gelu",
        F.gelu,
        TF.gelu,
        F.GELUFunction,
        [("none", {}, (-4, 4)), ("tanh", {"approximate": "tanh"}, (-4, 4))],
        errors=gelu_errors,
        compile=True,
    ),
    _elementwise_op(
        "silu",
        F.silu,
        TF.silu,
        F.SiLUFunction,
        [("default", {}, (-6, 6))],
        errors=_integer_input_error,
    ),
    _elementwise_op(
        "softplus",
        F.softplus,
        TF.softplus,
        F.SoftplusFunction,
        [
            ("default_across_threshold", {}, (-30, 30)),
            ("beta2_threshold1", {"beta": 2.0, "threshold": 1.0}, _DEFAULT_RANGE),
            ("beta0.5", {"beta": 0.5}, (-6, 6)),
        ],
        errors=_integer_input_error,
    ),
    _elementwise_op(
        "sigmoid",
        F.sigmoid,
        TF.sigmoid,
        F.SigmoidFunction,
        [("default", {}, (-6, 6))],
        errors=_not_a_tensor_error(AttributeError),
    ),
    _elementwise_op(
        "tanh",
        F.tanh,
        TF.tanh,
        F.TanhFunction,
        [("default", {}, (-3, 3))],
        errors=_not_a_tensor_error(AttributeError),
    ),
    _elementwise_op(
        "hardtanh",
        F.hardtanh,
        TF.hardtanh,
        F.HardtanhFunction,
        [
            ("default", {}, _DEFAULT_RANGE),
            ("asymmetric", {"min_val": -0.5, "max_val": 1.5}, _DEFAULT_RANGE),
            ("relu6", {"min_val": 0.0, "max_val": 6.0}, (-3, 9)),
            ("collapsed", {"min_val": 0.5, "max_val": 0.5}, _DEFAULT_RANGE),
        ],
        errors=hardtanh_errors,
    ),
    _elementwise_op(
        "relu6",
        F.relu6,
        TF.relu6,
        F.HardtanhFunction,
        [("default", {}, (-3, 9))],
    ),
    _elementwise_op(
        "hardsigmoid",
        F.hardsigmoid,
        TF.hardsigmoid,
        F.HardsigmoidFunction,
        [("default", {}, (-5, 5))],
        errors=_integer_input_error,
    ),
    _elementwise_op(
        "hardswish",
        F.hardswish,
        TF.hardswish,
        F.HardswishFunction,
        [("default", {}, (-5, 5))],
        errors=_integer_input_error,
    ),
    _elementwise_op(
        "mish",
        F.mish,
        TF.mish,
        F.MishFunction,
        [("default", {}, (-6, 6))],
        errors=_integer_input_error,
    ),
    _elementwise_op(
        "logsigmoid",
        F.logsigmoid,
        TF.logsigmoid,
        F.LogSigmoidFunction,
        [("default", {}, (-6, 6))],
        errors=_integer_input_error,
    ),
    _elementwise_op(
        "selu",
        F.selu,
        TF.selu,
        F.ELUFunction,
        [("default", {}, _DEFAULT_RANGE)],
        errors=_integer_input_error,
    ),
    _elementwise_op(
        "celu",
        F.celu,
        TF.celu,
        F.ELUFunction,
        [
            ("default", {}, _DEFAULT_RANGE),
            ("alpha0.5", {"alpha": 0.5}, _DEFAULT_RANGE),
            ("alpha2", {"alpha": 2.0}, (-4, 4)),
        ],
        errors=celu_errors,
    ),
    OpInfo("glu", F.glu, TF.glu, F.GLUFunction, glu_samples, glu_errors),
    OpInfo(
        "step",
        F.step,
        _step_reference,
        F.StepFunction,
        elementwise_samples(),
        errors=_not_a_tensor_error(TypeError),
    ),
    # The estimator is not the derivative of the forward: no gradcheck (tests/test_step.py
    # checks its formula); parity, vmap and saved bytes still run against the clamp reference.
    OpInfo(
        "step_straight_through",
        _straight_through_step,
        _straight_through_reference,
        F.StraightThroughStepFunction,
        elementwise_samples(-3, 3),
        gradcheck=False,
    ),
    OpInfo(
        "softmax",
        F.softmax,
        TF.softmax,
        F.SoftmaxFunction,
        softmax_samples,
        softmax_errors,
        compile=True,
    ),
    OpInfo(
        "log_softmax",
        F.log_softmax,
        TF.log_softmax,
        F.LogSoftmaxFunction,
        softmax_samples,
        softmax_errors,
    ),
]


class Step(torch.nn.Module):
    """The reference for ``manualgrad.nn.Step``, which torch lacks: the step units of
    :func:`_step_reference` and :func:`_straight_through_reference`, under the same name and
    repr."""

    def __init__(self, straight_through: bool = False) -> None:
        super().__init__()
        self.straight_through = straight_through

    def forward(self, input: Tensor) -> Tensor:
        """1[x > 0], with the true or the straight-through gradient."""
        if self.straight_through:
            return _straight_through_reference(input)
        return _step_reference(input)

    def extra_repr(self) -> str:
        """``straight_through=...`` as in the constructor."""
        return f"straight_through={self.straight_through}"


def _activation_module(name, module, reference, kwargs=({},), shape=(4, 5)) -> ModuleInfo:
    return ModuleInfo(
        name, module, reference, list(kwargs), lambda kw, dtype: (tensor(*shape, dtype=dtype),)
    )


MODULES = [
    _activation_module("ReLU", mnn.ReLU, torch.nn.ReLU),
    _activation_module(
        "LeakyReLU",
        mnn.LeakyReLU,
        torch.nn.LeakyReLU,
        [{}, {"negative_slope": 0.2}, {"negative_slope": -0.1}],
    ),
    _activation_module(
        "PReLU",
        mnn.PReLU,
        torch.nn.PReLU,
        [{}, {"num_parameters": 5}, {"num_parameters": 5, "init": 0.1}],
        shape=(4, 5, 3),
    ),
    _activation_module("ELU", mnn.ELU, torch.nn.ELU, [{}, {"alpha": 0.5}, {"alpha": -0.3}]),
    _activation_module("GELU", mnn.GELU, torch.nn.GELU, [{}, {"approximate": "tanh"}]),
    _activation_module("SiLU", mnn.SiLU, torch.nn.SiLU),
    _activation_module(
        "Softplus",
        mnn.Softplus,
        torch.nn.Softplus,
        [{}, {"beta": 2.0, "threshold": 1.0}, {"beta": 0.5, "threshold": 10.0}],
    ),
    _activation_module("Sigmoid", mnn.Sigmoid, torch.nn.Sigmoid),
    _activation_module("Tanh", mnn.Tanh, torch.nn.Tanh),
    _activation_module(
        "Hardtanh",
        mnn.Hardtanh,
        torch.nn.Hardtanh,
        [{}, {"min_val": -0.5, "max_val": 1.5}, {"min_val": 0.0, "max_val": 6.0}],
    ),
    _activation_module("ReLU6", mnn.ReLU6, torch.nn.ReLU6),
    _activation_module("Hardsigmoid", mnn.Hardsigmoid, torch.nn.Hardsigmoid),
    _activation_module("Hardswish", mnn.Hardswish, torch.nn.Hardswish),
    _activation_module("Mish", mnn.Mish, torch.nn.Mish),
    _activation_module("LogSigmoid", mnn.LogSigmoid, torch.nn.LogSigmoid),
    _activation_module("SELU", mnn.SELU, torch.nn.SELU),
    _activation_module("CELU", mnn.CELU, torch.nn.CELU, [{}, {"alpha": 0.5}]),
    _activation_module("GLU", mnn.GLU, torch.nn.GLU, [{}, {"dim": 0}], shape=(4, 6)),
    _activation_module(
        "Softmax", mnn.Softmax, torch.nn.Softmax, [{"dim": 1}, {"dim": 0}, {"dim": -1}]
    ),
    _activation_module(
        "LogSoftmax", mnn.LogSoftmax, torch.nn.LogSoftmax, [{"dim": 1}, {"dim": 0}, {"dim": -1}]
    ),
    _activation_module("Step", mnn.Step, Step, [{}, {"straight_through": True}], shape=(5, 4)),
]
