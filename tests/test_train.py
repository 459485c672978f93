"""``manualgrad train`` end to end: the default run's accuracy, what it writes for TensorBoard
(read back with EventAccumulator and served by an in-process TensorBoard), and exact resume."""

from __future__ import annotations

import contextlib
import io
import json
import math
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from tensorboard import program

from manualgrad.train import TrainConfig, Trainer
from manualgrad.train.data import load_dataset
from tests.train_helpers import events, hparams_session, only_run, scalar_values, train

EPOCHS = 5
LAYERS = ("fc1", "fc2", "out")
ACTS = ("act1", "act2")


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``manualgrad train`` with the defaults except a few epochs: (run dir, stdout)."""
    logdir = tmp_path_factory.mktemp("runs")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert train(["--epochs", str(EPOCHS), "--quiet", "--logdir", str(logdir)]) == 0
    return only_run(logdir), out.getvalue()


def test_default_config_reaches_95_percent(default_run: tuple[Path, str]) -> None:
    run, _ = default_run
    accuracy = scalar_values(run / "val", "accuracy")
    assert len(accuracy) == EPOCHS
    assert accuracy[-1][1] >= 0.95, accuracy


def test_final_summary(default_run: tuple[Path, str]) -> None:
    run, stdout = default_run
    lines = stdout.strip().splitlines()
    assert lines[-1] == f"tensorboard --logdir {run.parent}"
    assert lines[-2] == f"run: {run}"
    assert lines[-3].startswith("best val acc ") and f"{EPOCHS} epochs" in lines[-3]


def test_run_directory(default_run: tuple[Path, str]) -> None:
    run, _ = default_run
    assert run.name.endswith("-digits-relu-adam")
    assert time.strptime(run.name[:15], "%Y%m%d-%H%M%S")
    # hparams go into the run itself: no timestamped sub-run besides train/, val/ and model/
    assert sorted(p.name for p in run.iterdir() if p.is_dir()) == ["model", "train", "val"]
    saved = json.loads((run / "config.json").read_text())
    assert saved["data_dir"] is None  # --data-dir is MNIST's only
    modes = {
        p.name: p.stat().st_mode & 0o777 for p in run.iterdir() if p.suffix in (".pt", ".json")
    }
    assert set(modes.values()) == {modes["config.json"]}, modes  # checkpoints not 0600
    expected = TrainConfig(epochs=EPOCHS, quiet=True, logdir=str(run.parent)).to_dict()
    assert saved == json.loads(json.dumps(expected))
    for name in ("last.pt", "best.pt"):
        state = torch.load(run / name, weights_only=True)
        assert {"model", "optimizer", "scheduler", "epoch", "rng"} <= set(state)
    last = torch.load(run / "last.pt", weights_only=True)
    assert last["epoch"] == EPOCHS
    final = torch.load(run / "model.pt", weights_only=True)
    assert all(torch.equal(v, last["model"][k]) for k, v in final["model"].items())


def test_every_tag_is_logged_finite_with_the_right_steps(default_run: tuple[Path, str]) -> None:
    run, _ = default_run
    data = load_dataset("digits", seed=0, val_fraction=0.2)
    steps = math.ceil(len(data.x_train) / 32) * EPOCHS
    diagnostics = steps // 10  # --log-interval 10
    per_epoch = {"lr/group0": EPOCHS}  # no `epoch` chart, no one-point hparam/* charts
    per_check = {"check/max_grad_diff": math.ceil(EPOCHS / 5)}  # --check-interval 5
    per_step = {
        f"{kind}/{layer}": diagnostics
        for kind in ("grad_norm", "weight_norm", "update_ratio")
        for layer in LAYERS
    } | {
        f"{kind}/{act}": diagnostics
        for kind in ("activation_mean", "activation_std", "dead_relu")
        for act in ACTS
    }
    expected = per_epoch | per_check | per_step
    main_run = events(run)
    assert set(main_run.Tags()["scalars"]) == set(expected)
    for tag, count in expected.items():
        values = [e.value for e in main_run.Scalars(tag)]
        assert len(values) == count, tag
        assert all(math.isfinite(v) for v in values), tag
    for split in ("train", "val"):
        split_run = events(run / split)
        assert set(split_run.Tags()["scalars"]) == {"loss", "accuracy"}
        for tag in ("loss", "accuracy"):
            values = split_run.Scalars(tag)
            assert [e.step for e in values] == [steps // EPOCHS * k for k in range(1, EPOCHS + 1)]
            assert all(math.isfinite(e.value) for e in values)
    histograms = {
        f"{kind}/{layer}.{p}"
        for kind in ("weights", "grads")
        for layer in LAYERS
        for p in ("weight", "bias")
    } | {f"activations/{act}" for act in ACTS}
    assert set(main_run.Tags()["histograms"]) == histograms
    for tag in histograms:  # --hist-interval 5: epoch 1 only
        assert len(main_run.Histograms(tag)) == 1, tag
    assert main_run.Tags()["graph"]
    assert {"model/text_summary", "config/text_summary"} <= set(main_run.Tags()["tensors"])
    values, group, status = hparams_session(run)
    assert (group, status, values["outcome"]) == (run.name, "STATUS_SUCCESS", "budget")
    assert values["nesterov"] is False and values["early_stopping"] is False  # not 0.0
    assert values["hidden"] == "(64, 64)" and values["epochs"] == EPOCHS
    assert set(main_run.PluginTagToContent("hparams")) == {
        "_hparams_/experiment",
        "_hparams_/session_start_info",
        "_hparams_/session_end_info",
    }
    # model/: one point, the val metrics of model.pt's weights (here the last epoch's)
    kept = events(run / "model")
    assert set(kept.Tags()["scalars"]) == {"loss", "accuracy"}
    assert [(e.step, e.value) for e in kept.Scalars("accuracy")] == [
        (steps, events(run / "val").Scalars("accuracy")[-1].value)
    ]
    assert set(main_run.Tags()["images"]) == {
        "results/confusion_matrix",
        "results/first_layer_weights",
    }


def test_max_grad_diff_within_float32_tolerance(default_run: tuple[Path, str]) -> None:
    run, _ = default_run
    for _, value in scalar_values(run, "check/max_grad_diff"):
        assert 0.0 <= value <= 1e-5


def _get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_tensorboard_serves_the_run(default_run: tuple[Path, str]) -> None:
    run, _ = default_run
    board = program.TensorBoard()
    board.configure(
        argv=[
            None,
            "--logdir",
            str(run.parent),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--load_fast",
            "false",
            "--reload_interval",
            "1",
        ]
    )
    url = board.launch()
    wanted = {run.name, f"{run.name}/train", f"{run.name}/val"}
    deadline = time.monotonic() + 30
    while not wanted <= set(_get_json(url + "data/runs")):
        assert time.monotonic() < deadline, "TensorBoard did not load the run"
        time.sleep(0.2)
    tags = _get_json(url + "data/plugin/scalars/tags")
    assert {"loss", "accuracy"} <= set(tags[f"{run.name}/train"])
    assert {"loss", "accuracy"} <= set(tags[f"{run.name}/val"])
    assert {"check/max_grad_diff", "grad_norm/fc1", "lr/group0"} <= set(tags[run.name])


def test_resume_is_bit_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    args = [
        "--hidden",
        "16",
        "--epochs",
        "4",
        "--batch-size",
        "128",
        "--log-interval",
        "2",
        "--hist-interval",
        "1",
        "--check-interval",
        "1",
        "--quiet",
    ]
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    assert train([*args, "--logdir", str(straight)]) == 0

    original = Trainer.train_step

    def crash_mid_epoch_3(self, *a, **k):
        if self.step == 27:  # 12 steps per epoch: the 4th step of epoch 3
            raise KeyboardInterrupt
        return original(self, *a, **k)

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "train_step", crash_mid_epoch_3)
        assert train([*args, "--logdir", str(interrupted)]) == 130
    run_a, run_b = only_run(straight), only_run(interrupted)
    # a deliberate Ctrl-C is no error: one line saying how to continue
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"manualgrad train: interrupted; continue with --resume {run_b} " + (
        "(from its last full epoch)"
    )
    values, group, status = hparams_session(run_b)  # in HPARAMS, as interrupted
    assert (values["outcome"], group, status) == ("interrupted", run_b.name, "STATUS_UNKNOWN")
    assert torch.load(run_b / "last.pt", weights_only=True)["epoch"] == 2
    assert train(["--resume", str(run_b), "--quiet"]) == 0

    a, b = (torch.load(r / "last.pt", weights_only=True) for r in (run_a, run_b))
    assert a["epoch"] == b["epoch"] == 4 and a["step"] == b["step"]
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for index, state in a["optimizer"]["state"].items():
        for key, value in state.items():
            assert torch.equal(value, b["optimizer"]["state"][index][key]), key
    assert a["trainer"]["history"] == b["trainer"]["history"]
    # the event files agree too (events logged after last.pt and before the crash are purged)
    for sub, tag in (
        ("val", "loss"),
        ("train", "accuracy"),
        ("", "grad_norm/fc1"),
        ("", "check/max_grad_diff"),
        ("", "update_ratio/out"),
    ):
        assert scalar_values(run_a / sub, tag) == scalar_values(run_b / sub, tag), tag
