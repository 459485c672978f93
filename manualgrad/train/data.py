"""Data sets for ``manualgrad train``, all offline, all as float32 feature matrices.

- ``digits``: scikit-learn's ``load_digits`` (1797 8×8 images, 10 classes, shipped with sklearn).
- ``mnist``: the IDX files from ``--data-dir`` (raw or ``.gz``), parsed here. Each file is a
  big-endian header — magic number, then one uint32 per dimension — followed by the uint8 data.
  The magic is 2051 (0x00000803: uint8, 3 dims) for images and 2049 (0x00000801: uint8, 1 dim)
  for labels; both are checked, as is the data length. ``t10k-*`` files, when present, are the
  validation set; otherwise a seeded split of the training files is.
- ``xor``: points uniform in [−1, 1]², class 1[x₁·x₂ > 0] — not linearly separable.
- ``spirals``: three interleaved spiral arms (the CS231n toy problem).

Inputs are standardised with one mean and one standard deviation over all of the *training*
split's values (validation statistics never leak into training). A single scale keeps pixels
comparable: per-feature scaling would blow up the rare ink of near-constant border pixels.
"""

from __future__ import annotations

import gzip
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

DIGITS_SHAPE = (8, 8)
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049


class DataError(Exception):
    """A data set that cannot be loaded: missing or corrupt file, bad contents."""


@dataclass
class DataSplit:
    """Standardised features and integer labels for training and validation."""

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    num_classes: int
    image_shape: tuple[int, ...] | None = None  # (H, W) of an image data set's examples

    @property
    def num_features(self) -> int:
        """Input width of the network."""
        return self.x_train.shape[1]


def load_dataset(name: str, *, seed: int, val_fraction: float, data_dir: str = "") -> DataSplit:
    """The named data set, split and standardised (deterministic for a given ``seed``)."""
    if name == "mnist":
        images, y_train, val = _mnist(Path(data_dir))
        image_shape = tuple(images.shape[1:])
        x_train = images.flatten(1)
        if val is None:
            x_train, y_train, x_val, y_val = split(x_train, y_train, val_fraction, seed)
        else:
            x_val, y_val = val[0].flatten(1), val[1]
    else:
        x, y = {"digits": _digits, "xor": _xor, "spirals": _spirals}[name](seed)
        x_train, y_train, x_val, y_val = split(x, y, val_fraction, seed)
        image_shape = DIGITS_SHAPE if name == "digits" else None
    mean, std = x_train.mean(), x_train.std().clamp_min(1e-6)
    num_classes = int(torch.cat([y_train, y_val]).max()) + 1
    return DataSplit(
        (x_train - mean) / std, y_train, (x_val - mean) / std, y_val, num_classes, image_shape
    )


def split(x: Tensor, y: Tensor, val_fraction: float, seed: int) -> tuple[Tensor, ...]:
    """Seeded random split: ``x_train, y_train, x_val, y_val`` with round(n·fraction) for val."""
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_val = max(1, round(len(x) * val_fraction))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


def _digits(seed: int) -> tuple[Tensor, Tensor]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return torch.tensor(digits.data, dtype=torch.float32), torch.tensor(digits.target)


def _xor(seed: int, n: int = 1000) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, generator=gen) * 2 - 1
    return x, (x[:, 0] * x[:, 1] > 0).long()


def _spirals(seed: int, per_class: int = 200, classes: int = 3) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    radius = torch.linspace(0.0, 1.0, per_class).repeat(classes)
    label = torch.arange(classes).repeat_interleave(per_class)
    angle = (
        torch.linspace(0.0, 4.0, per_class).repeat(classes)
        + label * (2 * math.pi / classes)
        + 0.2 * torch.randn(per_class * classes, generator=gen)
    )
    x = torch.stack([radius * torch.sin(angle), radius * torch.cos(angle)], dim=1)
    return x, label


def _mnist(root: Path) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor] | None]:
    """Training images and labels, and the t10k pair when both of its files exist."""
    x_train, y_train = _mnist_pair(root, "train")
    if _find(root, "t10k-images-idx3-ubyte") and _find(root, "t10k-labels-idx1-ubyte"):
        return x_train, y_train, _mnist_pair(root, "t10k")
    return x_train, y_train, None


def _mnist_pair(root: Path, prefix: str) -> tuple[Tensor, Tensor]:
    images = read_idx(_require(root, f"{prefix}-images-idx3-ubyte"), IMAGES_MAGIC)
    labels = read_idx(_require(root, f"{prefix}-labels-idx1-ubyte"), LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(f"{prefix}: {len(images)} images but {len(labels)} labels in {root}")
    return images.float() / 255.0, labels.long()


def _find(root: Path, stem: str) -> Path | None:
    for path in (root / stem, root / f"{stem}.gz"):
        if path.is_file():
            return path
    return None


def _require(root: Path, stem: str) -> Path:
    path = _find(root, stem)
    if path is None:
        raise DataError(f"MNIST file not found: {root / stem} (or .gz); set --data-dir")
    return path


def read_idx(path: Path, magic: int) -> Tensor:
    """A uint8 IDX file (raw or gzip) as a tensor; the magic number and length are checked."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as error:
        raise DataError(f"cannot read {path}: {error}") from None
    if len(raw) < 4 or struct.unpack(">I", raw[:4])[0] != magic:
        found = struct.unpack(">I", raw[:4])[0] if len(raw) >= 4 else "nothing"
        raise DataError(f"{path}: bad IDX magic number {found} (expected {magic})")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    if len(raw) - header != math.prod(shape):
        raise DataError(
            f"{path}: IDX shape {shape} needs {math.prod(shape)} bytes, found {len(raw) - header}"
        )
    return torch.from_numpy(np.frombuffer(raw, np.uint8, offset=header).reshape(shape).copy())
