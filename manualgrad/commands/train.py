"""Train an MLP built from manualgrad layers and log its backpropagation to TensorBoard.

Each run writes runs/<YYYYmmdd-HHMMSS>-<name>/ (view it with: tensorboard --logdir runs):
config.json, the checkpoints last.pt and best.pt, model.pt at the end, and the event files.

exit status: 0 trained, 1 stopped on a non-finite loss, 2 a bad option, data set, checkpoint or
--logdir (one "manualgrad train: error: ..." line), 130 interrupted (Ctrl-C; last.pt holds the
last finished epoch: continue with --resume RUN_DIR).
Multi-process: torchrun --nproc_per_node 2 -m manualgrad train ...
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from manualgrad.commands import CommandError, fail
from manualgrad.train.config import (
    ACTIVATIONS,
    DATASETS,
    DEVICES,
    INITS,
    LOSSES,
    MNIST_DIR,
    RESUMABLE,
    SCHEDULERS,
    TrainConfig,
)

if TYPE_CHECKING:
    from manualgrad.train.trainer import TrainResult

PROG = "manualgrad train"
DEFAULTS = TrainConfig()
FIELDS = frozenset(f.name for f in dataclasses.fields(TrainConfig))


def _widths(text: str) -> tuple[int, ...]:
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated widths, got {text!r}") from None


def _betas(text: str) -> tuple[float, float]:
    try:
        beta1, beta2 = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers B1,B2, got {text!r}") from None
    return beta1, beta2


def _batch_size(text: str) -> int | str:
    if text == "full":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'full', got {text!r}") from None


def _default(name: str) -> str:
    value = getattr(DEFAULTS, name)
    if isinstance(value, tuple):
        value = ",".join(str(v) for v in value)
    return f" (default: {value})"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Every option, with its help and the default from :class:`TrainConfig` (options not given
    are left out of the namespace, so ``--resume`` knows which ones were)."""
    p.argument_default = argparse.SUPPRESS
    data = p.add_argument_group("data")
    data.add_argument(
        "--dataset",
        choices=DATASETS,
        help="digits: scikit-learn's 8x8 digits "
        "(offline); mnist: IDX files from --data-dir; xor, spirals: 2-D toy "
        "problems" + _default("dataset"),
    )
    data.add_argument(
        "--data-dir",
        metavar="DIR",
        help="folder with MNIST's "
        "train-{images-idx3,labels-idx1}-ubyte[.gz] (and optionally t10k-*, used "
        f"as validation set; --dataset mnist only) (default: {MNIST_DIR})",
    )
    data.add_argument(
        "--val-fraction",
        type=float,
        metavar="F",
        help="share of the data held out for validation" + _default("val_fraction"),
    )

    model = p.add_argument_group("model")
    model.add_argument(
        "--hidden",
        type=_widths,
        metavar="W1,W2,...",
        help="hidden layer widths; 'none' for no hidden layer" + _default("hidden"),
    )
    model.add_argument(
        "--activation",
        choices=ACTIVATIONS,
        help="hidden activation; step has zero gradient, step-ste passes it straight "
        "through, linear is the identity" + _default("activation"),
    )
    model.add_argument(
        "--init",
        choices=INITS,
        help="weight init: he (Kaiming normal), xavier "
        "(Glorot uniform), normal (N(0, 0.01^2)), zeros; auto = he for the ReLU "
        "family, xavier otherwise" + _default("init"),
    )

    objective = p.add_argument_group("objective")
    objective.add_argument("--loss", choices=LOSSES, help="training loss" + _default("loss"))
    objective.add_argument(
        "--l1",
        type=float,
        metavar="LAMBDA",
        help="add LAMBDA*|W|_1 of the Linear weights to the loss" + _default("l1"),
    )
    objective.add_argument(
        "--l2",
        type=float,
        metavar="LAMBDA",
        help="add LAMBDA*|W|^2/2 of the Linear weights to the loss" + _default("l2"),
    )

    optim = p.add_argument_group("optimizer")
    optim.add_argument(
        "--optimizer",
        metavar="NAME",
        help="any optimizer in manualgrad.optim, by lower-case name (sgd, adam, lbfgs, "
        "newton, ...; an unknown name lists them all)" + _default("optimizer"),
    )
    optim.add_argument(
        "--lr", type=float, help="learning rate (default: the optimizer's own default)"
    )
    optim.add_argument(
        "--momentum", type=float, help="momentum (sgd, rmsprop)" + _default("momentum")
    )
    optim.add_argument("--nesterov", action="store_true", help="Nesterov momentum (sgd)")
    optim.add_argument(
        "--betas",
        type=_betas,
        metavar="B1,B2",
        help="moment decay rates (adam, adamw)" + _default("betas"),
    )
    optim.add_argument(
        "--weight-decay",
        type=float,
        metavar="WD",
        help="the optimizer's weight decay" + _default("weight_decay"),
    )
    optim.add_argument(
        "--scheduler",
        choices=SCHEDULERS,
        help="learning-rate schedule over "
        "the epochs: none, cosine (to 0), step (x0.1 each third)" + _default("scheduler"),
    )

    loop = p.add_argument_group("training loop")
    loop.add_argument(
        "--batch-size",
        type=_batch_size,
        metavar="N|full",
        help="examples per "
        "step: full = full-batch gradient descent, 1 = single-sample (online) "
        "training, else mini-batch" + _default("batch_size"),
    )
    loop.add_argument(
        "--epochs", type=int, help="maximum number of epochs (the budget)" + _default("epochs")
    )
    loop.add_argument(
        "--tol",
        type=float,
        help="stop when the training loss changes by less "
        "than TOL for --patience epochs in a row; 0 = never" + _default("tol"),
    )
    loop.add_argument(
        "--patience",
        type=int,
        help="epochs without progress before --tol or "
        "--early-stopping stops the run" + _default("patience"),
    )
    loop.add_argument(
        "--early-stopping",
        action="store_true",
        help="stop when the validation "
        "loss has not improved by --min-delta for --patience epochs, and restore "
        "the best weights",
    )
    loop.add_argument(
        "--min-delta",
        type=float,
        help="smallest val-loss decrease that counts as an improvement" + _default("min_delta"),
    )
    loop.add_argument(
        "--seed", type=int, help="seed of the init, the split and the shuffling" + _default("seed")
    )
    loop.add_argument("--device", choices=DEVICES, help="where to train" + _default("device"))
    loop.add_argument(
        "--threads",
        type=int,
        help="CPU threads for torch; 0 = torch's default. Layers this small run fastest on one "
        "thread (more only add synchronisation)" + _default("threads"),
    )

    logging = p.add_argument_group("logging and checkpoints")
    logging.add_argument(
        "--logdir", metavar="DIR", help="parent of the run directories" + _default("logdir")
    )
    logging.add_argument("--name", help="run name suffix (default: DATASET-ACTIVATION-OPTIMIZER)")
    logging.add_argument(
        "--log-interval",
        type=int,
        metavar="STEPS",
        help="log per-layer "
        "gradient/weight/update/activation statistics every STEPS optimizer "
        "steps" + _default("log_interval"),
    )
    logging.add_argument(
        "--hist-interval",
        type=int,
        metavar="EPOCHS",
        help="histograms of "
        "weights, gradients and activations every EPOCHS epochs" + _default("hist_interval"),
    )
    logging.add_argument(
        "--check-interval",
        type=int,
        metavar="EPOCHS",
        help="compare manual "
        "and autograd gradients on a probe batch (check/max_grad_diff) every "
        "EPOCHS epochs" + _default("check_interval"),
    )
    logging.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue RUN_DIR from its last.pt "
        "with its config.json (only --epochs, --quiet, --device and the "
        "logging intervals may change)",
    )
    logging.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar or per-epoch "
        "lines (the bar is also off when stderr is not a terminal)",
    )
    logging.add_argument(
        "--dry-run",
        action="store_true",
        help="run one batch (forward, backward, update) and write nothing",
    )


