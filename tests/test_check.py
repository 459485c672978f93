"""check_function and ``manualgrad check``: a right derivation passes, a wrong one is caught."""

import pytest
import torch

from manualgrad import check_function
from manualgrad.cli import main as manualgrad_main
from manualgrad.commands.check import parse_shapes
from manualgrad.gradcheck import DerivationError
from tests.user_functions import Cube, Mul, WrongCube


def main(argv: list[str]) -> int:
    """``manualgrad check ARGV`` in-process."""
    return manualgrad_main(["check", *argv])


def test_right_function_passes_with_and_without_reference():
    x = torch.randn(4, 3)
    assert check_function(Cube, x).passed
    report = check_function(Cube, x, reference=lambda t: t**3)
    assert report.passed
    assert report.forward_error == 0.0
    assert [c.shape for c in report.inputs] == [(4, 3)]


def test_wrong_backward_fails_and_the_table_says_where():
    report = check_function(WrongCube, torch.randn(3), reference=lambda t: t**3)
    assert not report.passed
    (row,) = report.inputs
    assert not row.gradcheck and row.max_abs_error > 1e-3
    assert "FAIL" in str(report)
    with pytest.raises(DerivationError, match="WrongCube"):
        check_function(WrongCube, torch.randn(3), raise_on_failure=True)


def test_broadcasting_two_inputs_and_constant_positions():
    report = check_function(Mul, torch.randn(2, 3), torch.randn(3), reference=torch.mul)
    assert report.passed and len(report.inputs) == 2
    report = check_function(Mul, torch.randn(2, 3), torch.randn(3), constant={1})
    assert [c.index for c in report.inputs] == [0]


def test_cli_user_function(capsys):
    assert main(["tests.user_functions:Cube", "--shapes", "4x3"]) == 0
    assert "PASS" in capsys.readouterr().out
    assert main(["tests.user_functions:WrongCube", "--shapes", "3"]) == 1
    assert main(["tests.user_functions:Mul", "--shapes", "2x3,3"]) == 0


def test_cli_builtin_table_all_pass(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "linear" in out and " 0 failed" in out


@pytest.mark.parametrize(
    "argv",
    [["nomodule"], ["tests.user_functions:Cube"], ["tests.user_functions:Cube", "--shapes", "4y3"]],
)
def test_cli_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "manualgrad check:" in capsys.readouterr().err


def test_parse_shapes():
    assert parse_shapes("4x3,3,scalar") == [(4, 3), (3,), ()]
