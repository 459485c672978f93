"""Registry entries (see manualgrad.testing.registry): copies and indexing."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as TF
from torch import Tensor

import manualgrad.functional as F
from manualgrad.testing.entries._specs import t, table
from manualgrad.testing.registry import ErrorCase, OpInfo


def _sequence_op(op):
    """``op(tensors, dim)`` with the tensors passed positionally (so each is a sample arg)."""

    def call(*tensors: Tensor, dim: int = 0) -> Tensor:
        return op(tensors, dim)

    return call


def _getitem(input: Tensor, key: object) -> Tensor:
    return input[key]


def _repeat(input: Tensor, *sizes: int) -> Tensor:
    return input.repeat(*sizes)


_ROWS = torch.tensor([0, 2, 0])
_PICKS = torch.tensor([[0, 2, 0], [1, 1, 1]])
_PERMUTATION = torch.tensor([[2, 0, 1], [1, 2, 0]])
_MASK = torch.tensor([[True, False, True, False], [False, False, True, True], [True] * 4])


def _pad_errors() -> Iterator[ErrorCase]:
    image = torch.randn(1, 2, 3)
    yield ErrorCase((image, (1,)), {}, RuntimeError, "`pad`")
    yield ErrorCase((image, (1, 1)), {"mode": "mirror"}, NotImplementedError, "`mode`")
    yield ErrorCase((image, (3, 0)), {"mode": "reflect"}, RuntimeError, "`pad`")
    yield ErrorCase((image, (1, 1) * 3), {"mode": "replicate"}, NotImplementedError, "`pad`")


def _repeat_errors() -> Iterator[ErrorCase]:
    yield ErrorCase((torch.randn(2, 3), 2), {}, RuntimeError, "`sizes`")


OPS = [
    OpInfo(
        "cat",
        _sequence_op(F.cat),
        _sequence_op(torch.cat),
        F.CatFunction,
        table(
            ("last_dim", (t(2, 3), t(2, 1), t(2, 2, noncontiguous=True)), {"dim": -1}),
            ("legacy_empty", (t(2, 3), t(0)), {}),
        ),
        compile=True,
    ),
    OpInfo(
        "stack",
        _sequence_op(F.stack),
        _sequence_op(torch.stack),
        F.StackFunction,
        table(("middle_dim", (t(2, 3), t(2, 3)), {"dim": 1})),
    ),
    OpInfo(
        "gather",
        F.gather,
        torch.gather,
        F.GatherFunction,
        table(("repeated_picks", (t(2, 3), 1, _PICKS), {})),
    ),
    OpInfo(
        "index_select",
        F.index_select,
        torch.index_select,
        F.GatherFunction,
        table(("repeated_rows", (t(3, 4, noncontiguous=True), 0, _ROWS), {})),
    ),
    OpInfo(
        "scatter",
        F.scatter,
        torch.scatter,
        F.ScatterFunction,
        table(
            ("src", (t(2, 4), 1, _PERMUTATION, t(2, 3)), {}),
            ("value", (t(2, 4), 1, _PERMUTATION), {"value": 2.0}),
        ),
    ),
    OpInfo(
        "scatter_add",
        F.scatter_add,
        torch.scatter_add,
        F.ScatterFunction,
        table(("repeated_targets", (t(2, 3), 1, _PICKS, t(2, 3)), {})),
    ),
    OpInfo(
        "index",
        F.index,
        _getitem,
        F.IndexFunction,
        table(
            ("rows", (t(3, 4), (_ROWS,)), {}),
            ("after_int_and_slice", (t(2, 3, 4), (0, slice(1, None), _ROWS[:2])), {}),
            ("split_indices", (t(3, 2, 4), (_ROWS, slice(None), torch.tensor([1, 3, 3]))), {}),
            ("mask", (t(3, 4), (_MASK,)), {}),
        ),
    ),
    OpInfo(
        "pad",
        F.pad,
        TF.pad,
        F.PadFunction,
        table(
            ("constant_crop", (t(2, 3), (-1, 2, 1, 0)), {"value": 0.5}),
            ("reflect", (t(1, 2, 4), (2, 1)), {"mode": "reflect"}),
            ("replicate", (t(1, 2, 3, noncontiguous=True), (2, 1, 0, 1)), {"mode": "replicate"}),
            ("circular", (t(1, 2, 3), (3, 1)), {"mode": "circular"}),
        ),
        _pad_errors,
    ),
    OpInfo(
        "repeat",
        F.repeat,
        _repeat,
        F.RepeatFunction,
        table(("new_leading_dim", (t(2, 3), 2, 1, 3), {})),
        _repeat_errors,
    ),
    OpInfo(
        "roll",
        F.roll,
        torch.roll,
        F.RollFunction,
        table(
            ("flattened", (t(2, 3), 2), {}),
            ("dims", (t(2, 3, noncontiguous=True), (1, -2), (0, 1)), {}),
        ),
    ),
    OpInfo(
        "flip",
        F.flip,
        torch.flip,
        F.FlipFunction,
        table(("two_dims", (t(2, 3, 4, noncontiguous=True), (0, -1)), {})),
    ),
    OpInfo("tril", F.tril, torch.tril, F.TriangleFunction, table(("square", (t(3, 3),), {}))),
    OpInfo(
        "triu",
        F.triu,
        torch.triu,
        F.TriangleFunction,
        table(("batched_offset", (t(2, 3, 4),), {"diagonal": -1})),
    ),
]

MODULES: list = []
