"""Registry entries (see manualgrad.testing.registry): normalisation layers.

Batch norm's running stats are constant tensor args: every call gets fresh copies (Sample.prepared
clones them), so the in-place updates of one call never leak into the next.
"""

import torch
import torch.nn.functional as TF

import manualgrad.functional as F
import manualgrad.nn as mnn
from manualgrad.testing.registry import ErrorCase, ModuleInfo, OpInfo, Sample, tensor

RUNNING_STATS = frozenset({1, 2})


def _batch_norm(name, shape, dtype, affine=True, running=True, noncontiguous=False, **kwargs):
    channels = shape[1]
    stats = (
        (tensor(channels, dtype=dtype), tensor(channels, dtype=dtype, low=0.5, high=2))
        if running
        else (None, None)
    )
    params = (
        (tensor(channels, dtype=dtype), tensor(channels, dtype=dtype)) if affine else (None, None)
    )
    input = tensor(*shape, dtype=dtype, noncontiguous=noncontiguous)
    return Sample(
        name,
        (input, *stats, *params),
        kwargs,
        constant=RUNNING_STATS,
        noncontiguous_grad=noncontiguous,
    )


def batch_norm_samples(dtype):
    # The first sample runs under vmap: eval mode (training mutates the running stats in place,
    # which vmap cannot do for torch's batch_norm either).
    yield _batch_norm("eval", (3, 2, 4), dtype, training=False)
    yield _batch_norm("training", (4, 3), dtype, training=True)
    yield _batch_norm("training_4d", (2, 3, 3, 3), dtype, training=True, momentum=0.3)
    # Images of 20 cells a channel per sample: the twin's per-segment kernels (a vector or more
    # of float32 and float64, and a tail), where the samples above take its per-column ones.
    yield _batch_norm("training_images", (2, 2, 4, 5), dtype, training=True)
    yield _batch_norm("eval_images", (2, 2, 4, 5), dtype, training=False)
    yield _batch_norm("training_no_running_stats", (3, 2, 4), dtype, running=False, training=True)
    yield _batch_norm("training_no_affine", (3, 2, 2, 2), dtype, affine=False, training=True)
    yield _batch_norm("eval_no_affine", (2, 3, 2, 2), dtype, affine=False, eps=1e-3)
    yield _batch_norm("training_batch1", (1, 2, 5), dtype, training=True)
    yield _batch_norm("eval_empty_batch", (0, 3), dtype)
    yield _batch_norm("training_empty_batch", (0, 2, 3), dtype, training=True)
    yield _batch_norm(
        "training_noncontiguous", (2, 3, 3, 4), dtype, noncontiguous=True, training=True
    )
    yield Sample(
        "training_channels_last",
        (
            tensor(2, 3, 3, 2, dtype=dtype).permute(0, 3, 1, 2),
            tensor(2, dtype=dtype),
            tensor(2, dtype=dtype, low=0.5, high=2),
            tensor(2, dtype=dtype),
            tensor(2, dtype=dtype),
        ),
        {"training": True},
        constant=RUNNING_STATS,
    )


def batch_norm_errors():
    x, stats = torch.randn(4, 3, 5), (torch.zeros(3), torch.ones(3))
    yield ErrorCase(
        (torch.randn(1, 3), *stats), {"training": True}, ValueError, "more than 1 value per channel"
    )
    yield ErrorCase((x, None, None), {}, RuntimeError, "running_mean must be defined")
    yield ErrorCase((x, *stats, torch.ones(2)), {}, RuntimeError, "weight should contain 3")
    yield ErrorCase((x, torch.zeros(2), torch.ones(3)), {}, RuntimeError, "running_mean should")


def _shaped(name, input, normalized_shape, params, dtype, noncontiguous=False, **kwargs):
    args = (
        tensor(*input, dtype=dtype, noncontiguous=noncontiguous),
        normalized_shape,
        *(tensor(*normalized_shape, dtype=dtype) if wanted else None for wanted in params),
    )
    return Sample(name, args, kwargs, noncontiguous_grad=noncontiguous)


def layer_norm_samples(dtype):
    yield _shaped("regular", (3, 4), (4,), (True, True), dtype)
    yield _shaped("two_dims", (2, 3, 4), (3, 4), (True, True), dtype, eps=1e-3)
    yield _shaped("no_affine", (2, 5), (5,), (False, False), dtype)
    yield _shaped("no_bias", (2, 2, 3), (3,), (True, False), dtype)
    yield _shaped("vector", (5,), (5,), (True, True), dtype)
    yield _shaped("empty_batch", (0, 4), (4,), (True, True), dtype)
    yield _shaped("batch1", (1, 4), (4,), (True, True), dtype)
    yield _shaped("noncontiguous", (2, 3, 4), (4,), (True, True), dtype, noncontiguous=True)


def rms_norm_samples(dtype):
    yield _shaped("regular", (3, 4), (4,), (True,), dtype)
    yield _shaped("two_dims", (2, 3, 4), (3, 4), (True,), dtype, eps=1e-3)
    yield _shaped("no_weight", (2, 5), (5,), (False,), dtype)
    yield _shaped("vector", (5,), (5,), (True,), dtype)
    yield _shaped("empty_batch", (0, 4), (4,), (True,), dtype)
    yield _shaped("size1", (3, 1), (1,), (True,), dtype)
    yield _shaped("batch1", (1, 4), (4,), (True,), dtype)
    yield _shaped("noncontiguous", (2, 3, 4), (4,), (True,), dtype, noncontiguous=True)


