"""Run one of the lecture's experiments: it trains small networks, checks its claim, logs
scalars and a figure to TensorBoard and prints a table of the measured figures.

  manualgrad experiment --list              the experiments and what each shows
  manualgrad experiment zero-init --quick   a smaller run (under 10 s)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from manualgrad.commands import fail
from manualgrad.experiments import EXPERIMENTS
from manualgrad.files import NotWritableError, writable_dir

PROG = "manualgrad experiment"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``[NAME] [--quick] [--logdir DIR] [--seed N] [--list]``."""
    parser.add_argument(
        "name",
        nargs="?",
        choices=list(EXPERIMENTS),
        metavar="NAME",
        help="one of: " + ", ".join(EXPERIMENTS),
    )
    parser.add_argument("--quick", action="store_true", help="a smaller run (under 10 s)")
    parser.add_argument(
        "--logdir",
        default="runs/experiments",
        help="TensorBoard root folder (default: runs/experiments)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")


def run(args: argparse.Namespace) -> int:
    """Run the experiment, print its table and where its run was written."""
    from manualgrad.experiments import load, run_experiment

    if args.list or args.name is None:
        for name in EXPERIMENTS:
            print(f"{name:<18} {load(name).CLAIM}")
        return 0 if args.list else fail(PROG, "give an experiment NAME (or --list)")
    try:
        writable_dir(Path(args.logdir), "--logdir")
    except NotWritableError as error:
        return fail(PROG, str(error))
    figures, log = run_experiment(args.name, args.quick, args.logdir, args.seed)
    print(log.table(figures))
    print(f"run written to {log.path}\ntensorboard --logdir {args.logdir}")
    return 0


__all__ = ["add_arguments", "run"]
