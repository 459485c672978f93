"""The elementary ops (arithmetic, reductions, products, indexing) beyond the registry's generic
properties: every rank case and key form against torch, torch's overloads and result types, and
the builtins they shadow."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as TF

import manualgrad
import manualgrad.functional as F
from manualgrad.graph_coverage import node_name

SHADOWED = {"abs", "max", "min", "pow", "sum"}


def _values_and_grads(op, *args, **kwargs):
    """op's output and the gradient of every floating tensor arg for a fixed output gradient."""
    leaves = [a.detach().clone().requires_grad_() if _float(a) else a for a in args]
    output = op(*leaves, **kwargs)
    grad_output = torch.linspace(-1, 1, output.numel(), dtype=output.dtype).reshape(output.shape)
    wanted = [leaf for leaf in leaves if _float(leaf)]
    grads = torch.autograd.grad(output, wanted, grad_output, allow_unused=True)
    return output.detach(), grads


def _float(value: object) -> bool:
    return isinstance(value, torch.Tensor) and value.is_floating_point()


def _assert_matches_torch(ours, theirs, *args, **kwargs):
    output, grads = _values_and_grads(ours, *args, **kwargs)
    expected, expected_grads = _values_and_grads(theirs, *args, **kwargs)
    torch.testing.assert_close(output, expected)
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected_grad)


def _graph_names(op, *args, **kwargs) -> set[str]:
    """The backward node names of ``op``'s graph on fresh leaves (a compiled twin's node by its
    Python Function's name: ``graph_coverage.node_name``)."""
    leaves = [a.detach().clone().requires_grad_() if _float(a) else a for a in args]
    names, stack = set(), [op(*leaves, **kwargs).grad_fn]
    while stack:
        node = stack.pop()
        if node is not None:
            names.add(node_name(node))
            stack.extend(following for following, _ in node.next_functions)
    return names


def test_star_importers_of_functional_keep_the_builtins():
    package = Path(manualgrad.__file__).parent
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text())
        star = any(
            isinstance(node, ast.ImportFrom)
            and (node.module or "").startswith("manualgrad.functional")
            and any(alias.name == "*" for alias in node.names)
            for node in ast.walk(tree)
        )
        if not star:
            continue
        loads = {
            node.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
        }
        assert not loads & SHADOWED, f"{path} star-imports functional and calls {loads & SHADOWED}"


@pytest.mark.parametrize(
    ("left", "right"),
    [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 2)), ((3,), (2, 3, 2)), ((2, 2, 3), (3,)),
     ((2, 2, 3), (3, 4)), ((2, 3), (4, 3, 2)), ((2, 1, 2, 3), (3, 3, 2))],
)  # fmt: skip
def test_matmul_every_rank_case_matches_torch(left, right):
    a, b = torch.randn(left, dtype=torch.float64), torch.randn(right, dtype=torch.float64)
    _assert_matches_torch(F.matmul, torch.matmul, a, b)
    assert "MatmulFunctionBackward" in _graph_names(F.matmul, a, b)


