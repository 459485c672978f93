"""When to stop: convergence of the training loss (``--tol``) and early stopping on the
validation loss (``--early-stopping``). Both count epochs without progress against
``--patience``, and both carry a ``state_dict`` so a resumed run stops exactly where an
uninterrupted one would.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import Tensor


class Convergence:
    """Stop once |Lₑ − Lₑ₋₁| < ``tol`` for ``patience`` consecutive epochs (Lₑ: mean training
    loss of epoch e). ``tol = 0`` never stops: train for the whole budget."""

    def __init__(self, tol: float, patience: int) -> None:
        self.tol, self.patience = tol, patience
        self.previous = math.inf
        self.quiet_epochs = 0

    def update(self, train_loss: float) -> bool:
        """Record an epoch's loss; True when training has converged."""
        small = abs(train_loss - self.previous) < self.tol
        self.quiet_epochs = self.quiet_epochs + 1 if small else 0
        self.previous = train_loss
        return self.tol > 0 and self.quiet_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        """Counters to checkpoint."""
        return {"previous": self.previous, "quiet_epochs": self.quiet_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.previous, self.quiet_epochs = state["previous"], state["quiet_epochs"]


class EarlyStopping:
    """Stop after ``patience`` epochs in which the validation loss did not fall below
    best − ``min_delta``; keeps a copy of the best weights for :meth:`restore_best`."""

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        self.patience, self.min_delta = patience, min_delta
        self.best = math.inf
        self.best_epoch = 0
        self.bad_epochs = 0
        self.best_weights: dict[str, Tensor] | None = None

    def update(self, val_loss: float, epoch: int, model: torch.nn.Module) -> bool:
        """Record an epoch's validation loss; True when it is time to stop."""
        if val_loss < self.best - self.min_delta:
            self.best, self.best_epoch, self.bad_epochs = val_loss, epoch, 0
            self.best_weights = copy.deepcopy(model.state_dict())
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def restore_best(self, model: torch.nn.Module) -> None:
        """Load the weights of the best epoch into ``model`` (no-op before the first update)."""
        if self.best_weights is not None:
            model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        """Counters and best weights to checkpoint."""
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.bad_epochs, self.best_weights = state["bad_epochs"], state["best_weights"]
