"""The registry that drives every generic test and ``manualgrad check``: one ``OpInfo`` per
Function, one ``ModuleInfo`` per module. Adding a layer = a Function + a module + one entry in
``manualgrad/testing/entries/<family>.py`` (``tests/registry.py`` re-exports this module).

Entries live in one file per family so that families can be added independently; ``OPS`` and
``MODULES`` below collect them all.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.testing import make_tensor

SampleGenerator = Callable[[torch.dtype], Iterator["Sample"]]


@dataclass
class Sample:
    """One call: ``op(*args, **kwargs)``. Floating tensors in ``args`` are differentiable unless
    their index is in ``constant``. ``name`` says what the sample exercises."""

    name: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    constant: frozenset[int] = frozenset()
    noncontiguous_grad: bool = False

    def differentiable(self) -> list[int]:
        """Indices of the args that get a gradient."""
        return [
            i
            for i, a in enumerate(self.args)
            if isinstance(a, Tensor) and a.is_floating_point() and i not in self.constant
        ]

    def prepared(self, dtype: torch.dtype | None = None, only: int | None = None) -> list:
        """Fresh leaves (cast to ``dtype`` if given); ``only`` restricts requires_grad to one."""
        args = []
        for i, a in enumerate(self.args):
            if isinstance(a, Tensor):
                a = a.detach().clone() if a.is_contiguous() else _same_strides(a)
                if dtype is not None and a.is_floating_point():
                    a = a.to(dtype) if a.is_contiguous() else _same_strides(a.to(dtype))
                wanted = i in self.differentiable() and (only is None or only == i)
                a.requires_grad_(wanted)
            args.append(a)
        return args


def _same_strides(tensor: Tensor) -> Tensor:
    """A detached copy that keeps ``tensor``'s non-contiguous layout (transposed last dims)."""
    base = tensor.detach().transpose(-1, -2).contiguous().clone()
    return base.transpose(-1, -2)


@dataclass
class ErrorCase:
    """A bad call: ``op(*args, **kwargs)`` must raise ``error``, its message matching ``match``."""

    args: tuple
    kwargs: dict
    error: type[Exception]
    match: str


@dataclass
class OpInfo:
    """A manualgrad functional op, its torch reference and how to sample it."""

    name: str
    op: Callable[..., object]
    reference: Callable[..., object]
    function: type[torch.autograd.Function]
    samples: SampleGenerator
    errors: Callable[[], Iterator[ErrorCase]] | None = None
    gradcheck: bool = True
    gradgradcheck: bool = True  # False: first-order only (e.g. gradients saved as constants)
    vmap: bool = True
    compile: bool = False
    atol: float = 1e-5
    rtol: float = 1.3e-6
    saved_bytes_slack: float = 1.0

    def seeded_samples(self, dtype: torch.dtype) -> list[Sample]:
        """``samples(dtype)`` drawn from an RNG seeded by the op's name, so an op's samples do
        not change when entries are added before it (the global RNG state is left untouched)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(zlib.crc32(self.name.encode()))
            return list(self.samples(dtype))


@dataclass
class ModuleInfo:
    """A manualgrad module class, its torch twin, constructor kwargs and an input maker."""

    name: str
    module: type[torch.nn.Module]
    reference: type[torch.nn.Module]
    kwargs: list[dict]
    inputs: Callable[[dict, torch.dtype], tuple]
    atol: float = 1e-5
    rtol: float = 1.3e-6


def tensor(
    *shape: int,
    dtype: torch.dtype = torch.float64,
    low: float = -2,
    high: float = 2,
    noncontiguous: bool = False,
    exclude_zero: bool = False,
) -> Tensor:
    """A random tensor (torch.testing.make_tensor) — non-contiguous means transposed last dims."""
    if noncontiguous and len(shape) >= 2:
        flipped = (*shape[:-2], shape[-1], shape[-2])
        base = make_tensor(
            flipped, dtype=dtype, device="cpu", low=low, high=high, exclude_zero=exclude_zero
        )
        return base.transpose(-1, -2)
    return make_tensor(
        shape, dtype=dtype, device="cpu", low=low, high=high, exclude_zero=exclude_zero
    )


def elementwise_samples(low: float = -2, high: float = 2, **kwargs: object) -> SampleGenerator:
    """Regular, empty, size-1, 0-d and non-contiguous inputs for an element-wise op."""

    def samples(dtype: torch.dtype) -> Iterator[Sample]:
        def make(*shape: int, noncontiguous: bool = False) -> Tensor:
            return tensor(
                *shape,
                dtype=dtype,
                low=low,
                high=high,
                noncontiguous=noncontiguous,
                exclude_zero=True,
            )

        yield Sample("regular", (make(3, 4),), dict(kwargs))
        yield Sample("empty", (make(0, 3),), dict(kwargs))
        yield Sample("size1", (make(1),), dict(kwargs))
        yield Sample("scalar", (make(),), dict(kwargs))
        yield Sample(
            "noncontiguous",
            (make(2, 3, 4, noncontiguous=True),),
            dict(kwargs),
            noncontiguous_grad=True,
        )

    return samples


def _collect() -> tuple[list[OpInfo], list[ModuleInfo]]:
    from manualgrad.testing.entries import (
        activations,
        attention,
        conv,
        dropout,
        embedding,
        fused,
        linear,
        losses,
        normalization,
        pooling,
    )

    families = [
        linear,
        activations,
        dropout,
        embedding,
        attention,
        losses,
        conv,
        pooling,
        normalization,
        fused,
    ]
    ops = [op for family in families for op in family.OPS]
    modules = [module for family in families for module in family.MODULES]
    return ops, modules


OPS, MODULES = _collect()
