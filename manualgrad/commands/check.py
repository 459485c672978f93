"""Prove hand-derived backward passes: gradcheck and gradgradcheck in float64, as a table.

  manualgrad check                                  every built-in Function, first sample each
  manualgrad check mypkg.ops:Cube --shapes 4x3      your own (imported from the current folder)
  manualgrad check mypkg.ops:Mul --shapes 2x3,3     one shape per input

exit status: 0 all passed, 1 a check failed, 2 a bad argument.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import import_module

from manualgrad.commands import CommandError, fail

PROG = "manualgrad check"


def parse_shapes(text: str) -> list[tuple[int, ...]]:
    """``"4x3,3"`` → ``[(4, 3), (3,)]``; ``"scalar"`` (or an empty item) is a 0-d tensor."""
    shapes = []
    for item in text.split(","):
        item = item.strip()
        if item in {"", "scalar"}:
            shapes.append(())
            continue
        try:
            shapes.append(tuple(int(size) for size in item.split("x")))
        except ValueError:
            raise CommandError(f"--shapes: {item!r} is not like 4x3") from None
    return shapes


def load_object(spec: str) -> object:
    """Import ``package.module:Name``, from the current folder first (as ``python -m`` does;
    the ``manualgrad`` console script does not put it on ``sys.path`` by itself)."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not attribute:
        raise CommandError(f"function: expected 'module:Name', got {spec!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return getattr(import_module(module_name), attribute)
    except ImportError as error:
        raise CommandError(f"function {spec}: {error}") from None
    except AttributeError:
        raise CommandError(f"function {spec}: {module_name} has no {attribute!r}") from None


def check_builtin() -> list:
    """Check every registry op on its first float64 sample against its torch reference."""
    import torch

    from manualgrad.gradcheck import check_function
    from manualgrad.testing.entries import OPS

    reports = []
    for op in OPS:
        if not op.gradcheck:
            continue
        sample = op.seeded_samples(torch.float64)[0]
        constant = set(range(len(sample.args))) - set(sample.differentiable())
        reports.append(
            check_function(
                op.op,
                *sample.args,
                reference=op.reference,
                name=f"{op.name} ({sample.name})",
                constant=constant,
                second_order=op.gradgradcheck,
                **sample.kwargs,
            )
        )
    return reports


def check_user(spec: str, shapes: str | None, seed: int) -> list:
    """Check ``module:Name`` on seeded float64 inputs of the given shapes."""
    if not shapes:
        raise CommandError("--shapes is required when FUNCTION is given")
    sizes = parse_shapes(shapes)
    function = load_object(spec)

    import torch

    from manualgrad.gradcheck import check_function

    generator = torch.Generator().manual_seed(seed)
    inputs = [torch.randn(size, dtype=torch.float64, generator=generator) for size in sizes]
    return [check_function(function, *inputs, name=spec, seed=seed)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``[FUNCTION] [--shapes S] [--seed N]``."""
    parser.add_argument(
        "function",
        nargs="?",
        metavar="FUNCTION",
        help="module:Name of an autograd.Function (or a callable) to check; "
        "default: every built-in Function",
    )
    parser.add_argument("--shapes", help="input shapes, e.g. 4x3,3 (required with FUNCTION)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")


def run(args: argparse.Namespace) -> int:
    """Print one report per Function and a passed/failed count; the exit status."""
    try:
        if args.function is None:
            reports = check_builtin()
        else:
            reports = check_user(args.function, args.shapes, args.seed)
    except (CommandError, ValueError) as error:
        return fail(PROG, str(error))
    for report in reports:
        print(report)
    failed = [r.name for r in reports if not r.passed]
    print(f"\n{len(reports) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


__all__ = ["add_arguments", "check_builtin", "check_user", "load_object", "parse_shapes", "run"]
