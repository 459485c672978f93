"""Numerics at the edges (issue 14): half precision, inf/NaN, indices beyond 2**24, empty
dimensions and torch's own error inputs — each case reproduced against torch."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as TF

import manualgrad.functional as F
import manualgrad.nn as mnn
from tests import torch_oracle
from tests.registry import OPS
from tests.test_fuzz import KNOWN, QUIRK_VALUES

HALF = [torch.float16, torch.bfloat16]


def _forward_and_grads(function, inputs, grad_output=None):
    """function(*inputs) and the gradients of every floating input that requires one."""
    inputs = [
        x.detach().clone().requires_grad_(x.is_floating_point())
        if isinstance(x, torch.Tensor)
        else x
        for x in inputs
    ]
    output = function(*inputs)
    leaves = [x for x in inputs if isinstance(x, torch.Tensor) and x.requires_grad]
    if grad_output is None:
        grad_output = torch.ones_like(output)
    grads = torch.autograd.grad(output, leaves, grad_output, allow_unused=True)
    return output, grads


def assert_like_torch(ours, theirs, inputs, grad_output=None, **tolerance):
    """Forward and every input gradient equal to torch's (NaN where torch gives NaN), dtypes too."""
    out, grads = _forward_and_grads(ours, inputs, grad_output)
    expected, expected_grads = _forward_and_grads(theirs, inputs, grad_output)
    assert out.dtype == expected.dtype
    torch.testing.assert_close(out, expected, equal_nan=True, **tolerance)
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        if expected_grad is None:
            assert grad is None or not grad.any()
            continue
        assert grad.dtype == expected_grad.dtype
        torch.testing.assert_close(grad, expected_grad, equal_nan=True, **tolerance)


def _seeded(*shape, scale=1.0, dtype=torch.float32):
    generator = torch.Generator().manual_seed(0)
    return (scale * torch.randn(*shape, generator=generator)).to(dtype)


# --- half precision: float32 statistics, cast back -------------------------------------------


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize(
    "name, ours, theirs",
    [
        ("layer_norm", lambda x: F.layer_norm(x, (64,)), lambda x: TF.layer_norm(x, (64,))),
        ("rms_norm", lambda x: F.rms_norm(x, (64,)), lambda x: TF.rms_norm(x, (64,))),
        ("group_norm", lambda x: F.group_norm(x, 2), lambda x: TF.group_norm(x, 2)),
        (
            "batch_norm",
            lambda x: F.batch_norm(x, None, None, training=True),
            lambda x: TF.batch_norm(x, None, None, training=True),
        ),
    ],
)
def test_norm_gradients_of_small_half_inputs_are_finite(dtype, name, ours, theirs):
    x, grad_output = _seeded(4, 64, scale=0.01, dtype=dtype), _seeded(4, 64, dtype=dtype)
    out, (grad,) = _forward_and_grads(ours, [x], grad_output)
    assert grad.isfinite().all()
    expected, (expected_grad,) = _forward_and_grads(theirs, [x], grad_output)
    assert out.dtype == expected.dtype and grad.dtype == expected_grad.dtype
    exact, (exact_grad,) = _forward_and_grads(theirs, [x.double()], grad_output.double())
    for value, torchs, true in ((out, expected, exact), (grad, expected_grad, exact_grad)):
        # at least as close to the float64 result as torch's own half-precision kernel
        error, torch_error = ((v.double() - true).abs().max() for v in (value, torchs))
        assert error <= 1.5 * torch_error + 1e-3 * true.abs().max()


@pytest.mark.parametrize("dtype", HALF)
def test_layer_norm_of_large_half_inputs_is_not_zero(dtype):
    x = _seeded(2, 8, scale=1000.0, dtype=dtype)
    out = F.layer_norm(x, (8,))
    assert out.abs().sum() > 1
    torch.testing.assert_close(out, TF.layer_norm(x, (8,)), atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize("dtype", HALF)
def test_rms_norm_default_eps_is_float32s_for_half_inputs(dtype):
    x = _seeded(3, 16, scale=1e-3, dtype=dtype)
    torch.testing.assert_close(F.rms_norm(x, (16,)), TF.rms_norm(x, (16,)), atol=2e-2, rtol=2e-2)
    module, reference = mnn.RMSNorm(16).to(dtype), torch.nn.RMSNorm(16).to(dtype)
    torch.testing.assert_close(module(x), reference(x), atol=2e-2, rtol=2e-2)


def test_batch_norm_eval_keeps_the_half_input_dtype_with_float32_stats():
    x = _seeded(4, 3, 5, dtype=torch.bfloat16)
    mean, var = torch.randn(3), torch.rand(3) + 0.5
    ours = F.batch_norm(x, mean, var, torch.randn(3), torch.randn(3))
    theirs = TF.batch_norm(x, mean, var, torch.randn(3), torch.randn(3))
    assert ours.dtype == theirs.dtype == torch.bfloat16


def test_softplus_in_float16_does_not_overflow_below_the_threshold():
    x = torch.tensor([5.0, 11.5, 12.0, 15.0, 19.9, 25.0], dtype=torch.float16)
    assert_like_torch(F.softplus, TF.softplus, [x], atol=1e-2, rtol=1e-3)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh")),
        (
            lambda x: F.linear_gelu(x, torch.eye(3, dtype=x.dtype), approximate="tanh"),
            lambda x: TF.gelu(TF.linear(x, torch.eye(3, dtype=x.dtype)), approximate="tanh"),
        ),
    ],
)
def test_tanh_gelu_gradient_at_large_float16_values_is_finite(ours, theirs):
    x = torch.tensor([[-300.0, 0.5, 300.0]], dtype=torch.float16)
    assert_like_torch(ours, theirs, [x], atol=1e-3, rtol=1e-3)


