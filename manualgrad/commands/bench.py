"""Time and memory of manualgrad against native PyTorch in the same process, as ratios
(manualgrad / native; below 1 is better), printed as a table and written as JSON.

Suites: ops (forward + backward of every built-in Function), memory (bytes saved for backward,
peak bytes), optim (one optimizer step), train (whole training steps), models (real models
through convert: step time, saved bytes, native nodes; the mode's per-call cost). --quick is
a smoke test: a few repeats, no spread, ratios indicative only. --clock cpu times the process's
CPU time instead of the wall clock (for a machine shared with other jobs: best at --threads 1).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict
from pathlib import Path

from manualgrad.bench import SUITES, run_suites, timing
from manualgrad.bench.rows import format_table
from manualgrad.commands import fail
from manualgrad.files import NotWritableError, writable_dir

PROG = "manualgrad bench"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``[SUITE] [--quick] [--threads N] [--clock wall|cpu] [--out DIR] [--device cpu|cuda]``."""
    parser.add_argument(
        "suite", nargs="?", default="all", choices=(*SUITES, "all"), help="default: all"
    )
    parser.add_argument("--quick", action="store_true", help="a sub-minute smoke test")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    parser.add_argument(
        "--clock",
        default="wall",
        choices=("wall", "cpu"),
        help="wall time, or the process's CPU time (default: wall)",
    )
    parser.add_argument(
        "--out", default="runs/bench", help="folder for the JSON results (default: runs/bench)"
    )
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where to run")


def run(args: argparse.Namespace) -> int:
    """Run the suites, print the table, write ``OUT/<timestamp>.json``."""
    if args.threads < 1:
        return fail(PROG, f"--threads must be >= 1, got {args.threads}")
    try:
        out = writable_dir(Path(args.out), "--out")  # before the run, not after it
    except NotWritableError as error:
        return fail(PROG, str(error))

    import torch

    if args.device == "cuda":
        if not torch.cuda.is_available():
            return fail(PROG, "--device cuda needs a CUDA GPU, and none is available")
        # Suites create tensors with factory defaults; timings synchronise on this device.
        torch.set_default_device("cuda")
    torch.set_num_threads(args.threads)
    names = list(SUITES) if args.suite == "all" else [args.suite]
    with timing.clock(args.clock):
        rows = run_suites(names, quick=args.quick)
    print(format_table(rows, quick=args.quick))
    path = out / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    payload = {"threads": args.threads, "quick": args.quick, "torch": torch.__version__}
    payload["device"], payload["clock"] = args.device, args.clock
    payload["rows"] = [_json_row(asdict(row) | {"ratio": row.ratio}) for row in rows]
    path.write_text(json.dumps(payload, indent=2, allow_nan=False))
    print(f"results written to {path}")
    return 0


def _json_row(row: dict) -> dict:
    """Unmeasured (``nan``) numbers as ``null``: JSON has no NaN."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}


__all__ = ["add_arguments", "run"]
