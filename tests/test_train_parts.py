"""The trainer's parts: the MNIST IDX reader, the data sets, batch modes, stopping rules, the
torch twin behind ``check/max_grad_diff``, every optimizer, the config file."""

from __future__ import annotations

import gzip
import json
import math
import struct
from pathlib import Path

import pytest
import torch

import manualgrad
from manualgrad.conversion import to_torch
from manualgrad.train import TrainConfig, Trainer
from manualgrad.train.config import ACTIVATIONS, LOSSES
from manualgrad.train.data import DataError, load_dataset, read_idx
from manualgrad.train.diagnostics import max_grad_diff
from manualgrad.train.early_stopping import Convergence, EarlyStopping
from manualgrad.train.model import build_loss, build_mlp
from manualgrad.train.optimizers import available
from tests.train_helpers import one_thread, only_run, small_config, train

__all__ = ["one_thread"]  # fixture, imported for pytest
twin_module = to_torch.__module__


def write_idx(path: Path, data: torch.Tensor, magic: int) -> None:
    """An IDX file (gzip if the name ends in .gz): magic, dims, uint8 data, big-endian."""
    payload = struct.pack(f">I{data.dim()}I", magic, *data.shape) + data.numpy().tobytes()
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)


def write_mnist(root: Path, prefix: str, n: int, suffix: str, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 6, 5), generator=gen, dtype=torch.uint8)
    labels = torch.arange(n, dtype=torch.uint8) % 3
    write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", images, 2051)
    write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", labels, 2049)
    return images


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path: Path, suffix: str) -> None:
    images = write_mnist(tmp_path, "train", 7, suffix)
    assert torch.equal(read_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", 2051), images)
    labels = read_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", 2049)
    assert labels.tolist() == [0, 1, 2, 0, 1, 2, 0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (struct.pack(">I", 2049) + bytes(8), "bad IDX magic number 2049"),
        (b"\x00", "bad IDX magic number nothing"),
        (struct.pack(">I3I", 2051, 2, 2, 2) + bytes(5), "needs 8 bytes, found 5"),
        (struct.pack(">II", 2051, 2), "truncated IDX header"),
    ],
)
def test_idx_rejects_corrupt_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_idx(path, 2051)


def test_idx_rejects_broken_gzip(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match="cannot read"):
        read_idx(path, 2051)


def test_mnist_split_and_t10k(tmp_path: Path) -> None:
    write_mnist(tmp_path, "train", 20, ".gz")
    split = load_dataset("mnist", seed=0, val_fraction=0.25, data_dir=str(tmp_path))
    assert (len(split.x_train), len(split.x_val), split.num_features) == (15, 5, 30)
    write_mnist(tmp_path, "t10k", 4, "", seed=1)
    split = load_dataset("mnist", seed=0, val_fraction=0.25, data_dir=str(tmp_path))
    assert (len(split.x_train), len(split.x_val), split.num_classes) == (20, 4, 3)


def test_train_on_mnist_files(tmp_path: Path) -> None:
    write_mnist(tmp_path, "train", 40, "")
    args = ["--dataset", "mnist", "--data-dir", str(tmp_path), "--hidden", "4", "--epochs", "1"]
    assert train([*args, "--quiet", "--logdir", str(tmp_path / "runs")]) == 0


def test_hidden_none_trains_a_linear_model(tmp_path: Path) -> None:
    logdir = tmp_path / "runs"
    args = ["--dataset", "xor", "--hidden", "none", "--epochs", "2", "--quiet"]
    assert train([*args, "--logdir", str(logdir)]) == 0
    run = only_run(logdir)
    assert json.loads((run / "config.json").read_text())["hidden"] == []
    state = torch.load(run / "model.pt", weights_only=True)
    assert sorted(state["model"]) == ["out.bias", "out.weight"]  # one Linear: inputs -> classes
    assert train(["--resume", str(run), "--epochs", "3", "--quiet"]) == 0


@pytest.mark.parametrize("name", ["digits", "xor", "spirals"])
def test_datasets_are_seeded_and_standardised(name: str) -> None:
    a = load_dataset(name, seed=3, val_fraction=0.2)
    b = load_dataset(name, seed=3, val_fraction=0.2)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_val, b.y_val)
    assert a.x_train.dtype == torch.float32
    assert abs(a.x_train.mean().item()) < 1e-4 and abs(a.x_train.std().item() - 1) < 1e-3
    total = len(a.x_train) + len(a.x_val)
    assert len(a.x_val) == round(total * 0.2)
    c = load_dataset(name, seed=4, val_fraction=0.2)
    assert not torch.equal(a.y_val, c.y_val)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize(("batch_size", "steps"), [("full", 1), (32, 4), (1, 100)])
def test_full_mini_and_single_sample_batches(tmp_path: Path, batch_size, steps: int) -> None:
    config = small_config(tmp_path, batch_size=batch_size, epochs=1, val_fraction=0.9)
    trainer = Trainer(config)  # xor: 100 training points
    result = trainer.fit()
    assert trainer.step == steps
    assert result.epochs == 1 and math.isfinite(result.history[0]["train_loss"])


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("name", sorted(available()))
def test_every_optimizer_trains(tmp_path: Path, name: str) -> None:
    config = small_config(
        tmp_path, optimizer=name, hidden=(4,), batch_size="full", epochs=2, check_interval=1
    )
    result = Trainer(config).fit()
    assert result.epochs == 2
    assert all(math.isfinite(h["train_loss"]) for h in result.history)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"] + 1e-6


