"""Options the registry matrix cannot express: ``inplace=True`` (accepted, computed out of place)
for every activation the catalogue (``manualgrad.train.activations``) marks ``inplace``, and
softmax's legacy ``dim=None`` rule with torch's deprecation warning."""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch
import torch.nn.functional as TF

import manualgrad.functional as F
import manualgrad.nn as mnn
from manualgrad.train.activations import CATALOGUE

INPLACE = [a for a in CATALOGUE if a.inplace]
# non-default arguments, so the flag is tested away from the defaults too
KWARGS = {
    "leaky_relu": {"negative_slope": 0.2},
    "elu": {"alpha": 0.5},
    "celu": {"alpha": 0.5},
    "hardtanh": {"min_val": -0.5, "max_val": 0.5},
}


def test_catalogue_inplace_flags_follow_torch():
    for entry in CATALOGUE:
        # torch's class where it has one (Step is manualgrad's own)
        cls = getattr(torch.nn, entry.module, getattr(mnn, entry.module))
        takes = "inplace" in inspect.signature(cls).parameters
        assert entry.inplace == takes, entry.name


@pytest.mark.parametrize("entry", INPLACE, ids=lambda a: a.name)
def test_inplace_flag_is_accepted_and_leaves_the_input_intact(entry):
    op, reference, kwargs = getattr(F, entry.op), getattr(TF, entry.op), KWARGS.get(entry.name, {})
    z = torch.randn(3, 4, requires_grad=True)
    before = z.detach().clone()
    y = op(z, inplace=True, **kwargs)
    torch.testing.assert_close(z.detach(), before, rtol=0, atol=0)
    torch.testing.assert_close(y, reference(before, **kwargs))
    (grad,) = torch.autograd.grad(y.sum(), z)
    assert grad.shape == z.shape


@pytest.mark.parametrize("entry", INPLACE, ids=lambda a: a.module)
def test_inplace_modules_keep_torch_repr_and_compute_out_of_place(entry):
    module = getattr(mnn, entry.module)(inplace=True, **entry.kwargs)
    # torch's repr, which shows the flag where torch's extra_repr does (not Mish, Hardswish...)
    assert repr(module) == repr(getattr(torch.nn, entry.module)(inplace=True, **entry.kwargs))
    assert module.inplace
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
