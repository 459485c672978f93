"""Registry entries (see manualgrad.testing.registry): 2-d pooling."""

import torch
import torch.nn.functional as TF

import manualgrad.functional as F
import manualgrad.nn as mnn
from manualgrad.testing.registry import ErrorCase, ModuleInfo, OpInfo, Sample, tensor


def _pool_samples(cases):
    """Samples of one input image each: ``cases`` = [(name, shape, kwargs)], plus the shared
    unbatched, empty-batch, batch-of-one and non-contiguous ones."""

    def samples(dtype):
        for name, shape, kwargs in cases:
            yield Sample(name, (tensor(*shape, dtype=dtype),), kwargs)
        yield Sample("unbatched", (tensor(2, 5, 4, dtype=dtype),), {"kernel_size": 2})
        yield Sample("empty_batch", (tensor(0, 2, 4, 4, dtype=dtype),), {"kernel_size": 2})
        yield Sample("batch1_size1", (tensor(1, 1, 1, 1, dtype=dtype),), {"kernel_size": 1})
        yield Sample(
            "noncontiguous",
            (tensor(1, 2, 5, 6, dtype=dtype, noncontiguous=True),),
            {"kernel_size": 3, "stride": 2, "padding": 1},
            noncontiguous_grad=True,
        )
        yield Sample(
            "channels_last",
            (tensor(2, 4, 4, 2, dtype=dtype).permute(0, 3, 1, 2),),
            {"kernel_size": 2, "stride": 1},
        )

    return samples


max_pool2d_samples = _pool_samples(
    [
        ("regular", (2, 2, 4, 4), {"kernel_size": 2}),
        ("stride_padding", (1, 2, 5, 5), {"kernel_size": 3, "stride": 2, "padding": 1}),
        ("tuples", (1, 2, 6, 5), {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 0)}),
        ("dilation", (1, 2, 5, 5), {"kernel_size": 2, "dilation": 2, "padding": 1}),
        ("ceil_mode", (1, 2, 6, 5), {"kernel_size": 3, "stride": 2, "ceil_mode": True}),
        (
            "ceil_mode_padding",
            (1, 2, 5, 5),
            {"kernel_size": 2, "stride": 3, "padding": 1, "ceil_mode": True},
        ),
        ("return_indices", (1, 2, 4, 4), {"kernel_size": 3, "stride": 1, "return_indices": True}),
    ]
)

avg_pool2d_samples = _pool_samples(
    [
        ("regular", (2, 2, 4, 4), {"kernel_size": 2}),
        ("stride_padding", (1, 2, 5, 5), {"kernel_size": 3, "stride": 2, "padding": 1}),
        (
            "exclude_pad",
            (1, 2, 5, 5),
            {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False},
        ),
        ("tuples", (1, 2, 6, 5), {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 0)}),
        ("ceil_mode", (1, 2, 6, 5), {"kernel_size": 3, "stride": 2, "ceil_mode": True}),
        (
            "ceil_mode_exclude_pad",
            (1, 2, 5, 5),
            {
                "kernel_size": 2,
                "stride": 3,
                "padding": 1,
                "ceil_mode": True,
                "count_include_pad": False,
            },
        ),
        ("divisor_override", (1, 2, 4, 4), {"kernel_size": 3, "padding": 1, "divisor_override": 5}),
    ]
)


