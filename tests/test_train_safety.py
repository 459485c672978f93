"""What ``manualgrad train`` does when things go wrong: SIGKILL mid-training, a diverging loss,
bad options or files (one error line, exit status 2), a failing checkpoint write, NaN
histograms."""

from __future__ import annotations

import os
import random
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from manualgrad.cli import main as manualgrad_main
from manualgrad.train import checkpoint
from manualgrad.train.diagnostics import RunLogger
from tests.train_helpers import ROOT, events, hparams_session, only_run, train


def _one_error_line(stderr: str, *fragments: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("manualgrad train: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_sigkill_mid_training_leaves_a_loadable_last_checkpoint(tmp_path: Path) -> None:
    # full-batch xor: many short epochs, so the process spends much of its time saving
    command = [
        sys.executable,
        "-m",
        "manualgrad",
        "train",
        "--dataset",
        "xor",
        "--hidden",
        "8",
        "--batch-size",
        "full",
        "--epochs",
        "100000",
        "--quiet",
        "--hist-interval",
        "1000",
        "--logdir",
        str(tmp_path),
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while not list(tmp_path.glob("*/last.pt")) or _epoch(tmp_path) < 20:
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.05)
        time.sleep(0.137)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stderr.close()
    state = torch.load(only_run(tmp_path) / "last.pt", weights_only=True)
    assert state["epoch"] >= 20
    assert all(torch.isfinite(t).all() for t in state["model"].values())


def _epoch(logdir: Path) -> int:
    try:
        return torch.load(only_run(logdir) / "last.pt", weights_only=True)["epoch"]
    except Exception:  # written between our listing and loading: try again
        return 0


def test_non_finite_loss_stops_with_a_clear_message(tmp_path: Path, capsys) -> None:
    args = [
        "--dataset",
        "xor",
        "--hidden",
        "8",
        "--optimizer",
        "sgd",
        "--epochs",
        "3",
        "--quiet",
        "--logdir",
        str(tmp_path),
    ]
    assert train([*args, "--lr", "0.1"]) == 0  # the same run trains fine with a sane lr
    capsys.readouterr()
    assert train([*args, "--lr", "1e30"]) == 1
    stderr = capsys.readouterr().err
    run = max(tmp_path.iterdir())
    _one_error_line(stderr, "non-finite loss at epoch 1, step", str(run / "last.pt"), "--lr")
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["epoch"] == 0  # the initial weights: the last good ones
    assert all(torch.isfinite(t).all() for t in state["model"].values())
    values, _, status = hparams_session(run)  # in HPARAMS too, with its outcome
    assert values["outcome"] == "non-finite loss" and status == "STATUS_FAILURE"


def _idx(path: Path, magic: int, shape: tuple[int, ...]) -> None:
    count = 1
    for size in shape:
        count *= size
    path.write_bytes(struct.pack(f">I{len(shape)}I", magic, *shape) + bytes(count))


@pytest.fixture
def bad_mnist(tmp_path: Path) -> Path:
    """MNIST files whose image file has the labels' magic number."""
    _idx(tmp_path / "train-images-idx3-ubyte", 2049, (4, 2, 2))
    _idx(tmp_path / "train-labels-idx1-ubyte", 2049, (4,))
    return tmp_path


@pytest.fixture
def bad_checkpoint(tmp_path: Path) -> Path:
    """A run directory whose last.pt is garbage."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / "last.pt").write_bytes(b"not a checkpoint")
    return run


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--dataset", "mnist", "--data-dir", "{tmp}/missing"], ["MNIST file not found"]),
        (
            ["--dataset", "mnist", "--data-dir", "{bad_mnist}"],
            ["bad IDX magic number 2049", "expected 2051"],
        ),
        (["--optimizer", "nope"], ["unknown --optimizer 'nope'", "adam", "sgd"]),
        (["--activation", "nope"], ["--activation", "invalid choice"]),
        (["--momentum", "0.9"], ["--momentum is not an option of --optimizer adam"]),
        (["--batch-size", "lots"], ["--batch-size", "integer or 'full'"]),
        (["--epochs", "0"], ["--epochs must be >= 1"]),
        (["--threads", "-1"], ["--threads must be >= 0, got -1"]),
        (["--logdir", "{tmp}/file/runs"], ["--logdir", "not writable"]),
        (["--resume", "{tmp}/nowhere"], ["not a run directory"]),
        (["--resume", "{bad_checkpoint}"], ["cannot read checkpoint"]),
        (["--resume", "{bad_checkpoint}", "--lr", "1"], ["--lr cannot change when resuming"]),
        (["--no-such-option"], ["unrecognized arguments: --no-such-option"]),
    ],
)
def test_bad_input_exits_2_with_one_line(
    args: list[str],
    fragments: list[str],
    tmp_path: Path,
    bad_mnist: Path,
    bad_checkpoint: Path,
    capsys,
) -> None:
    (tmp_path / "file").write_text("a file where a directory is expected")
    logdir = tmp_path / "runs"
    paths = {"tmp": tmp_path, "bad_mnist": bad_mnist, "bad_checkpoint": bad_checkpoint}
    argv = [a.format(**paths) for a in args]
    if "--logdir" not in argv and "--resume" not in argv:
        argv += ["--logdir", str(logdir)]
    assert train([*argv, "--quiet"]) == 2
    _one_error_line(capsys.readouterr().err, *fragments)
    assert not logdir.exists() or not any(logdir.iterdir())  # no run directory left behind


def test_bad_input_through_the_manualgrad_command(tmp_path: Path, capsys) -> None:
    # `manualgrad train ...` and `python -m manualgrad train ...` exit with this status
    assert manualgrad_main(["train", "--optimizer", "nope", "--logdir", str(tmp_path)]) == 2
    _one_error_line(capsys.readouterr().err, "unknown --optimizer 'nope'")


def test_help_explains_every_option(capsys) -> None:
    assert train(["--help"]) == 0
    text = capsys.readouterr().out
    for option in (
        "--dataset",
        "--data-dir",
        "--hidden",
        "--activation",
        "--init",
        "--loss",
        "--optimizer",
        "--lr",
        "--momentum",
        "--nesterov",
        "--betas",
        "--weight-decay",
        "--l1",
        "--l2",
        "--batch-size",
        "--epochs",
        "--tol",
        "--early-stopping",
        "--patience",
        "--min-delta",
        "--seed",
        "--logdir",
        "--name",
        "--log-interval",
        "--hist-interval",
        "--resume",
        "--device",
        "--quiet",
        "--dry-run",
    ):
        assert option in text, option


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_exits_2(tmp_path: Path, capsys) -> None:
    assert train(["--device", "cuda", "--logdir", str(tmp_path)]) == 2
    _one_error_line(capsys.readouterr().err, "--device cuda: CUDA is not available")


def test_dry_run_writes_nothing(tmp_path: Path, capsys) -> None:
    assert train(["--dry-run", "--logdir", str(tmp_path / "runs")]) == 0
    assert "dry run: one batch of 32" in capsys.readouterr().out
    assert not (tmp_path / "runs").exists()


def test_failed_checkpoint_write_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last.pt"
    checkpoint.save(path, {"epoch": 1, "w": torch.ones(3)})

    def crash(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, {"epoch": 2, "w": torch.zeros(3)})
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left


def test_rng_state_round_trip() -> None:
    state = checkpoint.rng_state()
    expected = torch.rand(3), random.random(), np.random.rand()
    checkpoint.set_rng_state(state)
    again = torch.rand(3), random.random(), np.random.rand()
    assert torch.equal(expected[0], again[0]) and expected[1:] == again[1:]


def test_histograms_skip_non_finite_values(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    with torch.no_grad():
        model.weight[0, 0] = float("nan")
        model.weight[1, 1] = float("inf")
        model.bias.fill_(float("nan"))
    logger = RunLogger(tmp_path)
    logger.histograms(model, {"act": torch.tensor([1.0, float("-inf"), 2.0])}, step=1)
    logger.close()
    run = events(tmp_path)
    assert set(run.Tags()["histograms"]) == {"weights/weight", "activations/act"}
    assert run.Histograms("weights/weight")[0].histogram_value.num == 4
    assert run.Histograms("activations/act")[0].histogram_value.num == 2


def test_resumed_writers_files_sort_after_the_originals(tmp_path: Path) -> None:
    # an original file written this second whose counter ("9") sorts after a later one ("10")
    now = int(time.time())
    for sub in ("", "train", "val"):
        (tmp_path / sub).mkdir(exist_ok=True)
        (tmp_path / sub / f"events.out.tfevents.{now:010d}.host.1.9").touch()
    logger = RunLogger(tmp_path, purge_step=5)
    logger.close()
    for sub in ("", "train", "val"):
        names = sorted(p.name for p in (tmp_path / sub).glob("events.out.tfevents.*"))
        assert names[0].endswith(".host.1.9"), names
        assert int(names[-1].split(".")[3]) > now, names
