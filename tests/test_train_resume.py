"""``--resume`` as a user meets it: a checkpoint or ``config.json`` that does not match is refused
with one line naming what is wrong (never resumed silently, never a traceback), a kill at any
checkpoint write leaves ``last.pt`` and ``best.pt`` agreeing, a new ``--epochs`` re-plans the
schedule."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from manualgrad.train import checkpoint
from manualgrad.train import trainer as trainer_module
from tests.train_helpers import ROOT, only_run, train

ARGS = ["--dataset", "xor", "--hidden", "8", "--batch-size", "64", "--quiet"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-epoch run."""
    logdir = tmp_path_factory.mktemp("runs")
    assert train([*ARGS, "--epochs", "2", "--logdir", str(logdir)]) == 0
    return only_run(logdir)


@pytest.fixture
def run_copy(finished: Path, tmp_path: Path) -> Path:
    """A copy of the finished run to spoil."""
    return Path(shutil.copytree(finished, tmp_path / "run"))


def _one_error_line(stderr: str, *fragments: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("manualgrad train: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _edit_config(run: Path, text: str) -> None:
    (run / "config.json").write_text(text)


def _config(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        ({"hidden": 5}, ["hidden must be a list of int, got 5"]),
        ({"epochs": "ten"}, ['epochs must be int, got "ten"']),
        ({"lr": "0.1"}, ['lr must be float or null, got "0.1"']),
        ({"nesterov": 1}, ["nesterov must be bool, got 1"]),
        ({"hidden": [16]}, ["hidden is [16] but", "written with [8]"]),
        ({"optimizer": "sgd"}, ['optimizer is "sgd" but', 'written with "adam"']),
    ],
    ids=["hidden-int", "epochs-str", "lr-str", "bool-int", "hidden-changed", "optimizer-changed"],
)
def test_edited_config_is_refused_naming_the_field(run_copy, change, fragments, capsys) -> None:
    _edit_config(run_copy, json.dumps(_config(run_copy) | change))
    assert train(["--resume", str(run_copy), "--epochs", "3", "--quiet"]) == 2
    _one_error_line(capsys.readouterr().err, *fragments)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("[1, 2]", "got a list"), ("null", "got null"), ("{", "cannot read")],
    ids=["list", "null", "not-json"],
)
def test_config_that_is_not_an_object_is_refused(run_copy, text, fragment, capsys) -> None:
    _edit_config(run_copy, text)
    assert train(["--resume", str(run_copy), "--quiet"]) == 2
    _one_error_line(capsys.readouterr().err, "config.json", fragment)


def _rewrite_last(run: Path, edit) -> None:
    state = torch.load(run / "last.pt", weights_only=True)
    edit(state)
    checkpoint.save(run / "last.pt", state)


def test_checkpoint_without_model_is_refused(run_copy, capsys) -> None:
    _rewrite_last(run_copy, lambda state: state.pop("model"))
    assert train(["--resume", str(run_copy), "--epochs", "3", "--quiet"]) == 2
    _one_error_line(capsys.readouterr().err, "last.pt has no 'model' entry")


def test_checkpoint_tensor_of_the_wrong_shape_is_refused(run_copy, capsys) -> None:
    _rewrite_last(run_copy, lambda state: state["model"].update({"fc1.weight": torch.zeros(3)}))
    assert train(["--resume", str(run_copy), "--epochs", "3", "--quiet"]) == 2
    _one_error_line(capsys.readouterr().err, "fc1.weight should have shape (8, 2)", "(3,)")


def _flip_a_tensor_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        record = next(i for i in archive.infolist() if "/data/" in i.filename)
    name_end = data.index(record.filename.encode(), record.header_offset) + len(record.filename)
    extra = int.from_bytes(data[record.header_offset + 28 : record.header_offset + 30], "little")
    data[name_end + extra + 4] ^= 0x40  # inside the first tensor's bytes
    path.write_bytes(bytes(data))


def test_flipped_byte_inside_a_tensor_is_refused(run_copy, capsys) -> None:
    _flip_a_tensor_byte(run_copy / "last.pt")
    assert train(["--resume", str(run_copy), "--epochs", "3", "--quiet"]) == 2
    _one_error_line(capsys.readouterr().err, "corrupt", "fails its CRC check")


