"""Regression guard on memory: bytes saved for backward (deterministic, unlike wall time) at the
benchmark's medium size, manualgrad against the native op, for every registry entry.

``tests/test_functions.py`` checks the same inequality on the registry's tiny samples, where
fixed-size extras (a scalar, an index) can hide a saved full-size tensor; at 256 × 1024 they
cannot. Fused ops (one Function for what torch runs as several) must save strictly less.
"""

from __future__ import annotations

import pytest

from manualgrad.bench.inputs import make
from manualgrad.bench.memory import saved_pair
from tests.registry import OPS

FUSED = frozenset({"linear_relu", "linear_gelu", "linear_cross_entropy"})


@pytest.mark.parametrize("op", [pytest.param(op, id=op.name) for op in OPS])
def test_saved_bytes_at_medium_size_at_most_native(op):
    ours, native = saved_pair(op, make(op.name, "medium"))
    assert ours <= op.saved_bytes_slack * native
    if op.name in FUSED:
        assert ours < native
