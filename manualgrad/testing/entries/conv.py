"""Registry entries (see manualgrad.testing.registry): convolutions."""

import torch
import torch.nn.functional as TF

import manualgrad.functional as F
import manualgrad.nn as mnn
from manualgrad.testing.registry import ErrorCase, ModuleInfo, OpInfo, Sample, tensor


def _conv(name, input_shape, weight_shape, bias=True, dtype=torch.float64, **kwargs):
    """A sample: input, weight (and a bias of weight_shape[0] unless ``bias`` is False)."""
    args = (
        tensor(*input_shape, dtype=dtype),
        tensor(*weight_shape, dtype=dtype),
        tensor(weight_shape[0], dtype=dtype) if bias else None,
    )
    return Sample(name, args, kwargs)


def conv1d_samples(dtype):
    yield _conv("regular", (2, 3, 6), (4, 3, 3), dtype=dtype)
    yield _conv("stride_padding", (2, 3, 8), (2, 3, 3), dtype=dtype, stride=2, padding=1)
    yield _conv("dilation", (2, 2, 9), (3, 2, 3), dtype=dtype, dilation=2, padding=(2,))
    yield _conv("same_even_kernel", (2, 2, 6), (3, 2, 4), dtype=dtype, padding="same")
    yield _conv("same_dilated", (1, 2, 7), (2, 2, 3), dtype=dtype, padding="same", dilation=3)
    yield _conv("valid_stride", (2, 2, 9), (3, 2, 3), False, dtype, padding="valid", stride=3)
    yield _conv("groups", (2, 4, 6), (6, 2, 3), dtype=dtype, groups=2, padding=1)
    yield _conv("unbatched", (3, 6), (2, 3, 2), dtype=dtype)
    yield _conv("empty_batch", (0, 3, 6), (2, 3, 3), dtype=dtype)
    yield _conv("size1", (1, 1, 1), (1, 1, 1), dtype=dtype)
    yield Sample(
        "noncontiguous",
        (
            tensor(2, 3, 6, dtype=dtype, noncontiguous=True),
            tensor(4, 3, 3, dtype=dtype, noncontiguous=True),
            tensor(4, dtype=dtype),
        ),
        {"padding": 1},
        noncontiguous_grad=True,
    )


def conv2d_samples(dtype):
    yield _conv("regular", (2, 2, 4, 4), (2, 2, 3, 3), dtype=dtype)
    yield _conv("stride_padding", (1, 2, 5, 5), (2, 2, 3, 3), dtype=dtype, stride=2, padding=1)
    yield _conv(
        "tuples",
        (1, 2, 4, 5),
        (2, 2, 2, 3),
        dtype=dtype,
        stride=(2, 1),
        padding=(1, 2),
        dilation=(1, 2),
    )
    yield _conv("dilation", (1, 2, 5, 5), (2, 2, 2, 2), dtype=dtype, dilation=2, padding=1)
    yield _conv("same", (1, 2, 4, 4), (2, 2, 3, 3), dtype=dtype, padding="same")
    yield _conv(
        "same_even_kernel", (1, 2, 4, 5), (2, 2, 2, 4), dtype=dtype, padding="same", dilation=(3, 1)
    )
    yield _conv("valid", (1, 2, 5, 5), (2, 2, 3, 2), dtype=dtype, padding="valid", stride=2)
    yield _conv("groups", (1, 4, 3, 3), (4, 2, 2, 2), dtype=dtype, groups=2, padding=1)
    yield _conv("depthwise", (1, 3, 4, 4), (3, 1, 3, 3), dtype=dtype, groups=3)
    yield _conv("no_bias", (2, 2, 4, 4), (2, 2, 3, 3), False, dtype, stride=(1, 2))
    yield _conv("unbatched", (2, 4, 5), (3, 2, 2, 2), dtype=dtype)
    yield _conv("empty_batch", (0, 2, 4, 4), (3, 2, 3, 3), dtype=dtype)
    yield _conv("size1", (1, 1, 1, 1), (1, 1, 1, 1), dtype=dtype)
    yield Sample(
        "noncontiguous",
        (
            tensor(2, 2, 4, 4, dtype=dtype, noncontiguous=True),
            tensor(2, 2, 3, 3, dtype=dtype, noncontiguous=True),
            tensor(2, dtype=dtype),
        ),
        {"padding": 1, "stride": 2},
        noncontiguous_grad=True,
    )
    yield Sample(
        "channels_last",
        (
            tensor(2, 4, 4, 2, dtype=dtype).permute(0, 3, 1, 2),
            tensor(2, 2, 3, 3, dtype=dtype),
            None,
        ),
        {"stride": 2, "padding": 1},
    )


