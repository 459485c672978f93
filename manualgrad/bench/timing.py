"""Side-by-side timing: interleaved repeats, medians and inter-quartile ranges.

Every benchmark in manualgrad compares a manualgrad callable with its native torch twin measured
in the same process, alternating between them so that drift (thermal, other processes) hits both
equally. Only ratios are reported.

The clock is the wall clock by default; :func:`clock` ("cpu") switches every suite to the
process's CPU time, which a descheduled process does not accumulate: on a machine shared with
other jobs, at one thread, that is the ratio the machine would show when quiet.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = time.perf_counter


@contextlib.contextmanager
def clock(name: str) -> Iterator[None]:
    """Within the block every measurement uses ``CLOCKS[name]`` (``"wall"`` or ``"cpu"``)."""
    global _clock
    if name not in CLOCKS:
        raise ValueError(f"clock must be one of {sorted(CLOCKS)}, got {name!r}")
    previous, _clock = _clock, CLOCKS[name]
    try:
        yield
    finally:
        _clock = previous


def now() -> float:
    """The current reading of the clock in use, in seconds."""
    return _clock()


@dataclass(frozen=True)
class Timing:
    """Median and inter-quartile range of one callable's wall time, in seconds (``iqr`` is
    ``nan`` for fewer than 4 repeats, too few to measure a spread)."""

    median: float
    iqr: float


def interleaved(
    candidates: Mapping[str, Callable[[], object]],
    repeats: int = 21,
    warmup: int = 3,
    min_time: float = 2e-3,
) -> dict[str, Timing]:
    """Time each callable in ``candidates`` with interleaved repeats.

    Each repeat runs every candidate once, in turn; a candidate faster than ``min_time`` is looped
    ``k`` times per repeat (the same ``k`` for all, chosen from the slowest warm-up) and its time
    divided by ``k``.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    warm: dict[str, float] = {}
    for name, fn in candidates.items():
        for _ in range(warmup):
            start = now()
            fn()
            warm[name] = now() - start
    loops = max(1, int(min_time / max(min(warm.values(), default=min_time), 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            start = now()
            for _ in range(loops):
                fn()
            samples[name].append((now() - start) / loops)
    return {name: _summarise(values) for name, values in samples.items()}


def _summarise(values: list[float]) -> Timing:
    if len(values) < 4:  # no quartiles to speak of: the spread is not measured
        return Timing(statistics.median(values), math.nan)
    quartiles = statistics.quantiles(values, n=4)
    return Timing(statistics.median(values), quartiles[2] - quartiles[0])
