"""manualgrad.hand_derived(): every torch call with a manualgrad Function runs it, with torch's
arguments and results; every other call runs unchanged."""

from __future__ import annotations

import pickle
import types

import pytest
import torch
import torch.nn.functional as TF

import manualgrad.functional as MF
import manualgrad.nn as mnn
from manualgrad import interception as hd
from manualgrad.graph_coverage import node_kind, node_name

torch.manual_seed(0)
A = torch.randn(3, 4, dtype=torch.float64)
B = torch.randn(4, 5, dtype=torch.float64)
C = torch.randn(3, 4, dtype=torch.float64)
INDEX = torch.tensor([2, 0, 2])

# (label, the op names it needs from manualgrad.functional, call on leaves a, b, c)
ROUTED = [
    ("F.softmax", ["softmax"], lambda a, b, c: TF.softmax(a, -1)),
    ("torch.softmax(x, dim)", ["softmax"], lambda a, b, c: torch.softmax(a, 1)),
    (
        "torch.softmax(x, dim, dtype)",
        ["softmax"],
        lambda a, b, c: torch.softmax(a, 1, torch.float32),
    ),
    ("x.softmax(dim)", ["softmax"], lambda a, b, c: a.softmax(-1)),
    ("x.log_softmax(dim=)", ["log_softmax"], lambda a, b, c: a.log_softmax(dim=0)),
    ("F.gelu via attribute", ["gelu"], lambda a, b, c: types.SimpleNamespace(act=TF.gelu).act(a)),
    ("torch.tanh", ["tanh"], lambda a, b, c: torch.tanh(a)),
    (
        "torch.layer_norm(cudnn_enable)",
        ["layer_norm"],
        lambda a, b, c: torch.layer_norm(a, (4,), None, None, 1e-5, False),
    ),
    (
        "torch.dropout(train=)",
        ["dropout"],
        lambda a, b, c: _seeded(torch.dropout, a, 0.5, train=True),
    ),
    (
        "torch bce (enum reduction)",
        ["binary_cross_entropy_with_logits"],
        lambda a, b, c: torch.binary_cross_entropy_with_logits(a, c.sigmoid(), None, None, 2),
    ),
    (
        "torch.batch_norm (torch's argument order)",
        ["batch_norm"],
        lambda a, b, c: torch.batch_norm(a, c[0], c[1], None, None, True, 0.1, 1e-5, False),
    ),
    ("a * b", ["mul"], lambda a, b, c: a * c),
    ("a * 2", ["mul"], lambda a, b, c: a * 2),
    ("2 * a", ["mul"], lambda a, b, c: 2 * a),
    ("a + b", ["add"], lambda a, b, c: a + c),
    ("1 - a", ["sub"], lambda a, b, c: 1 - a),
    ("a / b", ["div"], lambda a, b, c: a / (c.abs() + 1)),
    ("2 / a", ["div"], lambda a, b, c: 2 / (a.abs() + 1)),
    ("-a", ["neg"], lambda a, b, c: -a),
    ("a ** 2", ["pow"], lambda a, b, c: a**2),
    ("2 ** a", ["pow"], lambda a, b, c: 2**a),
    ("a @ b", ["matmul"], lambda a, b, c: a @ b),
    ("a[index]", ["index"], lambda a, b, c: a[INDEX]),
    ("torch.where", ["where"], lambda a, b, c: torch.where(a > 0, a, c)),
    ("x.where(condition, other)", ["where"], lambda a, b, c: a.where(c > 0, c)),
    ("x.sum(dim, keepdim=)", ["sum"], lambda a, b, c: a.sum(1, keepdim=True)),
    ("x.mean(-1)", ["mean"], lambda a, b, c: a.mean(-1)),
    ("torch.cat", ["cat"], lambda a, b, c: torch.cat([a, c], dim=1)),
]


def _seeded(op, *args, **kwargs):
    torch.manual_seed(1)
    return op(*args, **kwargs)


def _leaves() -> tuple[torch.Tensor, ...]:
    return tuple(t.clone().requires_grad_() for t in (A, B, C))


def _gradients(output: torch.Tensor, leaves: tuple[torch.Tensor, ...]) -> list:
    weight = torch.linspace(-1, 2, output.numel(), dtype=output.dtype).reshape(output.shape)
    return torch.autograd.grad((output * weight).sum(), leaves, allow_unused=True)


@pytest.mark.parametrize(("label", "needs", "call"), ROUTED, ids=[case[0] for case in ROUTED])
def test_routed_call_runs_the_manualgrad_function_with_torchs_result(label, needs, call):
    missing = [name for name in needs if name not in MF.__all__]
    if missing:
        pytest.skip(f"manualgrad.functional has no {', '.join(missing)} yet")
    leaves = _leaves()
    expected = call(*leaves)
    expected_grads = _gradients(expected, leaves)
    leaves = _leaves()
    with hd.hand_derived():
        output = call(*leaves)
    assert node_kind(output.grad_fn) == "hand-derived", type(output.grad_fn).__name__
    assert output.dtype == expected.dtype
    torch.testing.assert_close(output, expected)
    for grad, expected_grad in zip(_gradients(output, leaves), expected_grads, strict=True):
        torch.testing.assert_close(grad, expected_grad)


def test_every_function_is_routed_by_name():
    functions = [name for name in MF.__all__ if not isinstance(getattr(MF, name), type)]
    for name in functions:
        for namespace in (TF, torch, torch.Tensor):
            member = getattr(namespace, name, None)
            if callable(member) and not isinstance(member, type):
                assert hd.ROUTES[member].target is getattr(MF, name), (namespace, name)


