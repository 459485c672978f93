"""The closing figures of a training run (matplotlib, imported only when a run ends).

- :func:`confusion_figure`: the validation confusion matrix (rows: true class, columns:
  predicted; counts in the cells) beside up to 16 misclassified examples, drawn as images for an
  image data set (``true → predicted`` above each);
- :func:`weights_figure`: each first-layer unit's incoming weights reshaped to the input image
  (what the unit looks for), up to 64 units, on one symmetric colour scale.
"""

from __future__ import annotations

import math

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

MAX_MISTAKES = 16
MAX_UNITS = 64


def confusion_matrix(predicted: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """``counts[i, j]`` = how many examples of class i were predicted as j."""
    flat = target.long() * num_classes + predicted.long()
    return torch.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def confusion_figure(
    predicted: Tensor, target: Tensor, x: Tensor, image_shape: tuple[int, ...] | None
) -> Figure:
    """The confusion matrix, and the first misclassified examples when ``image_shape`` is
    given."""
    predicted, target, x = predicted.cpu(), target.cpu(), x.detach().cpu()
    num_classes = int(max(predicted.max(), target.max())) + 1
    counts = confusion_matrix(predicted, target, num_classes)
    wrong = (predicted != target).nonzero().flatten()[:MAX_MISTAKES]
    show_images = image_shape is not None and len(wrong) > 0
    figure = Figure(figsize=(10 if show_images else 5, 4.6), layout="constrained")
    grid = figure.add_gridspec(1, 2 if show_images else 1)
    axes = figure.add_subplot(grid[0, 0])
    axes.imshow(counts.numpy(), cmap="Blues")
    for (i, j), count in zip(
        torch.cartesian_prod(torch.arange(num_classes), torch.arange(num_classes)).tolist(),
        counts.flatten().tolist(),
        strict=True,
    ):
        if count:
            axes.text(j, i, str(count), ha="center", va="center", fontsize=7)
    accuracy = counts.diag().sum().item() / max(counts.sum().item(), 1)
    axes.set(
        xlabel="predicted",
        ylabel="true",
        xticks=range(num_classes),
        yticks=range(num_classes),
        title=f"validation: {accuracy:.2%} correct",
    )
    if show_images:
        _mistakes(
            figure.add_subplot(grid[0, 1]), x[wrong], target[wrong], predicted[wrong], image_shape
        )
    return figure


def _mistakes(
    axes: Axes, images: Tensor, target: Tensor, predicted: Tensor, image_shape: tuple[int, ...]
) -> None:
    """The misclassified ``images`` tiled in a square on one Axes (one Axes per example made
    the figure most of a one-epoch run's CPU time), ``true → predicted`` above each tile."""
    height, width = image_shape
    label = max(2, height // 3)  # rows above each tile for its caption
    side = math.ceil(math.sqrt(len(images)))
    mosaic, corners = _mosaic(images, image_shape, side, rows=side, above=label, gap=0)
    for (top, left), truth, guess in zip(corners, target, predicted, strict=True):
        caption = f"{int(truth)} → {int(guess)}"
        axes.text(left + width / 2 - 0.5, top - 0.7, caption, ha="center", va="bottom", fontsize=8)
    axes.imshow(mosaic.numpy(), cmap="gray_r")  # NaN gaps: blank
    axes.axis("off")


def _mosaic(
    images: Tensor,
    image_shape: tuple[int, ...],
    columns: int,
    rows: int | None = None,
    above: int = 0,
    gap: int = 1,
) -> tuple[Tensor, list[tuple[int, int]]]:
    """``images`` (each reshaped to ``image_shape``) tiled ``columns`` to a row in one NaN
    (blank) canvas of ``rows`` rows of tiles (as many as they fill by default): one pixel between
    columns, ``gap`` pixels between rows and ``above`` blank rows over each tile (room for a
    caption). Returns the canvas and each tile's (top, left) corner."""
    height, width = image_shape
    rows = math.ceil(len(images) / columns) if rows is None else rows
    pitch_y, pitch_x = above + height + gap, width + 1
    mosaic = torch.full((rows * pitch_y - gap, columns * pitch_x - 1), math.nan)
    corners = []
    for k, image in enumerate(images):
        top, left = (k // columns) * pitch_y + above, (k % columns) * pitch_x
        mosaic[top : top + height, left : left + width] = image.reshape(image_shape)
        corners.append((top, left))
    return mosaic, corners


def weights_figure(weight: Tensor, image_shape: tuple[int, ...]) -> Figure:
    """The first ``MAX_UNITS`` rows of a first-layer ``weight`` (units × pixels) as images, tiled
    eight to a row with a one-pixel gap, in one image (one Axes: 64 small Axes made the figure
    0.8 s of a ``make train`` run's CPU time)."""
    units = weight.detach().cpu()[:MAX_UNITS]
    columns = min(8, len(units))
    rows = math.ceil(len(units) / columns)
    scale = units.abs().max().item() or 1.0
    mosaic, _ = _mosaic(units, image_shape, columns)
    figure = Figure(figsize=(columns * 1.1, rows * 1.1 + 0.4), layout="constrained")
    figure.suptitle("first layer: each unit's incoming weights (red +, blue −)", fontsize=9)
    axes = figure.add_subplot()
    axes.imshow(mosaic.numpy(), cmap="RdBu_r", vmin=-scale, vmax=scale)  # NaN gaps: blank
    axes.axis("off")
    return figure


__all__ = ["confusion_figure", "confusion_matrix", "weights_figure"]
