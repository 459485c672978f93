"""Static checks over the source of manualgrad.functional: a hand-derived backward must not lean
on autograd, and no Function may call the torch.nn.functional op it replaces."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest
import torch

import manualgrad.functional
from tests.registry import OPS

FUNCTIONAL = Path(manualgrad.functional.__file__).parent
SOURCES = sorted(FUNCTIONAL.glob("*.py"))
# Convolution kernels may serve as primitives: the gradient of a convolution is a convolution.
PRIMITIVES = {
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "unfold",
    "fold",
    "pad",
}
FORBIDDEN_ATTRIBUTES = {"backward", "grad", "vjp", "jvp", "jacrev", "jacfwd", "hessian"}


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_functional_uses_no_autograd_and_no_replaced_op(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            assert not node.module.startswith(("torch.func", "torch.autograd.functional")), (
                f"{path.name}:{node.lineno} imports {node.module}"
            )
            if node.module == "torch.nn.functional":
                names = {alias.name for alias in node.names}
                assert names <= PRIMITIVES, f"{path.name}:{node.lineno} imports {names}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name not in {"torch.nn.functional", "torch.func"}, (
                    f"{path.name}:{node.lineno} imports {alias.name}"
                )
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            assert not dotted.startswith(("torch.func", "torch.autograd.functional")), dotted
            if node.attr != "save_for_backward":
                assert not node.attr.endswith("_backward"), f"{path.name}:{node.lineno} {dotted}"
            if dotted.startswith("torch.autograd."):
                assert node.attr not in FORBIDDEN_ATTRIBUTES, f"{path.name}:{node.lineno}"
            if dotted.startswith("torch.nn.functional."):
                assert node.attr in PRIMITIVES, f"{path.name}:{node.lineno} uses {dotted}"
            if dotted.startswith(("torch._C._nn", "torch.ops.aten")):
                pytest.fail(f"{path.name}:{node.lineno} reaches into {dotted}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            assert node.func.attr != "backward", f"{path.name}:{node.lineno} calls .backward()"


@pytest.mark.parametrize("op", [pytest.param(op, id=op.name) for op in OPS])
def test_every_op_is_a_documented_autograd_function(op):
    function = op.function
    assert issubclass(function, torch.autograd.Function)
    assert Path(inspect.getfile(function)).parent == FUNCTIONAL
    assert "setup_context" in vars(function), "forward + setup_context form (torch.func ready)"
    assert getattr(function, "generate_vmap_rule", False) or "vmap" in vars(function)
    doc = inspect.getdoc(function) or ""
    assert "Saved" in doc and "dL/d" in doc, f"{function.__name__} docstring lacks its derivation"


CSRC = sorted(
    path for path in (FUNCTIONAL.parent / "csrc").iterdir() if path.suffix in {".cpp", ".h"}
)
# In the C++ twins: ATen's backward kernels (``*_backward``, ``_softmax_backward_data``,
# ``native_layer_norm_backward``, ...), autograd itself, and the ops the twins replace.
CSRC_FORBIDDEN = re.compile(
    r"\b(?!save_for_backward\b)\w*_backward\w*\s*\(|autograd::grad\b|\.backward\s*\(|"
    r"at::(?:_?(?:relu|leaky_relu|gelu|silu|softmax|log_softmax|linear|layer_norm|"
    r"native_layer_norm|threshold|max_pool|avg_pool|adaptive_avg_pool|adaptive_max_pool))\w*\s*\("
)


@pytest.mark.parametrize("path", CSRC, ids=lambda p: p.name)
def test_csrc_uses_no_autograd_and_no_replaced_op(path):
    code = re.sub(r"//[^\n]*", "", path.read_text())  # comments may name what is avoided
    found = [match.group(0) for match in CSRC_FORBIDDEN.finditer(code)]
    assert not found, f"{path.name} calls {found}"


def test_csrc_rule_catches_a_backward_kernel():
    calls = ("at::threshold_backward(g, y, 0)", "at::_softmax_backward_data(", "at::gelu(")
    for call in (*calls, "at::max_pool2d_with_indices(x, k)", "at::_adaptive_avg_pool2d("):
        assert CSRC_FORBIDDEN.search(call), call
    assert not CSRC_FORBIDDEN.search("ctx->save_for_backward({y});")
