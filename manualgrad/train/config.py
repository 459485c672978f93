"""The training configuration: one typed dataclass, nanoGPT-style, saved as ``config.json``.

Every field is a command-line option of ``manualgrad train`` (``--batch-size`` for
``batch_size``); the defaults below are what ``make train`` runs. A run directory holds the
``config.json`` it was trained with, and ``--resume RUN_DIR`` reads it back.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from manualgrad.train.activations import TRAIN_CHOICES

DATASETS = ("digits", "mnist", "xor", "spirals")
MNIST_DIR = "data/mnist"  # where --dataset mnist looks when --data-dir is not given
ACTIVATIONS = TRAIN_CHOICES
INITS = ("auto", "xavier", "he", "normal", "zeros")
LOSSES = ("cross_entropy", "mse", "hinge", "multi_margin")
SCHEDULERS = ("none", "cosine", "step")
DEVICES = ("cpu", "cuda")

# Options that steer logging, resuming and where the run executes: they do not alter the
# computation, and they are not hyper-parameters.
RUNTIME_OPTIONS = frozenset(
    {"quiet", "log_interval", "hist_interval", "check_interval", "resume", "device", "threads"}
)
# Options that may change when a run is resumed: they do not alter the computation.
RESUMABLE = RUNTIME_OPTIONS | {"epochs"}


@dataclass
class TrainConfig:
    """Everything a training run depends on (defaults = ``make train``)."""

    # data
    dataset: str = "digits"
    data_dir: str | None = None  # --dataset mnist only (None: MNIST_DIR)
    val_fraction: float = 0.2
    # model
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    init: str = "auto"
    # objective
    loss: str = "cross_entropy"
    l1: float = 0.0
    l2: float = 0.0
    # optimizer (lr None: the optimizer class's default_lr)
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float = 0.0
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    scheduler: str = "cosine"
    # schedule of the loop
    batch_size: int | str = 32
    epochs: int = 30
    tol: float = 0.0
    patience: int = 5
    early_stopping: bool = False
    min_delta: float = 0.0
    seed: int = 0
    # logging
    logdir: str = "runs"
    name: str | None = None
    log_interval: int = 10
    hist_interval: int = 5
    check_interval: int = 5
    resume: str | None = None
    device: str = "cpu"
    threads: int = 1
    quiet: bool = False
    dry_run: bool = False

    @property
    def full_batch(self) -> bool:
        """True for ``--batch-size full`` (one step per epoch on the whole training set)."""
        return self.batch_size == "full"

    @property
    def mnist_dir(self) -> str:
        """Where ``--dataset mnist`` reads its IDX files."""
        return self.data_dir or MNIST_DIR

    def run_name(self) -> str:
        """``--name``, or ``<dataset>-<activation>-<optimizer>``."""
        return self.name or f"{self.dataset}-{self.activation}-{self.optimizer}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (tuples become lists)."""
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        """Write ``config.json``."""
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_dict(cls, values: object) -> TrainConfig:
        """Inverse of :meth:`to_dict`; ``ValueError`` naming the key for an unknown key or a
        value of the wrong type (``"hidden": 5``, ``"epochs": "ten"``)."""
        if not isinstance(values, dict):
            kind = "null" if values is None else f"a {type(values).__name__}"
            raise ValueError(f"expected an object of options, got {kind}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(unknown)}")
        hints = typing.get_type_hints(cls)
        for key, value in values.items():
            if not _conforms(value, hints[key]):
                raise ValueError(f"{key} must be {_describe(hints[key])}, got {json.dumps(value)}")
        values = dict(values)
        for key in ("hidden", "betas"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        """Read a run's ``config.json``."""
        return cls.from_dict(json.loads(path.read_text()))

    def validate(self) -> None:
        """Raise ``ValueError`` naming the option for any value out of range."""
        _choice("dataset", self.dataset, DATASETS)
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("init", self.init, INITS)
        _choice("loss", self.loss, LOSSES)
        _choice("scheduler", self.scheduler, SCHEDULERS)
        _choice("device", self.device, DEVICES)
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"--val-fraction must be in (0, 1), got {self.val_fraction}")
        if any(width < 1 for width in self.hidden):
            raise ValueError(f"--hidden needs positive widths, got {self.hidden}")
        if not (self.full_batch or (isinstance(self.batch_size, int) and self.batch_size >= 1)):
            raise ValueError(
                f"--batch-size must be a positive integer or 'full', got {self.batch_size}"
            )
        for name in ("epochs", "patience", "log_interval", "hist_interval", "check_interval"):
            _at_least(name, getattr(self, name), 1)
        for name in ("tol", "min_delta", "l1", "l2", "weight_decay", "momentum", "threads"):
            _at_least(name, getattr(self, name), 0)
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"--lr must be positive, got {self.lr}")


def _conforms(value: object, hint: object) -> bool:
    """Whether a JSON value fits a field's type (``float`` takes ints; ``bool`` is no number)."""
    if isinstance(hint, types.UnionType):
        return any(_conforms(value, option) for option in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        items = typing.get_args(hint)
        if not isinstance(value, list | tuple):
            return False
        if items[-1] is Ellipsis:
            return all(_conforms(v, items[0]) for v in value)
        return len(value) == len(items) and all(map(_conforms, value, items))
    if hint is type(None):
        return value is None
    if isinstance(value, bool):
        return hint is bool
    if hint is float:
        return isinstance(value, int | float)
    return isinstance(value, hint)  # type: ignore[arg-type]


def _describe(hint: object) -> str:
    """A field's type in words: ``a list of int``, ``float or null``."""
    if isinstance(hint, types.UnionType):
        return " or ".join(_describe(option) for option in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        items = typing.get_args(hint)
        if items[-1] is Ellipsis:
            return f"a list of {_describe(items[0])}"
        return f"a list of {len(items)} {_describe(items[0])}"
    return "null" if hint is type(None) else getattr(hint, "__name__", str(hint))


def _at_least(name: str, value: float, low: float) -> None:
    if value < low:
        raise ValueError(f"--{name.replace('_', '-')} must be >= {low}, got {value}")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown --{name} {value!r} (choose from {', '.join(choices)})")
