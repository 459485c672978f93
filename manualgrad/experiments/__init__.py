"""The lecture's experiments, one per claim (the command is
:mod:`manualgrad.commands.experiment`).

Each experiment is a module of this package exposing ``CLAIM`` (one line: what it shows) and
``run(log: ExperimentLog, quick: bool) -> dict[str, float]`` (the measured figures). It logs
scalars and a figure to TensorBoard under ``runs/experiments/`` and prints a results table. A new
experiment is one module and one line in :data:`EXPERIMENTS`. This package module imports no
torch, so the command lists the names before importing it.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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


def load(name: str) -> ModuleType:
    """The module of experiment ``name`` (``ValueError`` for an unknown name)."""
    if name not in EXPERIMENTS:
        raise ValueError(f"experiment: unknown name {name!r}; choose from {', '.join(EXPERIMENTS)}")
    return import_module(f"manualgrad.experiments.{EXPERIMENTS[name]}")


def run_experiment(
    name: str, quick: bool = False, logdir: str = "runs/experiments", seed: int = 0
) -> tuple[dict[str, float], ExperimentLog]:
    """Run one experiment; return its figures and the log it wrote."""
    from manualgrad.experiments.log import ExperimentLog

    module = load(name)
    with ExperimentLog(name, logdir, seed=seed) as log:
        figures = module.run(log, quick)
        log.record(figures)
    return figures, log


__all__ = ["EXPERIMENTS", "load", "run_experiment"]
