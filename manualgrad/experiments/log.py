"""The TensorBoard run and results table every experiment writes."""

from __future__ import annotations

import time
from pathlib import Path
from types import TracebackType

import torch
from matplotlib.figure import Figure
from torch.utils.tensorboard import SummaryWriter


class ExperimentLog:
    """A run folder ``<logdir>/<timestamp>-<name>`` with a SummaryWriter.

    On entry it seeds torch and limits torch to one intra-op thread (restored on exit): the
    experiments' networks are tiny, and on a busy machine a second OpenMP thread makes a small
    matmul up to 100× slower by spinning for a core, instead of up to 2× faster.
    """

    def __init__(self, name: str, logdir: str = "runs/experiments", seed: int = 0) -> None:
        self.name = name
        self.seed = seed
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.path = Path(logdir) / f"{stamp}-{name}"
        suffix = 1
        while self.path.exists():
            suffix += 1
            self.path = Path(logdir) / f"{stamp}-{name}-{suffix}"
        self.writer: SummaryWriter | None = None
        self._threads = 1

    def __enter__(self) -> ExperimentLog:
        torch.manual_seed(self.seed)
        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)
        self.writer = SummaryWriter(str(self.path))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        torch.set_num_threads(self._threads)
        if self.writer is not None:
            self.writer.close()

    def scalar(self, tag: str, value: float, step: int) -> None:
        """Log one scalar."""
        assert self.writer is not None
        self.writer.add_scalar(tag, value, step)

    def curve(self, tag: str, values: list[float]) -> None:
        """Log a whole curve, one step per value."""
        for step, value in enumerate(values):
            self.scalar(tag, value, step)

    def histogram(self, tag: str, values: torch.Tensor, step: int = 0) -> None:
        """Log a histogram of ``values``."""
        assert self.writer is not None
        self.writer.add_histogram(tag, values.detach().flatten(), step)

    def text(self, tag: str, markdown: str) -> None:
        """Log a block of (markdown) text, e.g. a results table."""
        assert self.writer is not None
        self.writer.add_text(tag, markdown, 0)

    def figure(self, tag: str, figure: Figure) -> None:
        """Log a matplotlib figure as an image (laid out so no label is clipped; then closed)."""
        assert self.writer is not None
        figure.tight_layout()
        self.writer.add_figure(tag, figure, close=True)

    def record(self, figures: dict[str, float]) -> None:
        """Log the final figures as ``result/<name>`` scalars and as a text table."""
        assert self.writer is not None
        for key, value in figures.items():
            self.writer.add_scalar(f"result/{key}", float(value), 0)
        self.writer.add_text("result/table", self.table(figures).replace("\n", "  \n"), 0)

    def table(self, figures: dict[str, float]) -> str:
        """The figures as an aligned two-column table."""
        width = max((len(k) for k in figures), default=10)
        lines = [f"{self.name}:", *(f"  {k:<{width}}  {_fmt(v)}" for k, v in figures.items())]
        return "\n".join(lines)


def _fmt(value: float) -> str:
    value = float(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.3e}"
    return f"{value:.4f}"
