"""Options the registry matrix cannot express: ``inplace=True`` (accepted, computed out of place)
and softmax's legacy ``dim=None`` rule with torch's deprecation warning."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as TF

import manualgrad.functional as F
import manualgrad.nn as mnn

INPLACE_OPS = [
    pytest.param(F.relu, TF.relu, {}, id="relu"),
    pytest.param(F.leaky_relu, TF.leaky_relu, {"negative_slope": 0.2}, id="leaky_relu"),
    pytest.param(F.elu, TF.elu, {"alpha": 0.5}, id="elu"),
    pytest.param(F.silu, TF.silu, {}, id="silu"),
    pytest.param(F.hardtanh, TF.hardtanh, {"min_val": -0.5, "max_val": 0.5}, id="hardtanh"),
]


@pytest.mark.parametrize(("op", "reference", "kwargs"), INPLACE_OPS)
def test_inplace_flag_is_accepted_and_leaves_the_input_intact(op, reference, kwargs):
    z = torch.randn(3, 4, requires_grad=True)
    before = z.detach().clone()
    y = op(z, inplace=True, **kwargs)
    torch.testing.assert_close(z.detach(), before, rtol=0, atol=0)
    torch.testing.assert_close(y, reference(before, **kwargs))
    (grad,) = torch.autograd.grad(y.sum(), z)
    assert grad.shape == z.shape


@pytest.mark.parametrize(
    "module",
    [
        mnn.ReLU(True),
        mnn.LeakyReLU(0.1, True),
        mnn.ELU(1.0, True),
        mnn.SiLU(True),
        mnn.Hardtanh(inplace=True),
    ],
    ids=lambda module: type(module).__name__,
)
def test_inplace_modules_keep_torch_repr_and_compute_out_of_place(module):
    assert "inplace=True" in repr(module)
    z = torch.randn(2, 3)
    before = z.clone()
    module(z)
    torch.testing.assert_close(z, before, rtol=0, atol=0)


def _implicit(fn, z):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(z)
    return result, caught


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [(F.softmax, TF.softmax), (F.log_softmax, TF.log_softmax)],
    ids=["softmax", "log_softmax"],
)
@pytest.mark.parametrize("shape", [(), (4,), (2, 3), (2, 3, 4), (2, 3, 2, 2)], ids=len)
def test_implicit_dim_follows_torch_with_the_same_warning_at_the_caller(ours, theirs, shape):
    z = torch.randn(shape)
    result, caught = _implicit(ours, z)
    expected, expected_caught = _implicit(theirs, z)
    torch.testing.assert_close(result, expected)
    assert [str(w.message) for w in caught] == [str(w.message) for w in expected_caught]
    assert [w.category for w in caught] == [w.category for w in expected_caught]
    assert [w.filename for w in caught] == [__file__]


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [(mnn.Softmax, torch.nn.Softmax), (mnn.LogSoftmax, torch.nn.LogSoftmax)],
    ids=["Softmax", "LogSoftmax"],
)
def test_module_without_dim_warns_like_torch(ours, theirs):
    z = torch.randn(2, 3, 4)
    result, caught = _implicit(ours(), z)
    expected, expected_caught = _implicit(theirs(), z)
    torch.testing.assert_close(result, expected)
    assert [str(w.message) for w in caught] == [str(w.message) for w in expected_caught]
    assert [(w.filename, w.lineno) for w in caught] == [
        (w.filename, w.lineno) for w in expected_caught
    ]
