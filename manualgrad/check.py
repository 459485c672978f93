"""``manualgrad check``: the derivation table for every built-in Function, or for your own.

    manualgrad check                                   every registry op, first sample each
    manualgrad check some.module:MyFunction --shapes 4x3,3

Exit status 1 if any check fails, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

import torch

from manualgrad.gradcheck import CheckReport, check_function


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
            raise ValueError(f"--shapes: {item!r} is not like 4x3") from None
    return shapes


def load_object(spec: str) -> object:
    """Import ``package.module:Name``."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not attribute:
        raise ValueError(f"function: expected 'module:Name', got {spec!r}")
    return getattr(import_module(module_name), attribute)


def check_builtin() -> list[CheckReport]:
    """Check every registry op on its first float64 sample against its torch reference."""
    from manualgrad.testing.registry import OPS

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


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``manualgrad check``."""
    parser = argparse.ArgumentParser(
        prog="manualgrad check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "function", nargs="?", help="module:Name of an autograd.Function (or callable) to check"
    )
    parser.add_argument("--shapes", help="input shapes, e.g. 4x3,3 (required with FUNCTION)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the random inputs")
    args = parser.parse_args(argv)
    try:
        if args.function is None:
            reports = check_builtin()
        else:
            if not args.shapes:
                raise ValueError("--shapes is required when FUNCTION is given")
            function = load_object(args.function)
            generator = torch.Generator().manual_seed(args.seed)
            inputs = [
                torch.randn(shape, dtype=torch.float64, generator=generator)
                for shape in parse_shapes(args.shapes)
            ]
            reports = [check_function(function, *inputs, name=args.function, seed=args.seed)]
    except (ValueError, ImportError, AttributeError) as error:
        print(f"manualgrad check: {error}", file=sys.stderr)
        return 2
    for report in reports:
        print(report)
    failed = [r.name for r in reports if not r.passed]
    print(f"\n{len(reports) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0
