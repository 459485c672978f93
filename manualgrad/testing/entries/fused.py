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


def linear_cross_entropy_reference(
    input,
    weight,
    target,
    bias=None,
    ignore_index=-100,
    reduction="mean",
    label_smoothing=0.0,
    chunk_size=None,
):
    logits = TF.linear(input, weight, bias)
    return TF.cross_entropy(
        logits,
        target,
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
    )


def _cross_entropy_args(
    dtype, rows=5, hidden=3, vocab=4, bias=True, ignored=(), noncontiguous=False
):
    target = torch.randint(0, vocab, (rows,))
    target[list(ignored)] = -100
    input, weight, bias_ = _linear_args(
        dtype, rows=(rows,), features=hidden, outputs=vocab, bias=bias, noncontiguous=noncontiguous
    )
    return (input, weight, target, bias_)


def cross_entropy_samples(reduction):
    def samples(dtype):
        kw = {"reduction": reduction}
        yield Sample("regular", _cross_entropy_args(dtype), kw)
        yield Sample("chunked", _cross_entropy_args(dtype, rows=7), {**kw, "chunk_size": 2})
        yield Sample("no_bias", _cross_entropy_args(dtype, bias=False), kw)
        yield Sample(
            "ignore_index", _cross_entropy_args(dtype, ignored=(1, 3)), {**kw, "chunk_size": 3}
        )
        yield Sample(
            "label_smoothing",
            _cross_entropy_args(dtype, ignored=(0,)),
            {**kw, "label_smoothing": 0.2, "chunk_size": 2},
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
            "noncontiguous", _cross_entropy_args(dtype, noncontiguous=True), {**kw, "chunk_size": 2}
        )

    return samples


def cross_entropy_errors():
    x, w, t = torch.randn(4, 3), torch.randn(5, 3), torch.tensor([0, 1, 2, 3])
    yield ErrorCase((x, w, t[:3]), {}, ValueError, r"Expected input batch_size \(4\)")
    yield ErrorCase((x, w, torch.tensor([0, 1, 2, 7])), {}, IndexError, "Target 7 is out of bounds")
    yield ErrorCase((x, w, t), {"label_smoothing": 1.5}, RuntimeError, "between 0.0 and 1.0")
    yield ErrorCase((x, w, t.int()), {}, RuntimeError, "Long or Byte, but got Int")
    yield ErrorCase((x, w, t), {"reduction": "avg"}, ValueError, "avg is not a valid value")
    yield ErrorCase((x, w, t), {"chunk_size": 0}, ValueError, "chunk_size must be a positive")


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
    # Gradients saved from the forward pass are constants to autograd: no double backward, and
    # no torch.func.grad (it always builds a graph); target checks are data-dependent (no vmap).
    OpInfo(
        "linear_cross_entropy",
        F.linear_cross_entropy,
        linear_cross_entropy_reference,
        F.LinearCrossEntropyFunction,
        lambda dtype: (
            sample
            for reduction in ("mean", "sum")
            for sample in cross_entropy_samples(reduction)(dtype)
        ),
        cross_entropy_errors,
        gradgradcheck=False,
        vmap=False,
    ),
    OpInfo(
        "linear_cross_entropy_none",
        F.linear_cross_entropy,
        linear_cross_entropy_reference,
        F.LinearCrossEntropyFunction,
        lambda dtype: (
            sample  # a subset: gradgradcheck through the recomputing backward is the slow part
            for sample in cross_entropy_samples("none")(dtype)
            if sample.name not in ("regular", "no_bias", "custom_ignore_index")
        ),
        vmap=False,
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


class LinearCrossEntropyLoss(mnn.LinearCrossEntropyLoss):
    """torch's composition under the same name (hence the same repr)."""

    def forward(self, input, weight, target, bias=None):
        return linear_cross_entropy_reference(
            input, weight, target, bias, self.ignore_index, self.reduction, self.label_smoothing
        )


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
        LinearCrossEntropyLoss,
        [{}, {"reduction": "sum", "label_smoothing": 0.1, "chunk_size": 2}, {"reduction": "none"}],
        lambda kw, dtype: (
            tensor(5, 3, dtype=dtype),
            tensor(6, 3, dtype=dtype),
            torch.tensor([0, 5, 2, -100, 1]),
        ),
    ),
]