def test_a_new_function_is_routed_without_editing_the_table(monkeypatch):
    def logaddexp(input: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        return input

    monkeypatch.setattr(MF, "logaddexp", logaddexp, raising=False)
    monkeypatch.setattr(MF, "__all__", [*MF.__all__, "logaddexp"])
    routes = hd._build_routes()
    assert routes[torch.logaddexp].target is logaddexp
    assert routes[torch.Tensor.logaddexp].target is logaddexp


PASSED_THROUGH = [
    ("view", lambda a: a.view(12)),
    ("transpose", lambda a: a.t()),
    ("in-place add_", lambda a: a.clone().add_(1)),
    ("an op without a Function", lambda a: torch.special.bessel_j0(a)),
    ("torch.embedding(weight, indices)", lambda a: torch.embedding(a, INDEX)),
    ("out=", lambda a: torch.tanh(a.detach(), out=torch.empty_like(a))),
]


@pytest.mark.parametrize(("label", "call"), PASSED_THROUGH, ids=[c[0] for c in PASSED_THROUGH])
def test_other_calls_run_unchanged(label, call):
    a = A.clone().requires_grad_()
    expected = call(a)
    with hd.hand_derived():
        output = call(a)
    torch.testing.assert_close(output, expected)
    assert type(output.grad_fn) is type(expected.grad_fn)


def test_without_grad_mode_torch_runs():
    with hd.hand_derived(), torch.no_grad():
        output = torch.tanh(A)
    torch.testing.assert_close(output, torch.tanh(A))


def test_routed_call_rejects_bad_input_like_torch():
    with hd.hand_derived(), pytest.raises(IndexError):
        torch.softmax(A.requires_grad_(), 5)


class _Helpers(torch.nn.Module):
    """A custom forward calling torch through a helper, an attribute and a lambda."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 4, dtype=torch.float64)
        self.act = TF.gelu
        self.squash = lambda x: torch.tanh(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _helper(self.squash(self.act(self.linear(x))))


def _helper(x: torch.Tensor) -> torch.Tensor:
    return TF.softmax(x, dim=-1)


def test_forward_hooks_run_a_module_inside_the_mode():
    model = _Helpers()
    hd.run_forward_in_mode(model)
    output = model(A.clone().requires_grad_())
    assert node_name(output.grad_fn) == "SoftmaxFunctionBackward"  # or its compiled twin
    assert torch._C._len_torch_function_stack() == 0


def test_the_mode_is_left_when_forward_raises():
    model = torch.nn.Linear(4, 4)
    hd.run_forward_in_mode(model)
    with pytest.raises(RuntimeError):
        model(torch.randn(2, 3))
    assert torch._C._len_torch_function_stack() == 0


def test_manualgrad_nn_has_every_torch_nn_name():
    for name in dir(torch.nn):
        if not name.startswith("_"):
            assert getattr(mnn, name) is not None, name
    assert mnn.utils is torch.nn.utils
    assert mnn.Sequential is torch.nn.Sequential
    assert mnn.Linear.__module__.startswith("manualgrad.")
    with pytest.raises(AttributeError, match="NoSuchLayer"):
        _ = mnn.NoSuchLayer


def test_a_torch_layer_without_a_twin_runs_inside_the_mode():
    layer = mnn.ConvTranspose2d(2, 3, 3, dtype=torch.float64)
    assert isinstance(layer, torch.nn.ConvTranspose2d)
    assert type(layer).__name__ == "ConvTranspose2d"
    assert type(pickle.loads(pickle.dumps(layer))) is mnn.ConvTranspose2d
    encoder = mnn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    x = torch.randn(2, 5, 8)
    with torch.no_grad():
        reference = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        reference.load_state_dict(encoder.state_dict())
    torch.testing.assert_close(encoder(x), reference(x))
    assert node_kind(encoder(x).grad_fn) == "hand-derived"


def test_public_names_are_the_functions():
    import manualgrad
    import manualgrad.graph_coverage as graph_coverage

    assert manualgrad.hand_derived is hd.hand_derived
    assert manualgrad.coverage is graph_coverage.coverage


def test_a_twins_forward_runs_with_the_mode_suspended():
    seen = []

    def depth(*_: object) -> None:
        seen.append(torch._C._len_torch_function_stack())

    twin, spy = mnn.Linear(3, 3), torch.nn.Identity()
    spy.register_forward_pre_hook(depth)
    model = torch.nn.Sequential(spy, twin, spy)
    hd.run_forward_in_mode(model)
    hd.run_forward_outside_mode(twin)
    twin.register_forward_pre_hook(depth)  # runs after the suspending hook
    assert node_kind(model(torch.randn(2, 3, requires_grad=True)).grad_fn) == "hand-derived"
    assert seen == [1, 0, 1] and torch._C._len_torch_function_stack() == 0
    hd.stop_forward_in_mode(twin)
    hd.stop_forward_in_mode(model)
    assert list(twin._forward_pre_hooks.values()) == [depth] and not twin._forward_hooks
    assert not model._forward_pre_hooks and not model._forward_hooks


def test_torch_func_transforms_run_inside_the_mode():
    x = torch.randn(3, 4, dtype=torch.float64)
    with hd.hand_derived():
        grad = torch.func.grad(lambda t: (t.tanh() * 2).sum())(x)
        batched = torch.func.vmap(lambda t: t.softmax(-1))(x)
    torch.testing.assert_close(grad, 2 * (1 - x.tanh() ** 2))
    torch.testing.assert_close(batched, x.softmax(-1))
