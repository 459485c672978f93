"""Which backward nodes of a model are hand-derived, read from its autograd graph.

  manualgrad coverage mypkg.models:build --input 8x64               one float input
  manualgrad coverage mypkg.models:build --input input_ids=2x16:int --high 100
  manualgrad coverage mypkg.models:Net --input 4x3x32x32 --no-convert    the model as it is

MODEL is module:Name (imported from the current folder): a torch.nn.Module, or a class or
function returning one when called without arguments. Each --input is [NAME=]SHAPE[:KIND]:
a positional argument, or a keyword one with NAME; KIND float (normal, the default) or
int (uniform in [0, --high)). The model is converted with manualgrad.convert first
(unless --no-convert), runs one forward, and the table of native backward nodes by module and
op is printed.

exit status: 0 every compute node hand-derived, 1 some still native, 2 a bad argument.
"""

from __future__ import annotations

import argparse

from manualgrad.commands import CommandError, fail
from manualgrad.commands.check import load_object, parse_shapes

PROG = "manualgrad coverage"
KINDS = ("float", "int")


def parse_input(text: str) -> tuple[str | None, tuple[int, ...], str]:
    """``"input_ids=2x16:int"`` → ``("input_ids", (2, 16), "int")``; ``"8x64"`` →
    ``(None, (8, 64), "float")``."""
    name, sep, rest = text.rpartition("=")
    shape, _, kind = rest.partition(":")
    kind = kind or "float"
    if kind not in KINDS:
        raise CommandError(f"--input {text!r}: kind must be one of {', '.join(KINDS)}")
    if sep and not name.isidentifier():
        raise CommandError(f"--input {text!r}: {name!r} is not an argument name")
    try:
        (sizes,) = parse_shapes(shape)
    except (CommandError, ValueError):
        raise CommandError(f"--input {text!r}: the shape is not like 2x16") from None
    return (name if sep else None), sizes, kind


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``MODEL [--input [NAME=]SHAPE[:KIND]]... [--high N] [--seed N] [--no-convert]``."""
    parser.add_argument("model", metavar="MODEL", help="module:Name of a model or its builder")
    parser.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="[NAME=]SHAPE[:KIND]",
        help="one input of the forward, e.g. 8x64 or input_ids=2x16:int (repeatable)",
    )
    parser.add_argument("--high", type=int, default=10, help="int inputs are in [0, HIGH)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the inputs (and the build)")
    parser.add_argument(
        "--no-convert", action="store_true", help="report the model as built, not converted"
    )


def run(args: argparse.Namespace) -> int:
    """Print the coverage table; the exit status."""
    try:
        inputs = [parse_input(text) for text in args.input]
        if args.high < 1:
            raise CommandError(f"--high must be >= 1, got {args.high}")
        target = load_object(args.model)
    except CommandError as error:
        return fail(PROG, str(error))

    import torch

    import manualgrad

    torch.manual_seed(args.seed)
    model = target() if callable(target) and not isinstance(target, torch.nn.Module) else target
    if not isinstance(model, torch.nn.Module):
        return fail(PROG, f"{args.model} gave a {type(model).__name__}, not a torch.nn.Module")
    positional, keywords = [], {}
    for name, shape, kind in inputs:
        value = torch.randn(shape) if kind == "float" else torch.randint(0, args.high, shape)
        if name is None:
            positional.append(value)
        else:
            keywords[name] = value
    if not args.no_convert:
        model = manualgrad.convert(model)
    try:
        report = manualgrad.coverage(model, *positional, **keywords)
    except (RuntimeError, TypeError, ValueError, IndexError) as error:
        return fail(PROG, f"the forward on these inputs failed: {error}")
    print(report)
    return 0 if report.complete else 1


__all__ = ["add_arguments", "parse_input", "run"]
