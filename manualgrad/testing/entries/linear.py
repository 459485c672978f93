"""Registry entries (see manualgrad.testing.registry): linear."""

import torch
import torch.nn.functional as TF

import manualgrad.functional as F
import manualgrad.nn as mnn
from manualgrad.testing.registry import ErrorCase, ModuleInfo, OpInfo, Sample, tensor


def linear_samples(dtype):
    yield Sample(
        "regular", (tensor(4, 3, dtype=dtype), tensor(5, 3, dtype=dtype), tensor(5, dtype=dtype))
    )
    yield Sample("no_bias", (tensor(4, 3, dtype=dtype), tensor(5, 3, dtype=dtype), None))
    yield Sample(
        "leading_dims",
        (tensor(2, 3, 4, dtype=dtype), tensor(2, 4, dtype=dtype), tensor(2, dtype=dtype)),
    )
    yield Sample(
        "vector_input", (tensor(3, dtype=dtype), tensor(2, 3, dtype=dtype), tensor(2, dtype=dtype))
    )
    yield Sample("vector_weight", (tensor(4, 3, dtype=dtype), tensor(3, dtype=dtype), None))
    yield Sample(
        "empty_batch",
        (tensor(0, 3, dtype=dtype), tensor(2, 3, dtype=dtype), tensor(2, dtype=dtype)),
    )
    yield Sample(
        "size1", (tensor(1, 1, dtype=dtype), tensor(1, 1, dtype=dtype), tensor(1, dtype=dtype))
    )
    yield Sample(
        "noncontiguous",
        (
            tensor(2, 5, 3, dtype=dtype, noncontiguous=True),
            tensor(4, 3, dtype=dtype, noncontiguous=True),
            tensor(4, dtype=dtype),
        ),
        noncontiguous_grad=True,
    )


def linear_errors():
    yield ErrorCase((torch.randn(4, 3), torch.randn(5, 4)), {}, RuntimeError, "shapes cannot be")


OPS = [
    OpInfo(
        "linear", F.linear, TF.linear, F.LinearFunction, linear_samples, linear_errors, compile=True
    ),
]

MODULES = [
    ModuleInfo(
        "Linear",
        mnn.Linear,
        torch.nn.Linear,
        [
            {"in_features": 3, "out_features": 4},
            {"in_features": 3, "out_features": 2, "bias": False},
        ],
        lambda kw, dtype: (tensor(5, kw["in_features"], dtype=dtype),),
    ),
]
