"""Registry entries (see manualgrad.testing.registry): fused linear + activation and
linear + cross-entropy, each against torch's unfused composition."""

import torch
import torch.nn.functional as TF

import manualgrad.functional as F
import manualgrad.nn as mnn
from manualgrad.testing.registry import ErrorCase, ModuleInfo, OpInfo, Sample, tensor


def _linear_args(dtype, rows=(4,), features=3, outputs=5, bias=True, noncontiguous=False):
    return (
        tensor(*rows, features, dtype=dtype, noncontiguous=noncontiguous, exclude_zero=True),
        tensor(outputs, features, dtype=dtype, noncontiguous=noncontiguous),
        tensor(outputs, dtype=dtype) if bias else None,
    )


def linear_activation_samples(dtype):
    yield Sample("regular", _linear_args(dtype))
    yield Sample("no_bias", _linear_args(dtype, bias=False))
    yield Sample("leading_dims", _linear_args(dtype, rows=(2, 3), outputs=2))
    yield Sample("vector_input", _linear_args(dtype, rows=()))
    yield Sample("empty_batch", _linear_args(dtype, rows=(0,), bias=False))
    yield Sample("size1", _linear_args(dtype, rows=(1,), features=1, outputs=1))
    yield Sample(
        "noncontiguous",
        _linear_args(dtype, rows=(2, 4), noncontiguous=True),
        noncontiguous_grad=True,
    )


def linear_relu_reference(input, weight, bias=None):
    return TF.relu(TF.linear(input, weight, bias))


def linear_gelu_reference(input, weight, bias=None, approximate="none"):
    return TF.gelu(TF.linear(input, weight, bias), approximate=approximate)


def linear_gelu_samples(dtype):
    yield from linear_activation_samples(dtype)
    yield Sample("tanh", _linear_args(dtype), {"approximate": "tanh"})


def linear_gelu_errors():
    args = (torch.randn(2, 3), torch.randn(4, 3))
    yield ErrorCase(args, {"approximate": "exact"}, RuntimeError, "either none or tanh")


def _bias_positional(function):
    """``function(input, linear_weight, target, *, linear_bias, ...)`` taking ``linear_bias`` as
    a fourth positional argument, so that the registry differentiates it."""

    def call(input, linear_weight, target, linear_bias=None, **kwargs):
        return function(input, linear_weight, target, linear_bias=linear_bias, **kwargs)

    return call


def _reference_path(input, linear_weight, target, linear_bias=None, options=None, **kwargs):
    """torch's reference path (options=None) whatever the options: its chunked path saves
    nothing for backward (it mutates its precomputed gradients in place), no memory baseline."""
    return TF.linear_cross_entropy(input, linear_weight, target, linear_bias=linear_bias, **kwargs)


linear_cross_entropy = _bias_positional(F.linear_cross_entropy)


def _chunked(size):
    return {"options": torch.nn.LinearCrossEntropyOptions(batch_chunk_size=size)}


def _cross_entropy_args(
    dtype, rows=5, hidden=3, vocab=4, bias=True, ignored=(), noncontiguous=False
):
    target = torch.randint(0, vocab, (rows,))
    target[list(ignored)] = -100
    input, weight, bias_ = _linear_args(
        dtype, rows=(rows,), features=hidden, outputs=vocab, bias=bias, noncontiguous=noncontiguous
    )
    return (input, weight, target, bias_)


def cross_entropy_samples(reduction, options=False):
    """Samples of one reduction; with ``options`` every call passes LinearCrossEntropyOptions
    (the precomputed-gradient path for mean/sum), else only the chunked ones do."""

    def chunked(size):
        return _chunked(size) if options else {}  # without: ⌈rows / 4⌉ rows a chunk

    def samples(dtype):
        kw = {"reduction": reduction, **chunked(None)}
        yield Sample("regular", _cross_entropy_args(dtype), kw)
        yield Sample("chunked", _cross_entropy_args(dtype, rows=7), {**kw, **chunked(2)})
        yield Sample("no_bias", _cross_entropy_args(dtype, bias=False), kw)
        yield Sample(
            "ignore_index", _cross_entropy_args(dtype, ignored=(1, 3)), {**kw, **chunked(3)}
        )
        yield Sample(
            "label_smoothing",
            _cross_entropy_args(dtype, ignored=(0,)),
            {**kw, "label_smoothing": 0.2, **chunked(2)},
        )
        yield Sample(
            "custom_ignore_index",
            (*_cross_entropy_args(dtype)[:2], torch.tensor([0, 3, 1, 3, 2]), None),
            {**kw, "ignore_index": 3},
        )
        yield Sample("size1", _cross_entropy_args(dtype, rows=1, hidden=1, vocab=1), kw)
        if reduction != "mean":  # the mean over no rows is nan
            yield Sample("empty", _cross_entropy_args(dtype, rows=0, bias=False), kw)
        yield Sample(
            "noncontiguous", _cross_entropy_args(dtype, noncontiguous=True), {**kw, **chunked(2)}
        )

    return samples


