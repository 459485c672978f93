"""``manualgrad experiment NAME [--quick]``: one experiment per claim of the lecture.

Each experiment is a module of this package exposing ``CLAIM`` (one line: what it shows) and
``run(log: ExperimentLog, quick: bool) -> dict[str, float]`` (the measured figures). It logs
scalars and a figure to TensorBoard under ``runs/experiments/`` and prints a results table.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

from manualgrad.experiments.log import ExperimentLog

EXPERIMENTS = {
    "zero-init": "zero_init",
    "linear-collapse": "linear_collapse",
    "step-activation": "step_activation",
    "batch-modes": "batch_modes",
    "optimizers": "optimizers",
    "regularization": "regularization",
    "early-stopping": "early_stopping",
    "prune-recover": "prune_recover",
    "init-scale": "init_scale",
    "skip-connections": "skip_connections",
    "hinge-vs-ce": "hinge_vs_ce",
}


def load(name: str):
    """The module of experiment ``name`` (``ValueError`` for an unknown name)."""
    if name not in EXPERIMENTS:
        raise ValueError(f"experiment: unknown name {name!r}; choose from {', '.join(EXPERIMENTS)}")
    return import_module(f"manualgrad.experiments.{EXPERIMENTS[name]}")


def run_experiment(
    name: str, quick: bool = False, logdir: str = "runs/experiments", seed: int = 0
) -> tuple[dict[str, float], ExperimentLog]:
    """Run one experiment; return its figures and the log it wrote."""
    module = load(name)
    with ExperimentLog(name, logdir, seed=seed) as log:
        figures = module.run(log, quick)
        log.record(figures)
    return figures, log


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``manualgrad experiment``."""
    parser = argparse.ArgumentParser(prog="manualgrad experiment", description=__doc__)
    parser.add_argument(
        "name",
        nargs="?",
        choices=list(EXPERIMENTS),
        metavar="NAME",
        help="one of: " + ", ".join(EXPERIMENTS),
    )
    parser.add_argument("--quick", action="store_true", help="a smaller run (under 10 s)")
    parser.add_argument("--logdir", default="runs/experiments", help="TensorBoard root folder")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    args = parser.parse_args(argv)
    if args.list or args.name is None:
        for name in EXPERIMENTS:
            print(f"{name:<18} {load(name).CLAIM}")
        return 0 if args.list else 2
    figures, log = run_experiment(args.name, args.quick, args.logdir, args.seed)
    print(log.table(figures))
    print(f"run written to {log.path}\ntensorboard --logdir {args.logdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
