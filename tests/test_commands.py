"""The ``manualgrad`` command as a user meets it: answers before importing torch, one-line errors
for every command, Ctrl-C while torch imports, unwritable output folders refused before any
work, help texts in plain words, user Functions imported from the current folder."""

from __future__ import annotations

import builtins
import os
import subprocess
import sys
from pathlib import Path

import pytest

from manualgrad.cli import COMMANDS, main
from tests.train_helpers import ROOT, events, only_run, train


def test_parsing_and_help_do_not_import_torch() -> None:
    script = (
        "import sys\n"
        "from manualgrad.cli import main\n"
        "import manualgrad, manualgrad.train.config, manualgrad.train.activations\n"
        "codes = [main(['--help']), main(['trian']), main(['train', '--hiden', '3'])]\n"
        "codes += [main([name, '--help']) for name in ('train', 'check', 'bench', 'experiment')]\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print(codes)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[0, 2, 2, 0, 0, 0, 0]"
    errors = done.stderr.strip().splitlines()
    assert errors == [
        "manualgrad: error: argument COMMAND: invalid choice: 'trian' (choose from "
        + ", ".join(f"'{name}'" for name in COMMANDS)
        + ")",
        "manualgrad train: error: unrecognized arguments: --hiden 3",
    ]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help_is_plain_text(command: str, capsys) -> None:
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    assert "``" not in text and "->" not in text and ":class:" not in text, text


def test_ctrl_c_while_torch_imports_is_one_line(monkeypatch, capsys) -> None:
    real_import = builtins.__import__

    def interrupted(name, *args, **kwargs):
        if name == "torch":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    assert main(["train", "--dry-run"]) == 130
    monkeypatch.undo()
    assert capsys.readouterr().err == "manualgrad train: interrupted\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["experiment", "zero-init", "--quick", "--logdir", "{file}/runs"],
        ["bench", "optim", "--quick", "--threads", "1", "--out", "{file}/bench"],
    ],
    ids=["experiment", "bench"],
)
def test_unwritable_output_folder_is_refused_before_any_work(
    argv: list[str], tmp_path: Path, monkeypatch, capsys
) -> None:
    import manualgrad.bench
    import manualgrad.experiments

    def no_work(*args, **kwargs):
        raise AssertionError("ran before checking the output folder")

    monkeypatch.setattr(manualgrad.bench, "run_suites", no_work)
    monkeypatch.setattr(manualgrad.experiments, "run_experiment", no_work)
    monkeypatch.setattr("manualgrad.commands.bench.run_suites", no_work)
    (tmp_path / "file").write_text("a file where a folder is expected")
    assert main([a.format(file=tmp_path / "file") for a in argv]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"manualgrad {argv[0]}: error: --") and "is not writable" in line


def test_check_imports_the_users_module_from_the_current_folder(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "ops.py").write_text((ROOT / "tests" / "user_functions.py").read_text())
    monkeypatch.chdir(tmp_path)
    # the console script's sys.path: neither "" nor the current folder
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "mypkg", raising=False)
    assert main(["check", "mypkg.ops:Cube", "--shapes", "4x3"]) == 0
    assert "PASS" in capsys.readouterr().out
    sys.modules.pop("mypkg.ops", None)
    sys.modules.pop("mypkg", None)


def test_check_unknown_module_is_one_error_line(capsys) -> None:
    assert main(["check", "nosuchpkg.ops:Cube", "--shapes", "3"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert (
        line == "manualgrad check: error: function nosuchpkg.ops:Cube: No module named 'nosuchpkg'"
    )


def test_one_epoch_summary_is_singular(tmp_path: Path, capsys) -> None:
    argv = ["--dataset", "xor", "--hidden", "4", "--epochs", "1", "--quiet"]
    assert train([*argv, "--logdir", str(tmp_path)]) == 0
    assert " · 1 epoch (budget) · " in capsys.readouterr().out


def test_early_stopping_says_which_epoch_it_kept_and_logs_its_metrics(
    tmp_path: Path, capsys
) -> None:
    argv = ["--dataset", "spirals", "--hidden", "16", "--epochs", "30", "--quiet"]
    argv += ["--early-stopping", "--patience", "2", "--min-delta", "0.05"]
    assert train([*argv, "--logdir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    run = only_run(tmp_path)
    import torch

    history = torch.load(run / "last.pt", weights_only=True)["trainer"]["history"]
    assert "(early_stopping)" in lines[0]
    (kept,) = [line for line in lines if line.startswith("model.pt holds epoch ")]
    epoch = int(kept.split()[3].removesuffix("'s"))
    assert epoch < len(history)  # stopped later than the epoch it restored
    entry = history[epoch - 1]
    assert f"val acc {entry['val_accuracy']:.2%}" in kept
    (point,) = events(run / "model").Scalars("accuracy")  # what HPARAMS shows as model.pt's
    assert point.step == entry["step"]
    assert point.value == pytest.approx(entry["val_accuracy"])
