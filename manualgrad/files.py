"""Output folders the commands write to, checked before any work is done (torch-free)."""

from __future__ import annotations

import os
import time
from pathlib import Path


class NotWritableError(ValueError):
    """An output folder that cannot be created or written (the message names the option)."""


def writable_dir(path: Path, option: str) -> Path:
    """Create ``path`` if needed and prove a file can be written there; ``NotWritableError``
    naming ``option`` otherwise. Returns ``path``."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}-{time.time_ns()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise NotWritableError(
            f"{option} {path} is not writable: {error.strerror or error}"
        ) from None
    return path


__all__ = ["NotWritableError", "writable_dir"]