def test_avg_pool2d_window_sum_in_float16_does_not_overflow():
    x = torch.full((1, 1, 4, 4), 30000.0, dtype=torch.float16)
    assert_like_torch(lambda x: F.avg_pool2d(x, 4), lambda x: TF.avg_pool2d(x, 4), [x])


# --- inf and NaN ------------------------------------------------------------------------------


def test_adaptive_avg_pool2d_keeps_an_inf_in_its_windows():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 4, 4] = float("inf")
    assert_like_torch(
        lambda x: F.adaptive_avg_pool2d(x, 3), lambda x: TF.adaptive_avg_pool2d(x, 3), [x]
    )


SPECIAL = torch.tensor([float("inf"), float("-inf"), float("nan"), 0.0, -2.0, 3.0])


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (F.elu, TF.elu),
        (F.relu, TF.relu),
        (F.hardtanh, TF.hardtanh),
        (F.leaky_relu, TF.leaky_relu),
        (lambda x: F.leaky_relu(x, 0.0), lambda x: TF.leaky_relu(x, 0.0)),
    ],
    ids=["elu", "relu", "hardtanh", "leaky_relu", "leaky_relu_slope0"],
)
def test_activation_values_and_gradients_at_special_values_match_torch(ours, theirs):
    assert_like_torch(ours, theirs, [SPECIAL])


# --- indices beyond 2**24 ---------------------------------------------------------------------


def test_max_pool2d_index_beyond_float32_integer_range():
    # the winner's offset in its window is one row down: W = 2**24 + 1, not a float32; one
    # window (stride W), so only the index arithmetic is large
    width = 2**24 + 1
    x = torch.zeros(1, 1, 2, width)
    x[0, 0, 1, 0] = 1.0
    x.requires_grad_()
    values, indices = F.max_pool2d(x, (2, 1), stride=(2, width), return_indices=True)
    _, expected_indices = TF.max_pool2d(x, (2, 1), stride=(2, width), return_indices=True)
    assert indices.shape == expected_indices.shape == (1, 1, 1, 1)
    assert indices[0, 0, 0, 0].item() == expected_indices[0, 0, 0, 0].item() == width
    (grad,) = torch.autograd.grad(values.sum(), x)
    assert grad[0, 0, 1, 0].item() == 1.0


# --- empty dimensions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ours, theirs, shapes",
    [
        (F.linear, TF.linear, [(3, 0), (4, 0), (4,)]),
        (F.linear, TF.linear, [(3, 2), (0, 2), (0,)]),
        (lambda x: F.layer_norm(x, (0,)), lambda x: TF.layer_norm(x, (0,)), [(3, 0)]),
        (lambda x: F.rms_norm(x, (0,)), lambda x: TF.rms_norm(x, (0,)), [(3, 0)]),
        (F.conv2d, TF.conv2d, [(1, 0, 4, 4), (2, 0, 3, 3)]),
        (
            lambda x: F.batch_norm(x, None, None, training=True),
            lambda x: TF.batch_norm(x, None, None, training=True),
            [(4, 0)],
        ),
    ],
    ids=["linear_in0", "linear_out0", "layer_norm", "rms_norm", "conv_in_channels0", "bn_4x0"],
)
def test_zero_size_dims_forward_and_backward_like_torch(ours, theirs, shapes):
    inputs = [_seeded(*shape) for shape in shapes]
    assert_like_torch(ours, theirs, inputs)


@pytest.mark.parametrize("training", [False, True])
def test_batch_norm_on_an_empty_1d_input_is_empty_like_torch(training):
    assert_like_torch(
        lambda x: F.batch_norm(x, torch.zeros(0), torch.ones(0), training=training),
        lambda x: TF.batch_norm(x, torch.zeros(0), torch.ones(0), training=training),
        [torch.zeros(0)],
    )