def conv2d_errors():
    x, w = torch.randn(2, 4, 5, 5), torch.randn(3, 4, 3, 3)
    yield ErrorCase((x, w), {"padding": "same", "stride": 2}, RuntimeError, "strided convolutions")
    yield ErrorCase((x, w), {"padding": "full"}, RuntimeError, "Invalid padding string: 'full'")
    yield ErrorCase((x, w), {"padding": -1}, RuntimeError, "negative padding")
    yield ErrorCase((x, w), {"stride": 0}, RuntimeError, "non-positive stride")
    yield ErrorCase((x, w), {"stride": (1, 2, 3)}, RuntimeError, "expected stride to be a single")
    yield ErrorCase((x, w), {"dilation": 0}, RuntimeError, "non-positive dilation")
    yield ErrorCase((x, w), {"groups": 3}, RuntimeError, "to have 12 channels")
    yield ErrorCase((torch.randn(4, 5), w), {}, RuntimeError, r"Expected 3D \(unbatched\) or 4D")
    yield ErrorCase((torch.randn(2, 4, 2, 2), w), {}, RuntimeError, "Kernel size can't be greater")


def conv1d_errors():
    x, w = torch.randn(2, 4, 5), torch.randn(3, 4, 3)
    yield ErrorCase((x, w), {"padding": "same", "stride": 2}, RuntimeError, "strided convolutions")
    yield ErrorCase((x, torch.randn(3, 2, 3)), {}, RuntimeError, "to have 2 channels")
    yield ErrorCase((torch.randn(2, 4, 5, 5), w), {}, RuntimeError, r"Expected 2D \(unbatched\)")


OPS = [
    OpInfo("conv1d", F.conv1d, TF.conv1d, F.ConvolutionFunction, conv1d_samples, conv1d_errors),
    OpInfo("conv2d", F.conv2d, TF.conv2d, F.ConvolutionFunction, conv2d_samples, conv2d_errors),
]


def _image(channels, *spatial):
    return lambda kw, dtype: (tensor(2, kw.get("in_channels", channels), *spatial, dtype=dtype),)


MODULES = [
    ModuleInfo(
        "Conv1d",
        mnn.Conv1d,
        torch.nn.Conv1d,
        [
            {"in_channels": 3, "out_channels": 4, "kernel_size": 3},
            {"in_channels": 4, "out_channels": 2, "kernel_size": 2, "padding": "same", "groups": 2},
            {"in_channels": 3, "out_channels": 2, "kernel_size": 3, "stride": 2, "bias": False},
        ],
        _image(3, 9),
    ),
    ModuleInfo(
        "Conv2d",
        mnn.Conv2d,
        torch.nn.Conv2d,
        [
            {"in_channels": 3, "out_channels": 4, "kernel_size": 3},
            {"in_channels": 3, "out_channels": 2, "kernel_size": (3, 2), "padding": "same"},
            {"in_channels": 4, "out_channels": 4, "kernel_size": 3, "groups": 4, "bias": False},
            {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "stride": 2, "dilation": 2},
        ],
        _image(3, 7, 7),
    ),
]