@pytest.mark.usefixtures("one_thread")
def test_tol_stops_at_convergence(tmp_path: Path) -> None:
    result = Trainer(small_config(tmp_path, tol=1e3, patience=2, epochs=50)).fit()
    # epoch 1 compares with +inf; epochs 2 and 3 change by < tol
    assert (result.stopped, result.epochs) == ("converged", 3)


def test_convergence_counts_quiet_epochs() -> None:
    rule = Convergence(tol=0.1, patience=2)
    assert [rule.update(x) for x in (5.0, 4.0, 3.95, 3.0, 2.95, 2.9)] == [
        False,
        False,
        False,
        False,
        False,
        True,
    ]
    restored = Convergence(tol=0.1, patience=2)
    restored.load_state_dict(rule.state_dict())
    assert restored.state_dict() == rule.state_dict()
    assert not Convergence(tol=0.0, patience=1).update(1.0)


def test_early_stopping_restores_the_best_weights() -> None:
    model = torch.nn.Linear(2, 1)
    rule = EarlyStopping(patience=2, min_delta=0.01)
    losses, stops = [1.0, 0.5, 0.495, 0.6], []
    for epoch, loss in enumerate(losses, start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        stops.append(rule.update(loss, epoch, model))
    assert stops == [False, False, False, True] and rule.best_epoch == 2
    rule.restore_best(model)
    assert torch.all(model.weight == 2)


@pytest.mark.usefixtures("one_thread")
def test_early_stopping_in_the_loop(tmp_path: Path) -> None:
    config = small_config(tmp_path, early_stopping=True, patience=1, min_delta=10.0, epochs=20)
    trainer = Trainer(config)
    result = trainer.fit()
    assert (result.stopped, result.epochs) == ("early_stopping", 2)
    best = trainer.early.best_weights
    assert all(torch.equal(v, best[k]) for k, v in trainer.model.state_dict().items())
    saved = torch.load(result.run_dir / "model.pt", weights_only=True)["model"]
    assert all(torch.equal(v, best[k]) for k, v in saved.items())
    last = torch.load(result.run_dir / "last.pt", weights_only=True)["model"]
    assert not all(torch.equal(v, best[k]) for k, v in last.items())


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_torch_twin_gradients_agree(activation: str, loss: str) -> None:
    model = build_mlp(5, (7, 6), 3, activation, "auto")
    loss_fn, target_of = build_loss(loss, 3)
    twin = to_torch(model)
    # torch.nn modules, or the autograd references for modules torch lacks (Step, HingeLoss)
    assert all(type(m).__module__.startswith(("torch.", twin_module)) for m in twin.modules())
    assert any(type(m).__module__.startswith("manualgrad") for m in model.modules())
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    torch.testing.assert_close(model(x), twin(x))
    assert max_grad_diff(model, loss_fn, x, target_of(y)) <= 1e-5


def test_max_grad_diff_catches_a_wrong_backward() -> None:
    class Doubled(manualgrad.nn.ReLU):  # a module whose "derivation" is off by a factor 2
        def forward(self, input: torch.Tensor) -> torch.Tensor:
            y = super().forward(input)
            return y + (y - y.detach())

    model = build_mlp(4, (5,), 2, "relu", "he")
    model.act1 = Doubled()
    loss_fn, target_of = build_loss("cross_entropy", 2)
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    assert max_grad_diff(model, loss_fn, x, target_of(y)) > 1e-3


@pytest.mark.parametrize("init", ["he", "xavier", "normal", "zeros"])
def test_init_options(init: str) -> None:
    torch.manual_seed(0)
    model = build_mlp(64, (256,), 10, "relu", init)
    weight = model.fc1.weight
    expected_std = {
        "he": math.sqrt(2 / 64),
        "normal": 0.01,
        "zeros": 0.0,
        "xavier": math.sqrt(2) * math.sqrt(2 / (64 + 256)),
    }[init]
    assert weight.std().item() == pytest.approx(expected_std, rel=0.05, abs=1e-9)
    assert torch.all(model.fc1.bias == 0)


def test_config_json_round_trip(tmp_path: Path) -> None:
    config = TrainConfig(hidden=(3, 4), betas=(0.5, 0.6), batch_size="full", lr=0.1)
    config.save(tmp_path / "config.json")
    assert TrainConfig.load(tmp_path / "config.json") == config
    with pytest.raises(ValueError, match="unknown config keys: bogus"):
        TrainConfig.from_dict({"bogus": 1})


def test_batched_dense_hessian_equals_one_product_per_row() -> None:
    from manualgrad.optim import newton

    torch.manual_seed(0)
    model = build_mlp(5, (12,), 3, "tanh", "auto").double()  # 111 parameters: 2 chunks of 64
    params = list(model.parameters())
    loss = torch.nn.functional.cross_entropy(
        model(torch.randn(9, 5, dtype=torch.float64)), torch.randint(0, 3, (9,))
    )
    grad = newton.flat_gradient(loss, params)
    rows = [newton.hessian_vector_product(grad, params, e) for e in torch.eye(grad.numel())]
    expected = torch.stack(rows)
    torch.testing.assert_close(newton.dense_hessian(grad, params), (expected + expected.T) / 2)
