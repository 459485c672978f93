"""A benchmark result row and the table it is printed in (no torch: a suite's rows are plain
numbers)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One comparison: ``metric`` of manualgrad vs native for ``name`` at ``size``.

    ``iqr_ratio``: the spread of the ratio (``nan``: not measured, as in a ``--quick`` run's
    few repeats; 0 for exact counts such as bytes)."""

    suite: str
    name: str
    size: str
    metric: str
    manualgrad: float
    native: float
    iqr_ratio: float = 0.0

    @property
    def ratio(self) -> float:
        """manualgrad / native (``nan`` when native is zero and manualgrad is not)."""
        if self.native == 0:
            return 1.0 if self.manualgrad == 0 else float("nan")
        return self.manualgrad / self.native


QUICK_NOTE = (
    "quick run: a smoke test (a few repeats, spread not measured); the ratios are indicative only"
)


def format_table(rows: list[Row], quick: bool = False) -> str:
    """Render rows as an aligned text table (a ``--quick`` run says it is a smoke test, and its
    unmeasured spreads print as ``n/a``)."""
    header = f"{'suite':<7} {'name':<34} {'size':<16} {'metric':<12} {'ratio':>7} {'±iqr':>6}"
    lines = [QUICK_NOTE] if quick else []
    lines += [header, "-" * len(header)]
    for row in rows:
        spread = "n/a" if math.isnan(row.iqr_ratio) else f"{row.iqr_ratio:.3f}"
        lines.append(
            f"{row.suite:<7} {row.name:<34} {row.size:<16} {row.metric:<12} "
            f"{row.ratio:>7.3f} {spread:>6}"
        )
    return "\n".join(lines)


__all__ = ["QUICK_NOTE", "Row", "format_table"]
