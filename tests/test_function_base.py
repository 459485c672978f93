"""``manualgrad.functional._function.Function``: torch's ``apply`` semantics, with the eager
fully-positional call skipping the argument binding."""

from __future__ import annotations

import pytest
import torch

from manualgrad.functional._function import Function


class Scale(Function):
    """y = s·x;  dL/dx = s·dL/dy."""

    generate_vmap_rule = True

    @staticmethod
    def forward(input, scale=2.0):
        return input * scale

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, ctx.scale = inputs  # needs every input, defaults included

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output * ctx.scale, None


@pytest.mark.parametrize(
    "call",
    [
        lambda x: Scale.apply(x, 3.0),  # fast path
        lambda x: Scale.apply(x, scale=3.0),  # keyword: torch's binding
    ],
    ids=["positional", "keyword"],
)
def test_apply_matches_torch_semantics(call):
    x = torch.randn(4, requires_grad=True)
    y = call(x)
    (grad,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(y, 3 * x)
    torch.testing.assert_close(grad, torch.full_like(x, 3.0))


def test_missing_arguments_get_forward_defaults():
    x = torch.randn(4, requires_grad=True)
    (grad,) = torch.autograd.grad(Scale.apply(x).sum(), x)
    torch.testing.assert_close(grad, torch.full_like(x, 2.0))


def test_eager_positional_call_skips_the_binding(monkeypatch):
    def no_binding(*args, **kwargs):
        raise AssertionError("torch binding ran")

    x = torch.randn(4, requires_grad=True)
    with monkeypatch.context() as patch:
        patch.setattr(torch.autograd.Function, "apply", classmethod(no_binding))
        y = Scale.apply(x, 3.0)
        with pytest.raises(AssertionError, match="torch binding ran"):
            Scale.apply(x)
    assert type(y.grad_fn).__name__ == "ScaleBackward"


def test_transforms_take_torchs_path():
    x = torch.randn(3, 4)
    batched = torch.func.vmap(lambda row: Scale.apply(row, 3.0))(x)
    torch.testing.assert_close(batched, 3 * x)