def _normalized_shape_errors(op_name):
    x = torch.randn(4, 3, 5)
    yield ErrorCase((x, (4,)), {}, RuntimeError, r"Given normalized_shape=\[4\], expected input")
    yield ErrorCase((x, (5,), torch.ones(4)), {}, RuntimeError, "Expected weight to be of same")
    if op_name == "layer_norm":
        yield ErrorCase((x, ()), {}, RuntimeError, "at least 1-dimensional")


def _group_norm(name, shape, groups, affine, dtype, noncontiguous=False, **kwargs):
    channels = shape[1]
    params = (tensor(channels, dtype=dtype) if wanted else None for wanted in affine)
    input = tensor(*shape, dtype=dtype, noncontiguous=noncontiguous)
    return Sample(name, (input, groups, *params), kwargs, noncontiguous_grad=noncontiguous)


def group_norm_samples(dtype):
    yield _group_norm("regular", (2, 6, 3), 3, (True, True), dtype)
    yield _group_norm("4d", (2, 4, 2, 3), 2, (True, True), dtype, eps=1e-3)
    yield _group_norm("one_group", (2, 3, 4), 1, (True, True), dtype)
    yield _group_norm("group_per_channel", (2, 3, 4), 3, (True, True), dtype)
    yield _group_norm("no_affine", (3, 4, 2), 2, (False, False), dtype)
    yield _group_norm("weight_only", (2, 4, 3), 2, (True, False), dtype)
    yield _group_norm("2d_input", (3, 6), 2, (True, True), dtype)
    yield _group_norm("empty_batch", (0, 4, 3), 2, (True, True), dtype)
    yield _group_norm("noncontiguous", (2, 4, 3, 3), 2, (True, True), dtype, noncontiguous=True)


def group_norm_errors():
    x = torch.randn(4, 3, 5)
    yield ErrorCase((x, 2), {}, RuntimeError, "divisible by num_groups")
    yield ErrorCase((x, 3, torch.ones(2)), {}, RuntimeError, "Expected weight to be a vector")
    yield ErrorCase((torch.randn(3), 1), {}, RuntimeError, "Expected at least 2 dimensions")


def weight_norm_reference(v, g, dim=0):
    """``torch._weight_norm``; on an empty v its composite form (torch 2.13's fused CPU kernel
    dies of a floating point exception there, taking the test process with it)."""
    if v.numel() == 0:
        return v * (g / torch.norm_except_dim(v, 2, dim))
    return torch._weight_norm(v, g, dim)


def weight_norm_samples(dtype):
    """torch.nn.utils.parametrizations.weight_norm's call: v and g (v's shape, 1 off ``dim``)."""
    for name, shape, dim in [
        ("linear", (4, 3), 0),
        ("dim1", (4, 3), 1),
        ("conv", (3, 2, 2, 2), 0),
        ("middle", (2, 3, 4), 1),
        ("last", (2, 3, 4), 2),
        ("whole", (4, 3), -1),
    ]:
        g_shape = (
            [1] * len(shape) if dim == -1 else [1 if d != dim else n for d, n in enumerate(shape)]
        )
        yield Sample(
            name, (tensor(*shape, dtype=dtype), tensor(*g_shape, dtype=dtype)), {"dim": dim}
        )


OPS = [
    OpInfo(
        "batch_norm",
        F.batch_norm,
        TF.batch_norm,
        F.BatchNormFunction,
        batch_norm_samples,
        batch_norm_errors,
    ),
    OpInfo(
        "layer_norm",
        F.layer_norm,
        TF.layer_norm,
        F.LayerNormFunction,
        layer_norm_samples,
        lambda: _normalized_shape_errors("layer_norm"),
    ),
    OpInfo(
        "rms_norm",
        F.rms_norm,
        TF.rms_norm,
        F.RMSNormFunction,
        rms_norm_samples,
        lambda: _normalized_shape_errors("rms_norm"),
    ),
    OpInfo(
        "group_norm",
        F.group_norm,
        TF.group_norm,
        F.GroupNormFunction,
        group_norm_samples,
        group_norm_errors,
    ),
    OpInfo(
        "_weight_norm",
        F._weight_norm,
        weight_norm_reference,
        F.WeightNormFunction,
        weight_norm_samples,
    ),
]


def _features(*shape):
    return lambda kw, dtype: (tensor(*shape, dtype=dtype),)


MODULES = [
    ModuleInfo(
        "BatchNorm1d",
        mnn.BatchNorm1d,
        torch.nn.BatchNorm1d,
        [
            {"num_features": 3},
            {"num_features": 3, "affine": False, "momentum": None},
            {"num_features": 3, "track_running_stats": False},
        ],
        _features(4, 3, 5),
    ),
    ModuleInfo(
        "BatchNorm2d",
        mnn.BatchNorm2d,
        torch.nn.BatchNorm2d,
        [{"num_features": 3}, {"num_features": 3, "eps": 1e-3, "momentum": 0.5}],
        _features(2, 3, 4, 4),
    ),
    ModuleInfo(
        "LayerNorm",
        mnn.LayerNorm,
        torch.nn.LayerNorm,
        [
            {"normalized_shape": 5},
            {"normalized_shape": (3, 5), "bias": False},
            {"normalized_shape": [5], "elementwise_affine": False},
        ],
        _features(2, 3, 5),
    ),
    ModuleInfo(
        "RMSNorm",
        mnn.RMSNorm,
        torch.nn.RMSNorm,
        [{"normalized_shape": 5}, {"normalized_shape": (3, 5), "eps": 1e-3}],
        _features(2, 3, 5),
    ),
    ModuleInfo(
        "GroupNorm",
        mnn.GroupNorm,
        torch.nn.GroupNorm,
        [
            {"num_groups": 2, "num_channels": 4},
            {"num_groups": 4, "num_channels": 4, "affine": False},
        ],
        _features(2, 4, 3, 3),
    ),
]
