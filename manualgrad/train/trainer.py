"""The training loop: init → forward → backprop → update → repeat until convergence or budget.

One epoch, as the code below runs it::

    for each batch (x, y) of this epoch's shuffled order:
        zero the gradients
        ŷ = model(x)                    forward through manualgrad's Functions
        L = loss(ŷ, y) + penalty(θ)     stop here if L is not finite
        L.backward()                    every Function's hand-derived backward
        θ ← optimizer.step(θ, ∂L/∂θ)    (through a closure, which LBFGS/Newton re-evaluate;
                                        Newton and Hessian-free differentiate L themselves)
    evaluate on the validation set; step the learning-rate schedule
    log to TensorBoard, write last.pt (and best.pt on a better val accuracy)
    stop if converged (--tol), early-stopped, or out of epochs
    write model.pt: the trained weights (the best val-loss epoch's when early-stopped)

Everything is seeded: the model from ``--seed``, epoch e's order from seed + e. Nothing else
draws random numbers, so a run resumed from ``last.pt`` replays the rest of an uninterrupted
run bit for bit.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from manualgrad import regularization
from manualgrad.files import NotWritableError, writable_dir
from manualgrad.train import checkpoint, distributed
from manualgrad.train.config import RESUMABLE, RUNTIME_OPTIONS, TrainConfig
from manualgrad.train.data import load_dataset
from manualgrad.train.diagnostics import (
    ActivationMonitor,
    RunLogger,
    layer_stats,
    max_grad_diff,
    snapshot,
)
from manualgrad.train.early_stopping import Convergence, EarlyStopping
from manualgrad.train.model import build_loss, build_mlp
from manualgrad.train.optimizers import build_optimizer, build_scheduler, optimizer_spec

CHECKPOINT_KEYS = ("epoch", "step", "model", "optimizer", "scheduler", "rng", "trainer", "config")
# Test hook: with MANUALGRAD_EXIT_AFTER=last.pt@3 the process exits (status 86) right after
# writing last.pt at the end of epoch 3, as a kill would leave it.
EXIT_AFTER, EXIT_AFTER_STATUS = "MANUALGRAD_EXIT_AFTER", 86
PROBE_SIZE = 64
EVAL_CHUNK = 4096
# Config fields that are bookkeeping, not hyper-parameters (left out of the hparams table).
NOT_HPARAMS = RUNTIME_OPTIONS | {"data_dir", "logdir", "name", "dry_run"}


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` as JSON would give them back (tuples as lists)."""
    return json.loads(json.dumps(values))


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stopped before the update."""


class SetupError(Exception):
    """A run that cannot start (unwritable --logdir, resume without a checkpoint, ...)."""


@dataclass
class TrainResult:
    """What a run achieved."""

    run_dir: Path | None
    best_val_accuracy: float
    best_epoch: int
    epochs: int
    seconds: float
    stopped: str
    history: list[dict[str, float]] = field(default_factory=list)
    # with --early-stopping: the epoch whose weights model.pt holds, and its metrics
    restored_epoch: int | None = None
    restored: dict[str, float] = field(default_factory=dict)


def _due(epoch: int, interval: int) -> bool:
    """Epochs 1, 1 + interval, 1 + 2·interval, …"""
    return (epoch - 1) % interval == 0


def new_run_dir(logdir: Path, name: str) -> Path:
    """``logdir/<YYYYmmdd-HHMMSS>-<name>``, with ``-2``, ``-3`` … if that already exists."""
    stem = f"{datetime.now():%Y%m%d-%H%M%S}-{name}"
    for suffix in ["", *(f"-{i}" for i in range(2, 1000))]:
        path = logdir / f"{stem}{suffix}"
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise SetupError(f"cannot find a free run directory name for {stem} in {logdir}")


class Trainer:
    """Builds data, model, loss, optimizer and schedule from a :class:`TrainConfig` (raising
    ``ValueError``/``DataError``/``CheckpointError``/``SetupError`` before any training), then
    :meth:`fit` runs the loop."""

    def __init__(self, config: TrainConfig) -> None:
        config.validate()
        optimizer_spec(config)  # fail on a bad --optimizer before loading any data
        self.config = config
        self.ctx = distributed.setup(config.device)
        self.log_files = self.ctx.is_main and not config.dry_run
        if self.log_files and not config.resume:
            try:
                writable_dir(Path(config.logdir), "--logdir")
            except NotWritableError as error:
                raise SetupError(str(error)) from None
        resumed = self._read_resume_checkpoint()

        data = load_dataset(
            config.dataset,
            seed=config.seed,
            val_fraction=config.val_fraction,
            data_dir=config.mnist_dir,
        )
        device = self.ctx.device
        self.x_train, self.y_train = data.x_train.to(device), data.y_train.to(device)
        self.x_val, self.y_val = data.x_val.to(device), data.y_val.to(device)
        self.probe = (self.x_train[:PROBE_SIZE], self.y_train[:PROBE_SIZE])
        self.image_shape = data.image_shape

        torch.manual_seed(config.seed)
        self.model = build_mlp(
            data.num_features, config.hidden, data.num_classes, config.activation, config.init
        ).to(device)
        self.loss_fn, self.target_of = build_loss(config.loss, data.num_classes)
        self.optimizer = build_optimizer(config, self.model.parameters())
        self.scheduler = build_scheduler(config, self.optimizer)
        self.monitor = ActivationMonitor(self.model)
        self.convergence = Convergence(config.tol, config.patience)
        self.early = EarlyStopping(config.patience, config.min_delta)

        if config.full_batch:
            global_batch = len(self.x_train)
        else:
            global_batch = min(int(config.batch_size), len(self.x_train))
        self.batch_size = distributed.local_batch_size(global_batch, self.ctx)
        self.sampler = distributed.sampler(len(self.x_train), self.ctx, config.seed)
        if self.ctx.distributed and type(self.optimizer).closure_evaluations != 1:
            raise ValueError(f"--optimizer {config.optimizer} is not supported under torchrun")

        self.epoch, self.step = 0, 0
        self._last_penalty: Tensor | None = None
        self.best_val_accuracy, self.best_epoch = -math.inf, 0
        self.history: list[dict[str, float]] = []
        if resumed is not None:
            self._restore(resumed)
        self.network = distributed.wrap(self.model, self.ctx)

    # ----------------------------------------------------------------- checkpoints
    def _read_resume_checkpoint(self) -> dict[str, Any] | None:
        """``last.pt`` of ``--resume``, verified: every entry present, written with this
        ``config.json`` (the fields that alter the computation), and fewer epochs than
        ``--epochs``; :class:`~manualgrad.train.checkpoint.CheckpointError` naming the first
        problem otherwise."""
        if not self.config.resume:
            return None
        path = Path(self.config.resume) / "last.pt"
        state = checkpoint.load(path)
        missing = [key for key in CHECKPOINT_KEYS if key not in state]
        if missing:
            raise checkpoint.CheckpointError(f"{path} has no {missing[0]!r} entry")
        ours = _plain(replace(self.config, resume=None).to_dict())
        theirs = _plain(state["config"])
        for key in sorted(set(ours) - RESUMABLE):
            if ours[key] != theirs.get(key):
                raise checkpoint.CheckpointError(
                    f"{Path(self.config.resume) / 'config.json'}: {key} is "
                    f"{json.dumps(ours[key])} but {path} was written with "
                    f"{json.dumps(theirs.get(key))} (put it back, or start a new run)"
                )
        if state["epoch"] > self.config.epochs:
            raise checkpoint.CheckpointError(
                f"--epochs {self.config.epochs}: {path} has already trained "
                f"{state['epoch']} epochs (give --epochs above that to continue)"
            )
        return state

    def _state(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": checkpoint.rng_state(),
            "trainer": {
                "best_val_accuracy": self.best_val_accuracy,
                "best_epoch": self.best_epoch,
                "history": self.history,
                "convergence": self.convergence.state_dict(),
                "early_stopping": self.early.state_dict(),
            },
            "config": replace(self.config, resume=None).to_dict(),
        }

    def _restore(self, state: dict[str, Any]) -> None:
        path = Path(self.config.resume) / "last.pt"
        expected = self.model.state_dict()
        for key, value in expected.items():
            saved = state["model"].get(key)
            shape = tuple(saved.shape) if isinstance(saved, Tensor) else None
            if shape != tuple(value.shape):
                found = f"shape {shape}" if shape is not None else type(saved).__name__
                raise checkpoint.CheckpointError(
                    f"{path}: model entry {key} should have shape {tuple(value.shape)}, "
                    f"found {found}"
                )
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            checkpoint.set_rng_state(state["rng"])
            self.epoch, self.step = state["epoch"], state["step"]
            trainer = state["trainer"]
            self.best_val_accuracy = trainer["best_val_accuracy"]
            self.best_epoch = trainer["best_epoch"]
            self.history = list(trainer["history"])
            self.convergence.load_state_dict(trainer["convergence"])
            self.early.load_state_dict(trainer["early_stopping"])
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise checkpoint.CheckpointError(f"{path}: cannot restore it: {reason}") from None
        self._replan_schedule(state["config"]["epochs"])

    def _replan_schedule(self, planned_epochs: int) -> None:
        """Set each group's lr to the schedule's value at this epoch for the current
        ``--epochs`` (what the scheduler computed, bit for bit, when the length is unchanged;
        re-planned for the new length when ``--epochs`` changed on resume)."""
        scheduler = self.scheduler
        lrs = [
            base * factor(scheduler.last_epoch)
            for base, factor in zip(scheduler.base_lrs, scheduler.lr_lambdas, strict=True)
        ]
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        scheduler._last_lr = lrs
        if planned_epochs != self.config.epochs and self.config.scheduler != "none":
            self._say(
                f"{self.config.scheduler} schedule re-planned for {self.config.epochs} epochs "
                f"(was {planned_epochs}): lr {lrs[0]:.3g} at epoch {self.epoch}"
            )

    def _save(self, name: str) -> None:
        checkpoint.save(self.run_dir / name, self._state())
        if os.environ.get(EXIT_AFTER) == f"{name}@{self.epoch}":  # the kill tests' hook
            os._exit(EXIT_AFTER_STATUS)

    # ----------------------------------------------------------------- one step
    def penalty(self) -> Tensor | None:
        """l1·‖W‖₁ + l2·½‖W‖² over the Linear weights (None when both are 0)."""
        c = self.config
        if not (c.l1 or c.l2):
            return None
        weights = [m.weight for m in self.model.modules() if isinstance(m, torch.nn.Linear)]
        return c.l1 * regularization.l1_penalty(weights) + c.l2 * regularization.l2_penalty(weights)

    def train_step(self, x: Tensor, y: Tensor, where: str) -> tuple[Tensor, Tensor]:
        """One update on the batch; returns the loss and the output *before* the update."""
        target = self.target_of(y)
        first: dict[str, Tensor] = {}
        backprop_here = not type(self.optimizer).second_order

        def closure() -> Tensor:
            backprop = backprop_here and torch.is_grad_enabled()
            if backprop:
                self.optimizer.zero_grad()
            output = self.network(x)
            loss = self.loss_fn(output, target)
            penalty = self.penalty()
            objective = loss if penalty is None else loss + penalty
            if not first:  # the current parameters (later calls are line-search trials)
                if not distributed.all_true(bool(torch.isfinite(objective)), self.ctx):
                    raise NonFiniteLossError(f"non-finite loss at {where}")
                penalty = None if penalty is None else penalty.detach()
                first.update(loss=loss.detach(), output=output.detach(), penalty=penalty)
            if backprop:
                objective.backward()
            return objective

        self.optimizer.step(closure)
        self.step += 1
        self._last_penalty = first["penalty"]
        return first["loss"], first["output"]

    # ----------------------------------------------------------------- one epoch
    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over this rank's share of the shuffled training set."""
        self.network.train()
        self.sampler.set_epoch(epoch)
        order = torch.tensor(list(self.sampler), device=self.ctx.device)
        batches = order.split(self.batch_size)
        loss_sum, correct, count = 0.0, 0, 0
        bar = tqdm(
            batches,
            desc=f"epoch {epoch}/{self.config.epochs}",
            unit="batch",
            leave=False,
            disable=self.config.quiet or not self.ctx.is_main or not sys.stderr.isatty(),
        )
        for i, index in enumerate(bar, start=1):
            x, y = self.x_train[index], self.y_train[index]
            log_now = self.log_files and (self.step + 1) % self.config.log_interval == 0
            before = snapshot(self.model) if log_now else None
            with self.monitor.recording() if log_now else nullcontext():
                loss, output = self.train_step(
                    x, y, f"epoch {epoch}, step {self.step + 1} (batch {i}/{len(batches)})"
                )
            if log_now:
                self._log_step(before)
            loss_sum += loss.item() * len(y)
            correct += (output.argmax(1) == y).sum().item()
            count += len(y)
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
        totals = torch.tensor([loss_sum, correct, count], dtype=torch.float64)
        loss_sum, correct, count = distributed.all_sum(totals, self.ctx).tolist()
        return {"loss": loss_sum / count, "accuracy": correct / count}

    @torch.no_grad()
    def evaluate(self, x: Tensor, y: Tensor) -> dict[str, float]:
        """Mean loss and accuracy of the model on (x, y), in eval mode."""
        self.model.eval()
        loss_sum, correct = 0.0, 0
        for xs, ys in zip(x.split(EVAL_CHUNK), y.split(EVAL_CHUNK), strict=True):
            output = self.model(xs)
            loss_sum += self.loss_fn(output, self.target_of(ys)).item() * len(ys)
            correct += (output.argmax(1) == ys).sum().item()
        return {"loss": loss_sum / len(y), "accuracy": correct / len(y)}

    # ----------------------------------------------------------------- logging
    def _log_step(self, before: dict[str, list[Tensor]]) -> None:
        values = layer_stats(self.model, before) | self.monitor.stats
        if self._last_penalty is not None:
            values["penalty"] = self._last_penalty.item()
        self.logger.scalars(values, self.step)

    def _log_epoch(self, epoch: int, train: dict[str, float], val: dict[str, float]) -> None:
        log = self.logger
        log.split_metrics("train", train["loss"], train["accuracy"], self.step)
        log.split_metrics("val", val["loss"], val["accuracy"], self.step)
        lrs = {f"lr/group{k}": group["lr"] for k, group in enumerate(self.optimizer.param_groups)}
        log.scalars({k: float(v) for k, v in lrs.items()}, self.step)
        x, y = self.probe
        if _due(epoch, self.config.check_interval):
            self.model.eval()
            diff = max_grad_diff(self.model, self.loss_fn, x, self.target_of(y))
            log.scalars({"check/max_grad_diff": diff}, self.step)
        if _due(epoch, self.config.hist_interval):
            with torch.no_grad(), self.monitor.recording(keep_outputs=True):
                self.model.eval()
                self.model(x)
            log.histograms(self.model, self.monitor.outputs, self.step)
        log.flush()

    def _hparams(self, outcome: str) -> None:
        """The HPARAMS entry of this run, with its outcome (how it stopped)."""
        params = {k: v for k, v in self.config.to_dict().items() if k not in NOT_HPARAMS}
        params["lr"] = self.optimizer.defaults.get("lr", self.config.lr)
        self.logger.hparams(params, outcome, self.run_dir.name)

    def _open_run(self) -> None:
        c = self.config
        if c.resume:
            self.run_dir = Path(c.resume)
            self.logger = RunLogger(self.run_dir, purge_step=self.step + 1)
        else:
            self.run_dir = new_run_dir(Path(c.logdir), c.run_name())
            self.logger = RunLogger(self.run_dir)
            self.logger.model(self.model, self.probe[0])
        replace(c, resume=None).save(self.run_dir / "config.json")
        self.logger.config(replace(c, resume=None).to_dict())
        if self.epoch == 0:
            self._save("last.pt")

    def _say(self, message: str) -> None:
        if self.ctx.is_main:
            tqdm.write(message)

    # ----------------------------------------------------------------- the loop
    def fit(self) -> TrainResult:
        """Train until converged, early-stopped or out of epochs; returns the outcome.

        Raises :class:`NonFiniteLossError` (last good ``last.pt`` untouched) or
        ``KeyboardInterrupt`` (likewise)."""
        c = self.config
        self.run_dir = None
        if c.dry_run:
            return self._dry_run()
        if self.log_files:
            self._open_run()
        start, stopped, outcome = time.perf_counter(), "budget", "interrupted"
        try:
            for epoch in range(self.epoch + 1, c.epochs + 1):
                stopped = self._one_epoch(epoch, start)
                if stopped != "budget":
                    break
            kept = self._finish(stopped)
            outcome = stopped
        except NonFiniteLossError as error:
            outcome = "non-finite loss"
            where = f"last good checkpoint: {self.run_dir / 'last.pt'}" if self.run_dir else ""
            raise NonFiniteLossError(
                f"{error}; training stopped (try a smaller --lr). {where} (epoch {self.epoch})"
            ) from None
        finally:
            if self.log_files:
                self._hparams(outcome)
                self.logger.close()
            distributed.cleanup(self.ctx)
        seconds = time.perf_counter() - start
        return TrainResult(
            self.run_dir,
            self.best_val_accuracy,
            self.best_epoch,
            self.epoch,
            seconds,
            stopped,
            self.history,
            kept if stopped == "early_stopping" else None,
            self._metrics_of(kept) if stopped == "early_stopping" else {},
        )

    def _finish(self, stopped: str) -> int:
        """Restore the best val-loss weights when early-stopped, write ``model.pt``, log its
        epoch's validation metrics (the ``model`` sub-run) and the closing figures; returns
        the epoch whose weights ``model.pt`` holds."""
        kept = self.epoch
        if stopped == "early_stopping":
            self.early.restore_best(self.model)
            kept = self.early.best_epoch
        if not self.log_files or not self.history:
            return kept
        final = {"model": self.model.state_dict(), "config": self._state()["config"]}
        checkpoint.save(self.run_dir / "model.pt", final)
        metrics = self._metrics_of(kept)
        step = int(metrics.get("step", self.step))
        self.logger.split_metrics("model", metrics["val_loss"], metrics["val_accuracy"], step)
        self.logger.figures(self.model, self.x_val, self.y_val, self.image_shape, step)
        return kept

    def _metrics_of(self, epoch: int) -> dict[str, float]:
        """The history entry of ``epoch``."""
        return next(entry for entry in self.history if entry["epoch"] == epoch)

    def _one_epoch(self, epoch: int, start: float) -> str:
        c = self.config
        train = self.train_epoch(epoch)
        val = self.evaluate(self.x_val, self.y_val)
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        self.epoch = epoch
        improved = val["accuracy"] > self.best_val_accuracy
        if improved:
            self.best_val_accuracy, self.best_epoch = val["accuracy"], epoch
        self.history.append(
            {
                "epoch": epoch,
                "step": self.step,
                "train_loss": train["loss"],
                "train_accuracy": train["accuracy"],
                "val_loss": val["loss"],
                "val_accuracy": val["accuracy"],
            }
        )
        converged = self.convergence.update(train["loss"])
        early = c.early_stopping and self.early.update(val["loss"], epoch, self.model)
        stopped = "early_stopping" if early else "converged" if converged else "budget"
        if self.log_files:
            self._log_epoch(epoch, train, val)
            if improved:  # best.pt first: a kill in between re-runs this epoch from last.pt
                self._save("best.pt")
            self._save("last.pt")
        if not c.quiet:
            self._say(
                f"epoch {epoch:>3}/{c.epochs}  train loss {train['loss']:.4f} "
                f"acc {train['accuracy']:.2%}  val loss {val['loss']:.4f} "
                f"acc {val['accuracy']:.2%}  lr {float(lr):.2e}  "
                f"{time.perf_counter() - start:.1f}s"
            )
        return stopped

    def _dry_run(self) -> TrainResult:
        """One batch forward, backward and update; nothing is written."""
        x, y = self.x_train[: self.batch_size], self.y_train[: self.batch_size]
        loss, _ = self.train_step(x, y, "dry run")
        after = self.loss_fn(self.model(x), self.target_of(y)).item()
        self._say(
            f"dry run: one batch of {len(y)}: loss {loss.item():.4f} → {after:.4f}; nothing written"
        )
        distributed.cleanup(self.ctx)
        return TrainResult(None, math.nan, 0, 0, 0.0, "dry_run")