def adaptive_avg_pool2d_samples(dtype):
    yield Sample("global", (tensor(2, 2, 4, 4, dtype=dtype),), {"output_size": 1})
    yield Sample("uneven", (tensor(1, 2, 5, 7, dtype=dtype),), {"output_size": (3, 2)})
    yield Sample("keep_rows", (tensor(1, 2, 4, 6, dtype=dtype),), {"output_size": (None, 4)})
    yield Sample("upsample", (tensor(1, 2, 3, 2, dtype=dtype),), {"output_size": (5, 4)})
    yield Sample("unbatched", (tensor(2, 5, 4, dtype=dtype),), {"output_size": 2})
    yield Sample("empty_batch", (tensor(0, 2, 4, 4, dtype=dtype),), {"output_size": 2})
    yield Sample("size1", (tensor(1, 1, 1, 1, dtype=dtype),), {"output_size": 1})
    yield Sample(
        "tiles_noncontiguous",
        (tensor(1, 2, 6, 4, dtype=dtype, noncontiguous=True),),
        {"output_size": (3, 2)},
        noncontiguous_grad=True,
    )
    yield Sample(
        "noncontiguous",
        (tensor(1, 2, 5, 6, dtype=dtype, noncontiguous=True),),
        {"output_size": (2, 4)},
        noncontiguous_grad=True,
    )


def adaptive_max_pool2d_samples(dtype):
    yield Sample("global", (tensor(2, 2, 4, 4, dtype=dtype),), {"output_size": 1})
    yield Sample(
        "uneven_indices",
        (tensor(1, 2, 5, 7, dtype=dtype),),
        {"output_size": (3, 2), "return_indices": True},
    )
    yield Sample("keep_rows", (tensor(1, 2, 4, 6, dtype=dtype),), {"output_size": (None, 4)})
    yield Sample("upsample", (tensor(1, 2, 3, 2, dtype=dtype),), {"output_size": (5, 4)})
    yield Sample("unbatched", (tensor(2, 5, 4, dtype=dtype),), {"output_size": 2})
    yield Sample("empty_batch", (tensor(0, 2, 4, 4, dtype=dtype),), {"output_size": 2})
    yield Sample(
        "noncontiguous",
        (tensor(1, 2, 5, 6, dtype=dtype, noncontiguous=True),),
        {"output_size": (2, 4)},
        noncontiguous_grad=True,
    )


def adaptive_max_pool2d_errors():
    x = torch.randn(2, 3, 5, 5)
    yield ErrorCase((x, (1, 2, 3)), {}, RuntimeError, "output_size must be 2")
    yield ErrorCase((x, -1), {}, RuntimeError, "greater than or equal to 0")
    yield ErrorCase((torch.randn(3, 5), 2), {}, RuntimeError, "Expected 3D or 4D tensor")
    yield ErrorCase((torch.randn(2, 3, 0, 5), 1), {}, RuntimeError, "dimension 2 being empty")


def _window_errors(with_dilation):
    x = torch.randn(2, 3, 5, 5)
    yield ErrorCase((x, 2), {"stride": 0}, RuntimeError, "stride should not be zero")
    yield ErrorCase((x, 2), {"padding": 2}, RuntimeError, "pad should be at most half")
    yield ErrorCase((x, 2), {"padding": -1}, RuntimeError, "pad must be non-negative")
    yield ErrorCase((x, 7), {}, RuntimeError, "Output size is too small")
    yield ErrorCase((x, 2), {"stride": (1, 2, 3)}, RuntimeError, "stride must either be omitted")
    yield ErrorCase((x, (1, 2, 3)), {}, RuntimeError, "kernel_size must either be a single int")
    yield ErrorCase((torch.randn(2, 3, 0, 5), 2), {}, RuntimeError, "optional 0 dim batch size")
    if with_dilation:
        yield ErrorCase((x, 2), {"dilation": 0}, RuntimeError, "dilation should be greater than")


def max_pool2d_errors():
    yield from _window_errors(with_dilation=True)
    yield ErrorCase((torch.randn(3, 5), 2), {}, RuntimeError, "non-empty 3D or 4D")


def avg_pool2d_errors():
    yield from _window_errors(with_dilation=False)
    x = torch.randn(2, 3, 5, 5)
    yield ErrorCase((x, 2), {"divisor_override": 0}, RuntimeError, "divisor must be not zero")
    yield ErrorCase((torch.randn(3, 5), 2), {}, IndexError, "avg_pool2d")


