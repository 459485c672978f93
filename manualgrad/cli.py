"""``manualgrad train|check|bench|experiment`` (also ``python -m manualgrad``).

Each command lives in its own module and is imported only when used, so ``manualgrad check``
does not pay for TensorBoard and ``manualgrad train`` does not pay for the test registry.
"""

from __future__ import annotations

import sys
from importlib import import_module

COMMANDS = {
    "train": ("manualgrad.train.cli", "train a network and log it to TensorBoard"),
    "check": ("manualgrad.check", "prove every hand-derived backward (gradcheck + gradgradcheck)"),
    "bench": ("manualgrad.bench", "time and memory against native PyTorch, as ratios"),
    "experiment": ("manualgrad.experiments", "run one of the lecture's experiments"),
}


def usage() -> str:
    """The top-level help text."""
    lines = ["usage: manualgrad COMMAND [options]   (manualgrad COMMAND --help for more)", ""]
    lines += [f"  {name:<11} {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the command's own ``main(argv)`` and return its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"}:
        print(usage())
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"manualgrad: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = import_module(COMMANDS[command][0])
    return int(module.main(rest) or 0)
