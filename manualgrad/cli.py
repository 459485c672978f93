"""``manualgrad train|check|bench|experiment|coverage`` (also ``python -m manualgrad``).

One argparse parser with a subparser per command; each command is a module of
:mod:`manualgrad.commands` (``add_arguments`` + ``run``). Arguments are parsed before torch is
imported, so ``--help`` and a mistyped option answer at once; ``run`` imports what it needs.

Every error is one line, ``manualgrad COMMAND: error: …``, with exit status 2; Ctrl-C (even while
torch is still importing) is one line too, with exit status 130.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

# name -> one-line summary; the command is manualgrad.commands.<name>
COMMANDS = {
    "train": "train a network and log it to TensorBoard",
    "check": "prove every hand-derived backward (gradcheck + gradgradcheck)",
    "bench": "time and memory against native PyTorch, as ratios",
    "experiment": "run one of the lecture's experiments",
    "coverage": "which backward nodes of a model are hand-derived (read from its graph)",
}


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (no usage block): ``PROG: error: …``,
    exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        """Print the one-line error and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> Parser:
    """The ``manualgrad`` parser with every command's subparser."""
    parser = Parser(
        prog="manualgrad",
        description="PyTorch layers, losses and optimizers with hand-derived backward passes.",
        epilog="manualgrad COMMAND --help explains a command's options.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, summary in COMMANDS.items():
        module = import_module(f"manualgrad.commands.{name}")
        sub = commands.add_parser(
            name,
            help=summary,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(run=module.run, command_parser=sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the command, return its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        namespace, extra = build_parser().parse_known_args(args)
        if extra:  # said by the command's parser: "manualgrad train: error: ..."
            namespace.command_parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as done:  # --help, or a usage error already printed
        return int(done.code or 0)
    try:
        return int(namespace.run(namespace) or 0)
    except KeyboardInterrupt:
        print(f"manualgrad {namespace.command}: interrupted", file=sys.stderr)
        return 130


__all__ = ["COMMANDS", "Parser", "build_parser", "main"]
