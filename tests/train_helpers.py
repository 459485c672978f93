"""Shared pieces of the ``manualgrad train`` tests: small fast configs, event-file reading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from manualgrad.cli import main
from manualgrad.train import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
ALL = {"scalars": 0, "histograms": 0, "tensors": 0, "compressedHistograms": 0, "images": 0}


@pytest.fixture
def one_thread():
    """Tiny layers run fastest single-threaded (as ``manualgrad train`` does by default)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_config(logdir: Path, **overrides) -> TrainConfig:
    """A quick run: xor, one small hidden layer, few epochs, nothing printed."""
    values = dict(dataset="xor", hidden=(8,), epochs=2, logdir=str(logdir), quiet=True)
    return TrainConfig(**(values | overrides))


def only_run(logdir: Path) -> Path:
    """The single run directory under ``logdir``."""
    (run,) = [p for p in logdir.iterdir() if p.is_dir()]
    return run


def events(path: Path) -> EventAccumulator:
    """Everything TensorBoard would read from one run directory."""
    accumulator = EventAccumulator(str(path), size_guidance=ALL)
    accumulator.Reload()
    return accumulator


def scalar_values(path: Path, tag: str) -> list[tuple[int, float]]:
    """``(step, value)`` of a scalar tag."""
    return [(e.step, e.value) for e in events(path).Scalars(tag)]


def train(argv: list[str]) -> int:
    """``manualgrad train ARGV``, in-process: its exit status."""
    return main(["train", *argv])


def hparams_session(path: Path) -> tuple[dict[str, object], str, str]:
    """The HPARAMS entry of a run: ({name: value}, session group, session status)."""
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

    content = events(path).PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]
    ).session_start_info
    end = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_end_info"]
    ).session_end_info
    values = {k: getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()}
    return values, start.group_name, api_pb2.Status.Name(end.status)