@pytest.mark.parametrize(
    ("equation", "shapes"),
    [("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
     ("bhqk,bhkd->bhqd", [(1, 2, 3, 5), (1, 2, 5, 4)]),
     ("i,j->ij", [(3,), (4,)]), ("ij,jk", [(2, 3), (3, 4)]), ("...d,de->...e", [(2, 3, 4), (4, 5)]),
     ("bij,bjk->bik", [(1, 2, 3), (4, 3, 2)]), ("ij,k->i", [(2, 3), (4,)]), ("ij->", [(2, 3)]),
     ("b i d, b j d -> b i j", [(2, 3, 4), (2, 5, 4)])],
)  # fmt: skip
def test_einsum_contractions_match_torch(equation, shapes):
    operands = [torch.randn(shape, dtype=torch.float64) for shape in shapes]
    _assert_matches_torch(F.einsum, torch.einsum, equation, *operands)


def test_einsum_list_and_sublist_forms():
    a, b = torch.randn(2, 3), torch.randn(3, 4)
    torch.testing.assert_close(F.einsum("ij,jk->ik", [a, b]), a @ b)
    torch.testing.assert_close(F.einsum(a, [0, 1], b, [1, 2], [0, 2]), a @ b)
    torch.testing.assert_close(F.einsum(a, [Ellipsis, 1], b, [1, 2]), a @ b)


_I, _J = torch.tensor([0, 1, 0]), torch.tensor([1, 2, 2])
_MASK = torch.tensor([[True, False, True, False], [False, True, True, True], [True] * 4])


@pytest.mark.parametrize(
    "key",
    [(_I,), (slice(None), _I), (0, slice(None), _I), (slice(None), _I, 0, _J),
     (_I, slice(None), _J),
     (_I, 0, _J), (Ellipsis, _I), (None, _I, None, _J), (slice(None), _MASK), (_I[:, None], _J),
     ([0, 1],), (slice(1, None), [0, 0]), (Ellipsis, None, _J), _I, [1, 1, 0],
     (slice(None, None, 2), _MASK)],
    ids=str,
)  # fmt: skip
def test_index_matches_torch_getitem(key):
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    _assert_matches_torch(F.index, lambda input, k: input[k], x, key)
    assert "IndexFunctionBackward" in _graph_names(F.index, x, key)


def test_index_without_tensors_is_torch_indexing():
    x = torch.randn(3, 4, requires_grad=True)
    assert type(F.index(x, (0, slice(1, 3))).grad_fn).__name__ == "SliceBackward0"


@pytest.mark.parametrize(
    ("shape", "pad", "mode"),
    [((2, 3), (1, 2), "constant"), ((2, 3, 4), (-1, 2, 0, -1, 1, 1), "constant"),
     ((2, 5), (3, 4), "reflect"), ((1, 2, 4, 3), (2, 1, 3, 0), "reflect"),
     ((1, 1, 3, 3, 3), (1, 2, 2, 1, 1, 1), "replicate"), ((2, 3, 4), (-1, 3), "replicate"),
     ((1, 2, 3, 4), (3, 1, 2, 3), "circular"), ((2, 3, 4), (-1, 2), "circular")],
)  # fmt: skip
def test_pad_every_mode_matches_torch(shape, pad, mode):
    x = torch.randn(shape, dtype=torch.float64)
    _assert_matches_torch(F.pad, TF.pad, x, pad, mode=mode)
    assert _graph_names(F.pad, x, pad, mode=mode) == {"PadFunctionBackward", "AccumulateGrad"}


@pytest.mark.parametrize("op", ["sqrt", "rsqrt", "log", "log1p"])
def test_vmap_of_positive_domain_ops(op):
    batch = torch.rand(3, 4, 5, dtype=torch.float64) + 0.5
    ours, theirs = getattr(F, op), getattr(torch, op)
    torch.testing.assert_close(torch.func.vmap(ours)(batch), theirs(batch))
    grads = torch.func.vmap(torch.func.grad(lambda x: ours(x).sum()))(batch)
    leaf = batch.clone().requires_grad_()
    torch.testing.assert_close(grads, torch.autograd.grad(theirs(leaf).sum(), leaf)[0])


def test_torch_overloads_and_result_types():
    x = torch.randn(3, 4)
    assert isinstance(F.max(x, 1), torch.return_types.max)
    assert isinstance(F.min(x, dim=0, keepdim=True), torch.return_types.min)
    torch.testing.assert_close(F.max(x, torch.zeros(4)), torch.max(x, torch.zeros(4)))
    torch.testing.assert_close(F.var(x, False), torch.var(x, False))
    torch.testing.assert_close(F.std(x, 1, True, True), torch.std(x, 1, True, True))
    assert all(torch.equal(a, b) for a, b in zip(F.where(x > 0), torch.where(x > 0), strict=True))
    assert F.sum(x, dtype=torch.float64).dtype == torch.float64
    ints = torch.tensor([1, 2, 3])
    for op in ("add", "sub", "mul", "div", "pow", "maximum"):
        ours, expected = getattr(F, op)(ints, ints), getattr(torch, op)(ints, ints)
        assert ours.dtype == expected.dtype and torch.equal(ours, expected)
    assert F.repeat(x, (2, 1)).shape == x.repeat(2, 1).shape


def test_rounded_division_has_zero_gradients_as_torch():
    x = torch.randn(3, 4, dtype=torch.float64)
    for mode in ("floor", "trunc"):
        _, grads = _values_and_grads(F.div, x, x.abs() + 1, rounding_mode=mode)
        assert all(not g.any() for g in grads)


def test_out_forms_write_out_and_scatter_reduce_needs_no_gradient():
    a, b, out = torch.randn(3), torch.randn(3), torch.empty(3)
    assert F.add(a, b, alpha=2, out=out) is out
    torch.testing.assert_close(out, a + 2 * b)
    index = torch.tensor([[0, 0]])
    reduced = F.scatter(torch.zeros(1, 2), 1, index, 1.0, reduce="add")
    torch.testing.assert_close(reduced, torch.tensor([[2.0, 0.0]]))
    with pytest.raises(NotImplementedError, match="`reduce`"):
        F.scatter(torch.zeros(1, 2, requires_grad=True), 1, index, 1.0, reduce="add")


def test_norm_p_cases_match_torch():
    x = torch.randn(3, 4, dtype=torch.float64)
    for p in (1, 2, math.inf, -math.inf, 0.5, 3, "fro"):
        _assert_matches_torch(F.norm, torch.norm, x, p, 1)


_COMPLEX_CASES = {
    "mul": (F.mul, [(3, 4), (4,)]),
    "div": (F.div, [(3, 4), (4,)]),
    "pow": (F.pow, [(3,), (3,)]),
    "exp": (F.exp, [(3,)]),
    "log": (F.log, [(3,)]),
    "sqrt": (F.sqrt, [(3,)]),
    "reciprocal": (F.reciprocal, [(3,)]),
    "sin": (F.sin, [(3,)]),
    "matmul": (F.matmul, [(2, 2, 3), (3,)]),
    "addmm": (lambda a, b, c: F.addmm(a, b, c, alpha=1j), [(2,), (3, 2), (2, 2)]),
    "einsum": (lambda a, b: F.einsum("ij,jk->ik", a, b), [(2, 3), (3, 2)]),
    "outer": (F.outer, [(3,), (2,)]),
    "addcmul": (lambda a, b, c: F.addcmul(a, b, c, value=1j), [(3,), (3,), (3,)]),
    "lerp": (F.lerp, [(3,), (3,), (3,)]),
    "prod": (lambda a: F.prod(a, 1), [(2, 3)]),
}


@pytest.mark.parametrize("name", sorted(_COMPLEX_CASES))
def test_complex_gradients_follow_torchs_conjugate_convention(name):
    op, shapes = _COMPLEX_CASES[name]
    inputs = [torch.randn(s, dtype=torch.complex128, requires_grad=True) for s in shapes]
    assert torch.autograd.gradcheck(op, inputs)
    assert torch.autograd.gradgradcheck(op, inputs)
