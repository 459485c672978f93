"""Nothing escapes the registries: every public Function of ``manualgrad.functional`` has an
``OpInfo``, every module manualgrad implements in ``manualgrad.nn`` a ``ModuleInfo``, every
optimizer of ``manualgrad.optim`` an ``OptimizerInfo`` and its declared traits."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import manualgrad.functional as F
import manualgrad.nn.modules as modules
import manualgrad.optim as optim
from manualgrad.optim._base import FirstOrderOptimizer
from manualgrad.testing import registry
from manualgrad.testing.entries import MODULES, OPS, OPTIMIZERS


def _public(namespace, base: type) -> dict[str, type]:
    """The classes derived from ``base`` among ``namespace.__all__``."""
    found = {name: getattr(namespace, name) for name in namespace.__all__}
    return {name: c for name, c in found.items() if isinstance(c, type) and issubclass(c, base)}


def test_every_public_function_has_an_opinfo():
    covered = {op.function for op in OPS}
    public = _public(F, torch.autograd.Function)
    assert public, "manualgrad.functional exports no Function"
    assert sorted(name for name, cls in public.items() if cls not in covered) == []


def test_every_module_has_a_moduleinfo():
    # An entry may wrap the class in a subclass of the same name (e.g. to seed its forward).
    covered = {(info.module.__name__, base) for info in MODULES for base in info.module.__mro__}
    public = _public(modules, torch.nn.Module)
    assert public, "manualgrad.nn.modules exports no module"
    missing = [name for name, cls in public.items() if (name, cls) not in covered]
    assert sorted(missing) == []


def test_every_optimizer_has_an_optimizerinfo():
    covered = {info.ours for info in OPTIMIZERS}
    public = _public(optim, torch.optim.Optimizer)
    assert sorted(name for name, cls in public.items() if cls not in covered) == []


@pytest.mark.parametrize("info", OPTIMIZERS, ids=lambda info: info.name)
def test_optimizer_traits_are_declared(info):
    cls = info.ours
    assert isinstance(cls.default_lr, float) and cls.default_lr > 0
    assert isinstance(cls.second_order, bool)
    assert cls.closure_evaluations is None or cls.closure_evaluations == 1
    assert info.steps_on_grads == (cls.closure_evaluations == 1 and not cls.second_order)


def test_an_optimizer_without_its_default_lr_is_refused():
    with pytest.raises(TypeError, match="must declare default_lr"):

        class Forgetful(FirstOrderOptimizer):
            """A first-order optimizer that does not say its default learning rate."""


def test_registry_types_import_no_entries():
    """The types module never imports the entries (which import it): no import cycle."""
    tree = ast.parse(Path(registry.__file__).read_text())
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    modules |= {
        a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names
    }
    assert not [m for m in modules if m and m.startswith("manualgrad.testing.entries")]


def test_an_entry_file_imports_first_in_a_fresh_interpreter():
    code = "import manualgrad.testing.entries.activations as a; assert a.OPS and a.MODULES"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