def adaptive_avg_pool2d_errors():
    x = torch.randn(2, 3, 5, 5)
    yield ErrorCase((x, (1, 2, 3)), {}, RuntimeError, "output_size must be 2")
    yield ErrorCase((x, -1), {}, RuntimeError, "greater than or equal to 0")
    yield ErrorCase((torch.randn(3, 5), 2), {}, RuntimeError, "Expected 3D or 4D tensor")
    yield ErrorCase((torch.randn(2, 3, 0, 5), 2), {}, RuntimeError, "dimension 2 being empty")


def _line_samples(cases):
    """Samples of one (N, C, L) input each: ``cases`` = [(name, shape, kwargs)], plus the shared
    unbatched, empty-batch and non-contiguous ones (``kwargs`` of the first case)."""

    def samples(dtype):
        for name, shape, kwargs in cases:
            yield Sample(name, (tensor(*shape, dtype=dtype),), kwargs)
        first = cases[0][2]
        yield Sample("unbatched", (tensor(2, 7, dtype=dtype),), first)
        yield Sample("empty_batch", (tensor(0, 2, 6, dtype=dtype),), first)
        yield Sample(
            "noncontiguous",
            (tensor(2, 3, 8, dtype=dtype, noncontiguous=True),),
            first,
            noncontiguous_grad=True,
        )

    return samples


max_pool1d_samples = _line_samples(
    [
        ("regular", (2, 3, 8), {"kernel_size": 2}),
        ("stride_padding", (1, 2, 9), {"kernel_size": 3, "stride": 2, "padding": 1}),
        ("dilation_ceil", (1, 2, 9), {"kernel_size": 2, "dilation": 2, "ceil_mode": True}),
        ("tuple_indices", (1, 2, 7), {"kernel_size": (3,), "stride": 1, "return_indices": True}),
    ]
)

avg_pool1d_samples = _line_samples(
    [
        ("regular", (2, 3, 8), {"kernel_size": 2}),
        (
            "exclude_pad_ceil",
            (1, 2, 9),
            {
                "kernel_size": 3,
                "stride": 2,
                "padding": 1,
                "ceil_mode": True,
                "count_include_pad": False,
            },
        ),
        ("tuple", (1, 2, 7), {"kernel_size": (3,), "stride": (1,), "padding": (1,)}),
    ]
)

adaptive_avg_pool1d_samples = _line_samples(
    [
        ("global", (2, 3, 8), {"output_size": 1}),
        ("uneven", (1, 2, 7), {"output_size": 3}),
        ("tiles", (1, 2, 8), {"output_size": (4,)}),
        ("upsample", (1, 2, 3), {"output_size": 5}),
    ]
)


adaptive_max_pool1d_samples = _line_samples(
    [
        ("global", (2, 3, 8), {"output_size": 1}),
        ("uneven_indices", (1, 2, 7), {"output_size": 3, "return_indices": True}),
        ("tiles", (1, 2, 8), {"output_size": (4,)}),
        ("upsample", (1, 2, 3), {"output_size": 5}),
    ]
)


def _line_errors(op):
    x = torch.randn(2, 3, 9)
    yield ErrorCase((torch.randn(5), 2), {}, RuntimeError, "Expected 2D or 3D")
    yield ErrorCase((x, (1, 2)), {}, RuntimeError, "should contain one int")
    if op != "adaptive":
        yield ErrorCase((x, 2), {"padding": 2}, RuntimeError, "pad should be at most half")
        yield ErrorCase((x, 10), {}, RuntimeError, "Output size is too small")
        yield ErrorCase((x, 2), {"stride": 0}, RuntimeError, "stride should not be zero")


