"""``torchrun --nproc_per_node 2 -m manualgrad train``: DDP on gloo over 127.0.0.1 follows the
single-process run (same global batch) to float32 tolerance, and only rank 0 writes.
About 25 s on 2 busy cores (two fresh interpreters), so it stays in the default suite."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.train_helpers import ROOT, only_run, train

# xor: 800 training points, a global batch of 80 = 2 ranks x 40, 10 steps per epoch
ARGS = [
    "--dataset",
    "xor",
    "--hidden",
    "8",
    "--batch-size",
    "80",
    "--epochs",
    "3",
    "--optimizer",
    "sgd",
    "--momentum",
    "0.9",
    "--lr",
    "0.1",
    "--quiet",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_run_matches_one_process(tmp_path: Path) -> None:
    single, double = tmp_path / "single", tmp_path / "double"
    assert train([*ARGS, "--logdir", str(single)]) == 0
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "manualgrad",
        "train",
        *ARGS,
        "--logdir",
        str(double),
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT), GLOO_SOCKET_IFNAME="lo")
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("tensorboard --logdir") == 1  # rank 0 prints the summary
    a, b = (torch.load(only_run(d) / "last.pt", weights_only=True) for d in (single, double))
    assert a["step"] == b["step"] == 30
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, rtol=1e-5, atol=1e-6)
    for x, y in zip(a["trainer"]["history"], b["trainer"]["history"], strict=True):
        for key in x:
            assert y[key] == pytest.approx(x[key], rel=1e-5, abs=1e-6), key
