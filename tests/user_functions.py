"""A user's own Functions, one right and one wrong, for ``manualgrad check module:Name``."""

import torch


class Cube(torch.autograd.Function):
    """y = x³. Saved: x. dL/dx = 3x² · dL/dy."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x * x * x

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 3 * x * x * grad


class WrongCube(Cube):
    """y = x³ with the factor 3 forgotten in backward: the checker must catch it."""

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return x * x * grad


class Mul(torch.autograd.Function):
    """y = a·b (broadcasting). Saved: a, b. dL/da = b·g summed to a's shape, likewise b."""

    @staticmethod
    def forward(a, b):
        return a * b

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return (grad * b).sum_to_size(a.shape), (grad * a).sum_to_size(b.shape)
