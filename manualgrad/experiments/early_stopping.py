"""early-stopping: a big net on a small, noisy training set overfits; early stopping on the
validation loss picks the epoch before it does.

With 30 % of the training labels replaced by random classes, a 256-unit MLP first learns the
shared structure (train and val loss fall together), then memorises the noise: the training
loss keeps falling while the validation loss turns up. :class:`manualgrad.train.early_stopping.
EarlyStopping` (the one ``manualgrad train --early-stopping`` uses) watches the validation loss,
remembers the best epoch's weights and signals a stop after ``patience`` epochs without
improvement. Here training continues past the signal, to show what early stopping avoids.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from manualgrad.experiments import common
from manualgrad.experiments.log import ExperimentLog
from manualgrad.optim import Adam
from manualgrad.train.data import DataSplit
from manualgrad.train.early_stopping import EarlyStopping
from manualgrad.train.model import build_mlp

CLAIM = "on 200 noisy samples val loss turns up; early stopping keeps the best epoch's weights"

NOISE = 0.3
PATIENCE = 10


def noisy_subset(seed: int, train_size: int, noise: float) -> DataSplit:
    """Digits with only ``train_size`` training samples, a ``noise`` fraction of whose labels
    are replaced by uniformly random classes (the validation set stays clean)."""
    data = common.digits(seed, train_size=train_size)
    generator = torch.Generator().manual_seed(seed)
    flip = torch.rand(train_size, generator=generator) < noise
    random_labels = torch.randint(data.num_classes, (train_size,), generator=generator)
    data.y_train = torch.where(flip, random_labels, data.y_train)
    return data


def run(log: ExperimentLog, quick: bool) -> dict[str, float]:
    """Train past the early-stopping signal; compare the best epoch with the last."""
    data = noisy_subset(log.seed, 200, NOISE)
    epochs = 60 if quick else 150
    torch.manual_seed(log.seed)
    model = build_mlp(data.num_features, (256,), data.num_classes, "relu", "he")
    stopper = EarlyStopping(patience=PATIENCE)
    stopped_at: list[int] = []

    def watch(history: common.History) -> None:
        epoch = len(history.val_loss)
        if stopper.update(history.val_loss[-1], epoch, model) and not stopped_at:
            stopped_at.append(epoch)

    optimizer = Adam(model.parameters(), lr=1e-3)
    history = common.train(
        model, data, optimizer, epochs, batch_size=32, after_epoch=watch, seed=log.seed
    )
    for tag in ("train_loss", "val_loss", "val_accuracy"):
        log.curve(tag, getattr(history, tag))
    final_accuracy = history.val_accuracy[-1]
    stopper.restore_best(model)
    figures = {
        "best_epoch": stopper.best_epoch,
        "stop_signal_epoch": stopped_at[0] if stopped_at else epochs,
        "last_epoch": epochs,
        "best_val_loss": stopper.best,
        "final_val_loss": history.val_loss[-1],
        "restored_val_accuracy": common.accuracy(model, data.x_val, data.y_val),
        "final_val_accuracy": final_accuracy,
        "final_train_loss": history.train_loss[-1],
    }
    figure, axis = plt.subplots(figsize=(6, 3.8))
    epochs_axis = range(1, epochs + 1)
    axis.plot(epochs_axis, history.train_loss, label="train loss (30% noisy labels)")
    axis.plot(epochs_axis, history.val_loss, label="val loss")
    axis.axvline(stopper.best_epoch, color="green", linestyle="--", label="best epoch (restored)")
    axis.axvline(figures["stop_signal_epoch"], color="red", linestyle=":", label="stop signal")
    axis.set(xlabel="epoch", ylabel="cross-entropy", title="Early stopping")
    axis.legend()
    log.figure("early_stopping", figure)
    return figures