def make_config(args: argparse.Namespace) -> TrainConfig:
    """The config of the parsed options; with ``--resume`` the run's ``config.json`` updated
    with the options given."""
    given = {k: v for k, v in vars(args).items() if k in FIELDS}
    if "resume" not in given:
        return TrainConfig(**given)
    run = Path(given["resume"])
    path = run / "config.json"
    if not path.is_file():
        raise CommandError(f"--resume {run}: not a run directory (no config.json)")
    fixed = sorted(set(given) - RESUMABLE)
    if fixed:
        option = "--" + fixed[0].replace("_", "-")
        raise CommandError(f"{option} cannot change when resuming (it is fixed by {path})")
    try:
        saved = TrainConfig.load(path)
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot read {path}: {error}") from None
    return replace(saved, **given)


def summary(result: TrainResult) -> str:
    """The closing lines: best val accuracy, epochs, the restored weights, time, run directory,
    how to view it."""
    epochs = f"{result.epochs} epoch{'' if result.epochs == 1 else 's'}"
    lines = [
        f"best val acc {result.best_val_accuracy:.2%} (epoch {result.best_epoch}) · "
        f"{epochs} ({result.stopped}) · {result.seconds:.1f} s"
    ]
    if result.restored_epoch is not None:
        lines.append(
            f"model.pt holds epoch {result.restored_epoch}'s weights (lowest val loss): "
            f"val acc {result.restored['val_accuracy']:.2%}, "
            f"val loss {result.restored['val_loss']:.4f}"
        )
    lines += [f"run: {result.run_dir}", f"tensorboard --logdir {result.run_dir.parent}"]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``manualgrad train``; returns the exit status (torch's thread count is restored
    afterwards, so calling this in-process leaves no trace)."""
    try:
        config = make_config(args)
        config.validate()
    except (CommandError, ValueError) as error:
        return fail(PROG, str(error))

    import torch

    threads = torch.get_num_threads()
    try:
        return _train(config)
    finally:
        torch.set_num_threads(threads)


def _train(config: TrainConfig) -> int:
    import torch

    from manualgrad.train.checkpoint import CheckpointError
    from manualgrad.train.data import DataError
    from manualgrad.train.trainer import NonFiniteLossError, SetupError, Trainer

    try:
        if config.threads:
            torch.set_num_threads(config.threads)
        trainer = Trainer(config)
    except (ValueError, DataError, CheckpointError, SetupError) as error:
        return fail(PROG, str(error))
    try:
        result = trainer.fit()
    except NonFiniteLossError as error:
        return fail(PROG, str(error), 1)
    except KeyboardInterrupt:
        where = trainer.run_dir or "RUN_DIR"
        print(
            f"{PROG}: interrupted; continue with --resume {where} (from its last full epoch)",
            file=sys.stderr,
        )
        return 130
    if result.run_dir is not None and os.environ.get("RANK", "0") == "0":
        print(summary(result))
    return 0
