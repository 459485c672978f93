"""``manualgrad bench``: manualgrad against native PyTorch, side by side, ratios only.

Each suite is a module of this package exposing ``run(quick: bool) -> list[Row]``. Rows are
printed as a table of ratios (manualgrad / native; below 1 is better) and written to
``runs/bench/<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

SUITES = ("ops", "memory", "optim", "train")


@dataclass(frozen=True)
class Row:
    """One comparison: ``metric`` of manualgrad vs native for ``name`` at ``size``."""

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


def format_table(rows: list[Row]) -> str:
    """Render rows as an aligned text table."""
    header = f"{'suite':<7} {'name':<34} {'size':<16} {'metric':<12} {'ratio':>7} {'±iqr':>6}"
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.suite:<7} {row.name:<34} {row.size:<16} {row.metric:<12} "
            f"{row.ratio:>7.3f} {row.iqr_ratio:>6.3f}"
        )
    return "\n".join(lines)


def run_suites(names: list[str], quick: bool) -> list[Row]:
    """Run the named suites and return all their rows."""
    rows: list[Row] = []
    for name in names:
        module = importlib.import_module(f"manualgrad.bench.{name}")
        rows.extend(module.run(quick=quick))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point of ``manualgrad bench`` and ``scripts/bench.py``."""
    parser = argparse.ArgumentParser(prog="manualgrad bench", description=__doc__)
    parser.add_argument("suite", nargs="?", default="all", choices=(*SUITES, "all"))
    parser.add_argument("--quick", action="store_true", help="sub-minute smoke run")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads value")
    parser.add_argument("--out", default="runs/bench", help="folder for the JSON results")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where to run")
    args = parser.parse_args(argv)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            parser.error("--device cuda needs a CUDA GPU, and none is available")
        # Suites create tensors with factory defaults; timings synchronise on this device.
        torch.set_default_device("cuda")
    torch.set_num_threads(args.threads)
    names = list(SUITES) if args.suite == "all" else [args.suite]
    rows = run_suites(names, quick=args.quick)
    print(format_table(rows))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    payload = {"threads": args.threads, "quick": args.quick, "torch": torch.__version__}
    payload["device"] = args.device
    payload["rows"] = [asdict(row) | {"ratio": row.ratio} for row in rows]
    path.write_text(json.dumps(payload, indent=2))
    print(f"results written to {path}")
    return 0
