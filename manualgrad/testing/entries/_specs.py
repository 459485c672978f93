"""Compact sample tables for the elementary-op entries (arithmetic, reductions, products,
indexing): a sample is written as ``(name, args, kwargs)`` with :class:`T` standing for a random
tensor, so a family's samples read as a table."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from manualgrad.testing.registry import Sample, SampleGenerator, tensor


@dataclass(frozen=True)
class T:
    """A random tensor of ``shape`` with values in [low, high] (zero excluded), transposed in
    memory when ``noncontiguous``."""

    shape: tuple[int, ...]
    low: float = -2
    high: float = 2
    noncontiguous: bool = False

    def make(self, dtype: torch.dtype) -> torch.Tensor:
        """Draw it in ``dtype``."""
        return tensor(
            *self.shape,
            dtype=dtype,
            low=self.low,
            high=self.high,
            noncontiguous=self.noncontiguous,
            exclude_zero=True,
        )


def t(*shape: int, low: float = -2, high: float = 2, noncontiguous: bool = False) -> T:
    """``T`` with the shape given as positional ints."""
    return T(shape, low, high, noncontiguous)


Case = tuple[str, Sequence[object], dict]


def table(*cases: Case) -> SampleGenerator:
    """Samples from ``(name, args, kwargs)`` rows: each :class:`T` in ``args`` is drawn in the
    requested dtype, anything else is passed as it is; a row with a non-contiguous tensor also
    gets a non-contiguous output gradient."""

    def samples(dtype: torch.dtype) -> Iterator[Sample]:
        for name, args, kwargs in cases:
            drawn = tuple(a.make(dtype) if isinstance(a, T) else a for a in args)
            transposed = any(isinstance(a, T) and a.noncontiguous for a in args)
            yield Sample(name, drawn, dict(kwargs), noncontiguous_grad=transposed)

    return samples