def _reduction_samples(reductions, options=False, keep=lambda reduction, name: True):
    """The samples of each reduction that ``keep(reduction, sample name)`` selects."""
    return lambda dtype: (
        sample
        for reduction in reductions
        for sample in cross_entropy_samples(reduction, options)(dtype)
        if keep(reduction, sample.name)
    )


def _linear_cross_entropy_op(name, samples, **flags) -> OpInfo:
    """An entry of linear_cross_entropy against torch's reference path; target checks are
    data-dependent (no vmap)."""
    return OpInfo(
        name,
        linear_cross_entropy,
        _reference_path,
        F.LinearCrossEntropyFunction,
        samples,
        vmap=False,
        **flags,
    )


def cross_entropy_errors():
    x, w, t = torch.randn(4, 3), torch.randn(5, 3), torch.tensor([0, 1, 2, 3])
    yield ErrorCase((x, w, t[:3]), {}, ValueError, r"Expected input batch_size \(4\)")
    yield ErrorCase((x, w, torch.tensor([0, 1, 2, 7])), {}, IndexError, "Target 7 is out of bounds")
    yield ErrorCase((x, w, t), {"label_smoothing": 1.5}, RuntimeError, "between 0.0 and 1.0")
    yield ErrorCase((x, w, t.int()), {}, RuntimeError, "Long or Byte, but got Int")
    yield ErrorCase((x, w, t), {"reduction": "avg"}, ValueError, "avg is not a valid value")


OPS = [
    OpInfo(
        "linear_relu",
        F.linear_relu,
        linear_relu_reference,
        F.LinearReLUFunction,
        linear_activation_samples,
        compile=True,
    ),
    OpInfo(
        "linear_gelu",
        F.linear_gelu,
        linear_gelu_reference,
        F.LinearGELUFunction,
        linear_gelu_samples,
        linear_gelu_errors,
        compile=True,
    ),
    # options=None: gradients recomputed in backward (differentiable, double backward works);
    # the mean/sum subset keeps the gradgradcheck through that backward short.
    _linear_cross_entropy_op(
        "linear_cross_entropy",
        _reduction_samples(
            ("mean", "sum"),
            keep=lambda reduction, name: (
                reduction == "mean" or name in ("regular", "chunked", "ignore_index")
            ),
        ),
        errors=cross_entropy_errors,
    ),
    # With options, mean/sum gradients are saved from the forward pass: constants to autograd,
    # so no double backward, and no torch.func.grad (it always builds a graph).
    _linear_cross_entropy_op(
        "linear_cross_entropy_options",
        _reduction_samples(("mean", "sum"), options=True),
        gradgradcheck=False,
    ),
    _linear_cross_entropy_op(
        "linear_cross_entropy_none",
        _reduction_samples(
            ("none",),
            keep=lambda _, name: name not in ("regular", "no_bias", "custom_ignore_index"),
        ),
    ),
]


class LinearReLU(mnn.LinearReLU):
    """torch's composition under the same name (hence the same repr)."""

    def forward(self, input):
        return linear_relu_reference(input, self.weight, self.bias)


class LinearGELU(mnn.LinearGELU):
    """torch's composition under the same name (hence the same repr)."""

    def forward(self, input):
        return linear_gelu_reference(input, self.weight, self.bias, self.approximate)


def _features(kw, dtype):
    return (tensor(4, kw["in_features"], dtype=dtype),)


MODULES = [
    ModuleInfo(
        "LinearReLU",
        mnn.LinearReLU,
        LinearReLU,
        [
            {"in_features": 3, "out_features": 4},
            {"in_features": 2, "out_features": 3, "bias": False},
        ],
        _features,
    ),
    ModuleInfo(
        "LinearGELU",
        mnn.LinearGELU,
        LinearGELU,
        [
            {"in_features": 3, "out_features": 4},
            {"in_features": 3, "out_features": 2, "approximate": "tanh"},
        ],
        _features,
    ),
    ModuleInfo(
        "LinearCrossEntropyLoss",
        mnn.LinearCrossEntropyLoss,
        torch.nn.LinearCrossEntropyLoss,
        [
            {"in_features": 3, "num_classes": 6},
            {
                "in_features": 3,
                "num_classes": 6,
                "bias": True,
                "reduction": "sum",
                "label_smoothing": 0.1,
                **_chunked(2),
            },
            {"in_features": 3, "num_classes": 6, "reduction": "none", "ignore_index": 5},
        ],
        lambda kw, dtype: (
            tensor(5, 3, dtype=dtype),
            torch.tensor([0, 5, 2, kw.get("ignore_index", -100), 1]),
        ),
    ),
]