OPS = [
    OpInfo(
        "max_pool1d",
        F.max_pool1d,
        TF.max_pool1d,
        F.MaxPool2dFunction,
        max_pool1d_samples,
        lambda: _line_errors("max"),
    ),
    OpInfo(
        "avg_pool1d",
        F.avg_pool1d,
        TF.avg_pool1d,
        F.AvgPool2dFunction,
        avg_pool1d_samples,
        lambda: _line_errors("avg"),
    ),
    OpInfo(
        "adaptive_avg_pool1d",
        F.adaptive_avg_pool1d,
        TF.adaptive_avg_pool1d,
        F.AdaptiveAvgPool2dFunction,
        adaptive_avg_pool1d_samples,
        lambda: _line_errors("adaptive"),
    ),
    OpInfo(
        "adaptive_max_pool1d",
        F.adaptive_max_pool1d,
        TF.adaptive_max_pool1d,
        F.AdaptiveMaxPool2dFunction,
        adaptive_max_pool1d_samples,
        lambda: _line_errors("adaptive"),
    ),
    OpInfo(
        "adaptive_max_pool2d",
        F.adaptive_max_pool2d,
        TF.adaptive_max_pool2d,
        F.AdaptiveMaxPool2dFunction,
        adaptive_max_pool2d_samples,
        adaptive_max_pool2d_errors,
    ),
    OpInfo(
        "max_pool2d",
        F.max_pool2d,
        TF.max_pool2d,
        F.MaxPool2dFunction,
        max_pool2d_samples,
        max_pool2d_errors,
    ),
    OpInfo(
        "avg_pool2d",
        F.avg_pool2d,
        TF.avg_pool2d,
        F.AvgPool2dFunction,
        avg_pool2d_samples,
        avg_pool2d_errors,
    ),
    OpInfo(
        "adaptive_avg_pool2d",
        F.adaptive_avg_pool2d,
        TF.adaptive_avg_pool2d,
        F.AdaptiveAvgPool2dFunction,
        adaptive_avg_pool2d_samples,
        adaptive_avg_pool2d_errors,
    ),
]


def _image(kw, dtype):
    return (tensor(2, 3, 7, 6, dtype=dtype),)


def _line(kw, dtype):
    return (tensor(2, 3, 11, dtype=dtype),)


MODULES = [
    ModuleInfo(
        "MaxPool1d",
        mnn.MaxPool1d,
        torch.nn.MaxPool1d,
        [{"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1, "return_indices": True}],
        _line,
    ),
    ModuleInfo(
        "AvgPool1d",
        mnn.AvgPool1d,
        torch.nn.AvgPool1d,
        [{"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}],
        _line,
    ),
    ModuleInfo(
        "AdaptiveAvgPool1d",
        mnn.AdaptiveAvgPool1d,
        torch.nn.AdaptiveAvgPool1d,
        [{"output_size": 1}, {"output_size": 4}],
        _line,
    ),
    ModuleInfo(
        "AdaptiveMaxPool1d",
        mnn.AdaptiveMaxPool1d,
        torch.nn.AdaptiveMaxPool1d,
        [{"output_size": 1}, {"output_size": 4, "return_indices": True}],
        _line,
    ),
    ModuleInfo(
        "AdaptiveMaxPool2d",
        mnn.AdaptiveMaxPool2d,
        torch.nn.AdaptiveMaxPool2d,
        [{"output_size": 1}, {"output_size": (3, None), "return_indices": True}],
        _image,
    ),
    ModuleInfo(
        "MaxPool2d",
        mnn.MaxPool2d,
        torch.nn.MaxPool2d,
        [
            {"kernel_size": 2},
            {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
            {"kernel_size": (2, 3), "dilation": (2, 1), "return_indices": True},
        ],
        _image,
    ),
    ModuleInfo(
        "AvgPool2d",
        mnn.AvgPool2d,
        torch.nn.AvgPool2d,
        [
            {"kernel_size": 2},
            {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False},
            {"kernel_size": 3, "stride": 2, "ceil_mode": True, "divisor_override": 4},
        ],
        _image,
    ),
    ModuleInfo(
        "AdaptiveAvgPool2d",
        mnn.AdaptiveAvgPool2d,
        torch.nn.AdaptiveAvgPool2d,
        [{"output_size": 1}, {"output_size": (3, None)}, {"output_size": (4, 4)}],
        _image,
    ),
]
