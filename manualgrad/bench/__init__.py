"""Benchmarks: manualgrad against native PyTorch, side by side, ratios only (the command is
:mod:`manualgrad.commands.bench`).

Each suite is a module of this package exposing ``run(quick: bool) -> list[Row]``
(:class:`~manualgrad.bench.rows.Row`); a new suite is one module and one name in
:data:`SUITES`. This package module imports no torch, so the command lists the suites before
importing it.
"""

from __future__ import annotations

from importlib import import_module

from manualgrad.bench.rows import Row

SUITES = ("ops", "memory", "optim", "train", "models")


def run_suites(names: list[str], quick: bool) -> list[Row]:
    """Run the named suites and return all their rows."""
    rows: list[Row] = []
    for name in names:
        rows.extend(import_module(f"manualgrad.bench.{name}").run(quick=quick))
    return rows


__all__ = ["SUITES", "Row", "run_suites"]
