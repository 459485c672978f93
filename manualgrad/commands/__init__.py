"""The ``manualgrad`` subcommands: one module per command, each with

- ``add_arguments(parser)``: its options, on the subparser :mod:`manualgrad.cli` gives it
  (imports nothing heavy: the arguments are parsed before torch is imported);
- ``run(args) -> int``: the command itself (imports torch and the rest), returning the exit
  status: 0 done, 1 a failed result (a failed check, a non-finite loss), 2 a bad input, named
  in one ``manualgrad COMMAND: error: …`` line, 130 interrupted.

A new command is one module here and one line in :data:`manualgrad.cli.COMMANDS`.
"""

from __future__ import annotations

import sys


class CommandError(Exception):
    """A bad input found after parsing: printed as one ``error:`` line, exit status 2."""


def fail(prog: str, message: str, status: int = 2) -> int:
    """Print ``prog: error: message`` on stderr and return ``status``."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return status


__all__ = ["CommandError", "fail"]
