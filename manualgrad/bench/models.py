"""``models`` suite: real models (:mod:`manualgrad.testing.real_models`: Hugging Face BERT,
GPT-2 and Llama from small configs, a TransformerEncoderLayer stack, a CNN with ConvTranspose2d,
the README's MLP) through ``manualgrad.convert`` against the unconverted model, and the cost of
the :func:`manualgrad.hand_derived` mode itself.

Rows per model (manualgrad = converted, native = the same torch model unconverted):

- ``time``: one training step (zero_grad, forward with the model's own loss, backward,
  ``torch.optim.AdamW`` step; the same optimizer on both sides), interleaved repeats;
- ``saved_bytes``: the storages autograd keeps for backward in one forward
  (:func:`manualgrad.testing.memory.saved_bytes`);
- ``native_nodes``: native compute nodes in the backward graph (:func:`manualgrad.coverage`):
  after convert over before, so the ratio is the share still torch's (0: all hand-derived).

Rows of the mode (``mode``, size ``32x64``), per call, in seconds:

- ``pass-through``: ``x.view(-1)`` (a view: no Function) inside the mode vs outside it;
- ``routed``: ``x.tanh()`` inside the mode (routed to manualgrad's tanh) vs
  ``manualgrad.functional.tanh(x)`` called directly: what the routing adds to a Function call.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable

import torch

import manualgrad
import manualgrad.functional as mF
from manualgrad.bench.ops import compare
from manualgrad.bench.rows import Row
from manualgrad.bench.train import Step
from manualgrad.testing.memory import saved_bytes
from manualgrad.testing.real_models import BUILDERS, RealModel, build


def _step(real: RealModel) -> Step:
    optimizer = torch.optim.AdamW(real.model.parameters(), lr=1e-3)
    return Step(real.model, optimizer, lambda model: dataclasses.replace(real, model=model).loss())


def model_rows(name: str, quick: bool) -> list[Row]:
    """``time``, ``saved_bytes`` and ``native_nodes`` rows of one real model."""
    native = build(name)
    converted = dataclasses.replace(
        native, model=manualgrad.convert(native.model, example_inputs=native.inputs)
    )
    after = converted.model.convert_report.coverage.native_nodes
    before = manualgrad.coverage(native.model, **native.inputs).native_nodes
    size = "x".join(str(s) for s in next(iter(native.inputs.values())).shape)
    ours, theirs = _step(converted), _step(native)
    torch.testing.assert_close(ours(), theirs(), rtol=1e-4, atol=1e-5)  # equal computations
    return [
        compare("models", name, size, {"manualgrad": ours, "native": theirs}, quick),
        Row(
            "models",
            name,
            size,
            "saved_bytes",
            saved_bytes(converted.loss),
            saved_bytes(native.loss),
        ),
        Row("models", name, size, "native_nodes", after, before),
    ]


CALLS = 100  # calls per timed repeat of the mode rows


def _calls(call: Callable[[], object], mode: bool) -> Callable[[], None]:
    def run() -> None:
        with manualgrad.hand_derived() if mode else contextlib.nullcontext():
            for _ in range(CALLS):
                call()

    return run


def mode_rows(quick: bool) -> list[Row]:
    """The mode's cost per call: a call passed through unchanged and a routed one."""
    x = torch.randn(32, 64, requires_grad=True)
    rows = []
    for name, in_mode, outside in (
        ("pass-through", lambda: x.view(-1), lambda: x.view(-1)),
        ("routed", lambda: x.tanh(), lambda: mF.tanh(x)),
    ):
        candidates = {"manualgrad": _calls(in_mode, True), "native": _calls(outside, False)}
        row = compare("models", f"mode {name}", "32x64", candidates, quick)
        per_call = {"manualgrad": row.manualgrad / CALLS, "native": row.native / CALLS}
        rows.append(dataclasses.replace(row, **per_call))
    return rows


def run(quick: bool) -> list[Row]:
    """Rows of every real model, then the mode's."""
    rows = []
    for name in BUILDERS:
        rows.extend(model_rows(name, quick))
    return rows + mode_rows(quick)


__all__ = ["mode_rows", "model_rows", "run"]
