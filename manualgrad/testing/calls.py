"""Calling a registry op on a sample and collecting its gradients (tests, ``manualgrad check``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from manualgrad.testing.registry import Sample


def float_outputs(result: object) -> list[Tensor]:
    """The floating-point tensors among an op's outputs, in order."""
    items = result if isinstance(result, (tuple, list)) else (result,)
    return [o for o in items if isinstance(o, Tensor) and o.is_floating_point()]


def random_like(tensor: Tensor, generator: torch.Generator, noncontiguous: bool = False) -> Tensor:
    """A random tensor of ``tensor``'s shape and dtype, transposed in memory if asked."""
    if noncontiguous and tensor.dim() >= 2:
        flipped = (*tensor.shape[:-2], tensor.shape[-1], tensor.shape[-2])
        return torch.randn(flipped, dtype=tensor.dtype, generator=generator).transpose(-1, -2)
    return torch.randn(tensor.shape, dtype=tensor.dtype, generator=generator)


def run_with_grads(
    op: Callable[..., object],
    sample: Sample,
    dtype: torch.dtype | None = None,
    only: int | None = None,
    seed: int = 0,
    output_index: int | None = None,
) -> tuple[list[Tensor], list[Tensor | None]]:
    """Run ``op`` on fresh leaves of ``sample``; backpropagate a seeded random output gradient.

    ``output_index`` backpropagates through that output alone (the others get no gradient).
    Returns (outputs, gradient per differentiable arg, ``None`` where it did not get one).
    """
    args = sample.prepared(dtype, only)
    outputs = float_outputs(op(*args, **sample.kwargs))
    generator = torch.Generator().manual_seed(seed)
    grad_outputs = [random_like(o, generator, sample.noncontiguous_grad) for o in outputs]
    leaves = [args[i] for i in sample.differentiable()]
    pairs = [
        (o, g)
        for k, (o, g) in enumerate(zip(outputs, grad_outputs, strict=True))
        if o.requires_grad and (output_index is None or k == output_index)
    ]
    wanted = [leaf for leaf in leaves if leaf.requires_grad]
    grads: dict[int, Tensor | None] = {}
    if pairs and wanted:
        found = torch.autograd.grad(
            [o for o, _ in pairs], wanted, [g for _, g in pairs], allow_unused=True
        )
        grads = {id(leaf): g for leaf, g in zip(wanted, found, strict=True)}
    return [o.detach() for o in outputs], [grads.get(id(leaf)) for leaf in leaves]


def differentiable_call(
    op: Callable[..., object], sample: Sample, args: Sequence[object]
) -> tuple[Callable[..., tuple[Tensor, ...]], tuple[Tensor, ...]]:
    """``op`` as a function of the differentiable args only (for gradcheck), and those args."""
    positions = sample.differentiable()

    def call(*diff: Tensor) -> tuple[Tensor, ...]:
        full = list(args)
        for i, value in zip(positions, diff, strict=True):
            full[i] = value
        return tuple(float_outputs(op(*full, **sample.kwargs)))

    return call, tuple(args[i] for i in positions)