@pytest.mark.parametrize(
    "loss", [F.mse_loss, F.binary_cross_entropy_with_logits], ids=["mse", "bce_logits"]
)
def test_double_backward_on_empty_inputs(loss):
    x = torch.zeros(0, 3, dtype=torch.float64, requires_grad=True)
    target = torch.zeros(0, 3, dtype=torch.float64)
    assert torch.autograd.gradgradcheck(lambda x: loss(x, target), (x,))


# --- validation parity: torch's exception type ------------------------------------------------


def _raises_like_torch(ours, theirs, *args, **kwargs):
    with pytest.raises(Exception) as expected:
        theirs(*args, **kwargs)
    with pytest.raises(type(expected.value)):
        ours(*args, **kwargs)


@pytest.mark.parametrize(
    "ours, theirs, args, kwargs",
    [
        (F.max_pool2d, TF.max_pool2d, (torch.randn(1, 1, 8, 8), 2), {"padding": 2}),
        (
            F.max_pool2d,
            TF.max_pool2d,
            (torch.randn(1, 1, 8, 8), 3),
            {"padding": 2, "dilation": 2},
        ),
        (
            F.batch_norm,
            TF.batch_norm,
            (torch.randn(4, 3), torch.zeros(3), torch.ones(3)),
            {"training": True, "eps": 0.0},
        ),
        (F.group_norm, TF.group_norm, (torch.randn(1, 4), 4), {}),
        (F.linear, TF.linear, (torch.randn(2, 3), torch.randn(3), torch.tensor(1.0)), {}),
        (F.conv1d, TF.conv1d, (torch.randn(1, 2, 3, 8), torch.randn(4, 2, 3)), {}),
        (F.conv2d, TF.conv2d, (torch.randn(2, 8), torch.randn(4, 2, 3, 3)), {}),
        (F.conv2d, TF.conv2d, (torch.randn(1, 2, 3, 8, 8), torch.randn(4, 2, 3, 3)), {}),
        (F.adaptive_avg_pool2d, TF.adaptive_avg_pool2d, (torch.randn(1, 4, 4), (2, 2, 2)), {}),
    ],
    ids=[
        "max_pool2d_padding",
        "max_pool2d_padding_dilated",
        "batch_norm_eps0",
        "group_norm_one_per_group",
        "linear_1d_weight_0d_bias",
        "conv1d_rank",
        "conv2d_rank_low",
        "conv2d_rank_high",
        "adaptive_avg_pool2d_output_size",
    ],
)
def test_bad_inputs_raise_torchs_exception_type(ours, theirs, args, kwargs):
    _raises_like_torch(ours, theirs, *args, **kwargs)


def test_embedding_max_norm_with_int32_indices():
    weight = _seeded(5, 3, scale=3.0)
    indices = torch.tensor([0, 2, 2, 4], dtype=torch.int32)
    ours_weight, theirs_weight = weight.clone(), weight.clone()
    ours = F.embedding(indices, ours_weight, max_norm=1.0)
    theirs = TF.embedding(indices, theirs_weight, max_norm=1.0)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(ours_weight, theirs_weight)


# --- the whole registry: half precision, special values, zero-size dims, torch as the oracle ----


def _registry_params():
    return [
        pytest.param(
            op,
            id=op.name,
            marks=[pytest.mark.xfail(reason=KNOWN[op.name], strict=False)]
            if op.name in KNOWN
            else [],
        )
        for op in OPS
    ]


def _edge_cases(op):
    """The op's first sample in float16 and bfloat16; in float32 with ±inf, NaN and ±large at
    the input's first and last elements; with the input's first and last dims emptied."""
    sample = op.seeded_samples(torch.float64)[0]
    for dtype in HALF:
        yield torch_oracle.in_dtype(sample, dtype)
    single = torch_oracle.in_dtype(sample, torch.float32)
    for position in single.differentiable()[:1]:
        for value in (float("-inf"), float("nan"), 1e4, -1e4):
            if value not in QUIRK_VALUES.get(op.name, ()):
                yield torch_oracle.with_values(
                    torch_oracle.with_values(single, position, 0, value), position, -1, value
                )
        if float("inf") not in QUIRK_VALUES.get(op.name, ()):
            yield torch_oracle.with_values(single, position, 0, float("inf"))
    first = next((a for a in sample.args if isinstance(a, torch.Tensor) and a.dim()), None)
    if first is not None:
        position = sample.args.index(first)
        for dim in {0, first.dim() - 1}:
            args = list(sample.args)
            args[position] = first.narrow(dim, 0, 0).clone()
            yield dataclasses.replace(sample, args=tuple(args))


@pytest.mark.parametrize("op", _registry_params())
def test_registry_edge_cases_match_torch(op):
    for case in _edge_cases(op):
        torch_oracle.check(op, case)