def test_truncated_and_foreign_checkpoints_say_so(run_copy, capsys) -> None:
    last = run_copy / "last.pt"
    last.write_bytes(last.read_bytes()[:300])
    assert train(["--resume", str(run_copy), "--quiet"]) == 2
    _one_error_line(capsys.readouterr().err, "truncated, or not a checkpoint")
    last.write_bytes(os.urandom(2000))
    assert train(["--resume", str(run_copy), "--quiet"]) == 2
    line = _one_error_line(capsys.readouterr().err, "truncated, or not a checkpoint")
    assert "weights_only" not in line  # torch's advice to unpickle an untrusted file


def test_a_pickle_that_is_not_ours_is_refused_without_torchs_advice(run_copy, capsys) -> None:
    torch.save({"model": torch.nn.Linear(2, 2)}, run_copy / "last.pt")  # a module, not tensors
    assert train(["--resume", str(run_copy), "--quiet"]) == 2
    line = _one_error_line(capsys.readouterr().err, "objects other than tensors")
    assert "weights_only" not in line


def test_fewer_epochs_than_done_is_refused(run_copy, capsys) -> None:
    assert train(["--resume", str(run_copy), "--epochs", "1", "--quiet"]) == 2
    _one_error_line(capsys.readouterr().err, "--epochs 1", "already trained 2 epochs")


def test_longer_cosine_run_is_replanned(run_copy) -> None:
    before = torch.load(run_copy / "last.pt", weights_only=True)
    assert before["optimizer"]["param_groups"][0]["lr"] == 0.0  # the 2-epoch cosine ended at 0
    assert train(["--resume", str(run_copy), "--epochs", "4", "--quiet"]) == 0
    after = torch.load(run_copy / "last.pt", weights_only=True)
    base = 3e-3  # adam's default lr
    # after 4 of 4 epochs the cosine is at 0 again; epoch 3 trained at base·½(1 + cos(π·2/4))
    assert after["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-12)
    lrs = after["scheduler"]["_last_lr"]
    assert lrs == pytest.approx([base * 0.5 * (1 + math.cos(math.pi))], abs=1e-12)
    epoch3 = after["trainer"]["history"][2]
    assert epoch3["epoch"] == 3
    assert not all(
        torch.equal(before["model"][k], after["model"][k]) for k in before["model"]
    )  # the resumed epochs moved the weights (lr was not left at 0)
    assert _config(run_copy)["epochs"] == 4


class Killed(BaseException):
    """What ``os._exit`` does to an in-process run here."""


def _write_points(epochs: int) -> list[str]:
    points = ["last.pt@0"]
    for epoch in range(1, epochs + 1):
        points += [f"best.pt@{epoch}", f"last.pt@{epoch}"]
    return points


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted 4-epoch run (val accuracy improves at several epochs)."""
    logdir = tmp_path_factory.mktemp("straight")
    assert train([*ARGS, "--epochs", "4", "--seed", "1", "--logdir", str(logdir)]) == 0
    return only_run(logdir)


@pytest.mark.parametrize("point", _write_points(4))
def test_kill_at_each_checkpoint_write_then_resume_agrees(
    point: str, straight: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def exit_now(status: int) -> None:
        raise Killed(status)

    monkeypatch.setenv(trainer_module.EXIT_AFTER, point)
    monkeypatch.setattr(os, "_exit", exit_now)
    try:
        status = train([*ARGS, "--epochs", "4", "--seed", "1", "--logdir", str(tmp_path)])
    except Killed:
        status = None
    monkeypatch.delenv(trainer_module.EXIT_AFTER)
    run = only_run(tmp_path)
    if status is None:  # this write happened (best.pt is only written on an improvement)
        assert train(["--resume", str(run), "--quiet"]) == 0
    for name in ("last.pt", "best.pt"):
        a, b = (torch.load(r / name, weights_only=True) for r in (straight, run))
        assert a["epoch"] == b["epoch"], name
        assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]), name
    last = torch.load(run / "last.pt", weights_only=True)
    best = torch.load(run / "best.pt", weights_only=True)
    assert best["epoch"] == last["trainer"]["best_epoch"]


@pytest.mark.slow  # a second interpreter importing torch (the sweep above runs in-process)
def test_the_exit_hook_kills_a_real_process_after_best_pt(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "manualgrad", "train", *ARGS, "--epochs", "2"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{trainer_module.EXIT_AFTER: "best.pt@1"})
    done = subprocess.run([*command, "--logdir", str(tmp_path)], env=env, cwd=ROOT, timeout=120)
    assert done.returncode == trainer_module.EXIT_AFTER_STATUS
    run = only_run(tmp_path)
    # best.pt is ahead of last.pt: resuming re-runs epoch 1, which rewrites it identically
    assert torch.load(run / "best.pt", weights_only=True)["epoch"] == 1
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 0
