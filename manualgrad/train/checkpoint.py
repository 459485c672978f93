"""Checkpoints: ``last.pt`` every epoch (and once before the first, with the initial weights),
``best.pt`` whenever the validation accuracy improves, and ``model.pt`` — just ``{"model",
"config"}`` — when the run ends (with ``--early-stopping``: the best val-loss weights).

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so
``torch.load(path, weights_only=True)`` reads it without unpickling arbitrary objects:

    {"epoch", "step", "model", "optimizer", "scheduler", "rng", "trainer", "config"}

It is written atomically: serialised to a temporary file in the same directory, flushed and
fsync'ed, given the permissions of any other file the user creates (``0666 & ~umask``, like
``config.json``), then moved over the old file with ``os.replace`` (atomic on POSIX and Windows).
A process killed at any instant leaves either the previous checkpoint or the new one — never a
truncated file.

Reading verifies before it unpickles anything: a ``torch.save`` file is a zip archive whose every
record carries a CRC-32 of its bytes, and :func:`load` checks them all (``torch.load`` does not),
so a flipped byte inside a tensor is refused instead of resumed. A truncated file or one that is
not a checkpoint at all gets a message saying so.

The RNG states (torch CPU and CUDA, Python's ``random``, NumPy's global generator) are stored as
tensors and restored on resume, so whatever randomness comes after continues as it would have.
"""

from __future__ import annotations

import os
import random
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch


class CheckpointError(Exception):
    """A checkpoint that is missing or cannot be read."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save(path: Path, payload: dict[str, Any]) -> None:
    """``torch.save`` to a temporary sibling, fsync, then ``os.replace`` onto ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 otherwise
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def verify(path: Path) -> None:
    """Check that ``path`` is a whole zip archive whose records all match their CRC-32;
    :class:`CheckpointError` saying what is wrong otherwise."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, EOFError):
        raise CheckpointError(
            f"cannot read checkpoint {path}: truncated, or not a checkpoint at all"
        ) from None
    except OSError as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {error.strerror}") from None
    if bad is not None:
        raise CheckpointError(
            f"cannot read checkpoint {path}: corrupt (record {bad} fails its CRC check)"
        )


def load(path: Path) -> dict[str, Any]:
    """A checkpoint written by :func:`save`: verified (:func:`verify`), then loaded with
    ``weights_only=True``."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    verify(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a file it cannot read
        text = str(error).strip()
        if "weights_only" in text or not text:  # torch's advice to unpickle: never for this file
            reason = "it holds objects other than tensors and plain values (not written here)"
        else:
            reason = text.splitlines()[0]
        raise CheckpointError(f"cannot read checkpoint {path}: {reason}") from None


def rng_state() -> dict[str, Any]:
    """Every global RNG state, as tensors and plain values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
