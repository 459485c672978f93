"""Registry entries (see manualgrad.testing.registry): matrix products."""

from __future__ import annotations

from collections.abc import Iterator

import torch

import manualgrad.functional as F
from manualgrad.testing.entries._specs import t, table
from manualgrad.testing.registry import ErrorCase, OpInfo


def _rank_errors(good: tuple[int, ...], bad: tuple[int, ...], argument: str):
    def errors() -> Iterator[ErrorCase]:
        yield ErrorCase((torch.randn(*bad), torch.randn(*good)), {}, RuntimeError, "`input`")
        yield ErrorCase((torch.randn(*good), torch.randn(*bad)), {}, RuntimeError, argument)

    return errors


def _bmm_errors() -> Iterator[ErrorCase]:
    yield from _rank_errors((2, 3, 3), (3, 3), "`mat2`")()
    yield ErrorCase((torch.randn(2, 3, 3), torch.randn(1, 3, 3)), {}, RuntimeError, "`mat2`")


def _einsum_errors() -> Iterator[ErrorCase]:
    yield ErrorCase(("ii->i", torch.randn(2, 2)), {}, NotImplementedError, "`equation`")


OPS = [
    OpInfo(
        "matmul",
        F.matmul,
        torch.matmul,
        F.MatmulFunction,
        table(
            ("dot", (t(3), t(3)), {}),
            ("matrix_vector", (t(2, 3), t(3)), {}),
            ("vector_batched", (t(3), t(2, 3, 2)), {}),
            ("batched_matrix", (t(2, 2, 3), t(3, 4)), {}),
            ("broadcast_batches", (t(2, 1, 2, 3), t(3, 3, 2, noncontiguous=True)), {}),
        ),
        compile=True,
    ),
    OpInfo(
        "mm",
        F.mm,
        torch.mm,
        F.MatmulFunction,
        table(("regular", (t(2, 3), t(3, 4, noncontiguous=True)), {})),
        _rank_errors((2, 2), (2, 2, 2), "`mat2`"),
    ),
    OpInfo(
        "mv",
        F.mv,
        torch.mv,
        F.MatmulFunction,
        table(("regular", (t(2, 3), t(3, noncontiguous=True)), {})),
        _rank_errors((2, 2), (2, 2, 2), "`vec`"),
    ),
    OpInfo(
        "vdot",
        F.vdot,
        torch.vdot,
        F.MatmulFunction,
        table(("regular", (t(4), t(4, noncontiguous=True)), {})),
        _rank_errors((3,), (3, 3), "`other`"),
    ),
    OpInfo(
        "bmm",
        F.bmm,
        torch.bmm,
        F.MatmulFunction,
        table(("regular", (t(2, 2, 3), t(2, 3, 2)), {})),
        _bmm_errors,
    ),
    OpInfo(
        "addmm",
        F.addmm,
        torch.addmm,
        F.AddmmFunction,
        table(
            ("bias_row", (t(4), t(3, 2), t(2, 4)), {}),
            ("scaled", (t(3, 4), t(3, 2), t(2, 4, noncontiguous=True)), {"beta": 0.5, "alpha": 2}),
        ),
    ),
    OpInfo(
        "baddbmm",
        F.baddbmm,
        torch.baddbmm,
        F.AddmmFunction,
        table(("broadcast_input", (t(1, 2, 4), t(3, 2, 2), t(3, 2, 4)), {"alpha": -1.5})),
    ),
    OpInfo(
        "einsum",
        F.einsum,
        torch.einsum,
        F.EinsumFunction,
        table(
            ("attention_scores", ("bhqd,bhkd->bhqk", t(1, 2, 3, 2), t(1, 2, 4, 2)), {}),
            ("implicit_output", ("ij,jk", t(2, 3), t(3, 2)), {}),
            ("ellipsis_broadcast", ("...ij,...jk->...ik", t(2, 1, 2, 3), t(3, 3, 2)), {}),
            ("transpose", ("bij->bji", t(2, 3, 2)), {}),
        ),
        _einsum_errors,
    ),
    OpInfo("outer", F.outer, torch.outer, F.OuterFunction, table(("regular", (t(3), t(2)), {}))),
]

MODULES: list = []
