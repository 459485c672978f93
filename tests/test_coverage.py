"""manualgrad.coverage(): the backward graph of one forward, counted node by node, each native
node attributed to the innermost module that created it."""

from __future__ import annotations

import pytest
import torch

import manualgrad.nn as mnn
from manualgrad import _ext
from manualgrad import interception as hd
from manualgrad.graph_coverage import VIEW_NODES, Coverage, _walk, coverage, node_kind
from tests.registry import OPS

TWINNED_OPS = [
    op for op in OPS if f"{op.function.__module__}.{op.function.__qualname__}" in _ext.TWINNED
]


class _Block(torch.nn.Module):
    """A custom forward: a torch layer, then a torch op written in the forward itself."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = torch.nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.special.erfcx(self.inner(x)).view(-1)


def test_native_nodes_are_attributed_to_the_innermost_module():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), _Block())
    report = coverage(model, torch.randn(2, 3))
    rows = {(row.module, row.op): (row.nodes, row.elements) for row in report.native}
    assert rows == {
        ("0", "AddmmBackward0"): (1, 8),
        ("1.inner", "AddmmBackward0"): (1, 8),
        ("1", "SpecialErfcxBackward0"): (1, 8),
    }
    assert report.native_nodes == 3 and report.hand_derived_nodes == 0
    assert not report.complete and report.share == 0.0
    assert report.views == {"AccumulateGrad": 4, "ViewBackward0": 1, "TBackward0": 2}


def test_a_manualgrad_model_is_complete():
    model = mnn.Sequential(mnn.Linear(3, 4), mnn.Tanh(), mnn.Linear(4, 2))
    report = coverage(model, torch.randn(5, 3))
    assert report.complete and report.share == 1.0 and report.element_share == 1.0
    assert report.hand_derived == {
        "LinearFunctionBackward": (2, 30),
        "TanhFunctionBackward": (1, 20),
    }
    assert str(report).startswith("3 compute nodes: 3 hand-derived (100.0%), 0 native")


def test_the_report_prints_as_a_table():
    model = torch.nn.Sequential(mnn.Linear(3, 4), torch.nn.Tanh())
    text = str(coverage(model, torch.randn(2, 3)))
    lines = text.splitlines()
    assert lines[0].startswith("2 compute nodes: 1 hand-derived (50.0%), 1 native;")
    assert lines[1].split() == ["module", "native", "op", "nodes", "elements", "share"]
    assert lines[2].split() == ["1", "TanhBackward0", "1", "8", "50.0%"]


def test_a_loss_in_the_output_is_the_root():
    class WithLoss(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"logits": x.exp(), "loss": x.tanh().sum()}

    x = torch.randn(3, requires_grad=True)
    ops = coverage(WithLoss(), x).native_ops()
    assert ops == {"TanhBackward0": 1, "SumBackward0": 1}


def test_every_tensor_of_a_tuple_output_is_a_root():
    class Pair(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> tuple:
            return x.exp(), [x.sin(), None], "not a tensor"

    x = torch.randn(3, requires_grad=True)
    assert coverage(Pair(), x).native_ops() == {"ExpBackward0": 1, "SinBackward0": 1}


def test_nodes_made_before_the_forward_are_outside():
    x = torch.randn(3, requires_grad=True).exp()
    report = coverage(torch.nn.Identity(), x)
    assert [(row.module, row.op) for row in report.native] == [("(outside)", "ExpBackward0")]


def test_hooks_are_removed_and_grad_is_enabled():
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        report = coverage(model, torch.randn(1, 2))
    assert report.native_nodes == 1
    assert not model._forward_hooks and not model._forward_pre_hooks


def test_coverage_of_a_model_run_inside_the_mode():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.GELU())
    hd.run_forward_in_mode(model)
    report = coverage(model, torch.randn(2, 3))
    assert report.complete, report


def test_node_kinds():
    x = torch.randn(2, 3, requires_grad=True)
    assert node_kind(x.view(6).grad_fn) == "view"
    assert node_kind(x.exp().grad_fn) == "native"
    assert node_kind(mnn.functional.relu(x).grad_fn) == "hand-derived"
    assert "TransposeBackward" in VIEW_NODES and "AddBackward" not in VIEW_NODES


class _Call(torch.nn.Module):
    """One registry op as a model, for coverage()."""

    def __init__(self, op, kwargs: dict) -> None:
        super().__init__()
        self.op, self.kwargs = op, kwargs

    def forward(self, *args):
        return self.op.op(*args, **self.kwargs)


@pytest.mark.skipif(_ext.EXTENSION is None, reason="extension not built")
@pytest.mark.parametrize("op", [pytest.param(op, id=op.name) for op in TWINNED_OPS])
def test_a_twins_nodes_are_hand_derived_and_reported_as_the_python_functions(op):
    twin_ran = False
    for sample in op.seeded_samples(torch.float64):
        model = _Call(op, sample.kwargs)
        with _ext.python_path():
            reference = coverage(model, *sample.prepared(torch.float64))
        output = model(*sample.prepared(torch.float64))
        roots = [t.grad_fn for t in (output if isinstance(output, tuple) else (output,))]
        cpp = [node for node in _walk(roots) if node.name().startswith("manualgrad::TwinNode")]
        assert all(node_kind(node) == "hand-derived" for node in cpp)
        twin_ran = twin_ran or bool(cpp)
        report = coverage(model, *sample.prepared(torch.float64))  # names as the Python path's
        assert (report.hand_derived, report.native) == (reference.hand_derived, reference.native)
    assert twin_ran, f"no sample of {op.name} ran its twin"


def test_bad_model_raises_type_error():
    with pytest.raises(TypeError, match="model"):
        coverage(lambda x: x, torch.randn(2))


def test_coverage_is_a_value():
    report = coverage(torch.nn.Identity(), torch.randn(2))
    assert isinstance(report, Coverage) and report.complete
    assert str(report).startswith("0 compute nodes")


def tanh_mlp() -> torch.nn.Module:
    """A builder for the command tests (``tests.test_coverage:tanh_mlp``)."""
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh())


def with_gru() -> torch.nn.Module:
    """A builder whose GRU has no manualgrad Function."""
    return torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.GRU(4, 4))


def test_command_prints_the_table_and_exits_by_completeness(capsys):
    from manualgrad.cli import main

    assert main(["coverage", "tests.test_coverage:tanh_mlp", "--input", "2x3"]) == 0
    assert "2 hand-derived (100.0%)" in capsys.readouterr().out
    assert main(["coverage", "tests.test_coverage:tanh_mlp", "--input", "2x3", "--no-convert"]) == 1
    assert "TanhBackward0" in capsys.readouterr().out
    assert main(["coverage", "tests.test_coverage:with_gru", "--input", "5x2:int"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[2].split()[0] == "1"  # the GRU is module "1" of the Sequential


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tests.test_coverage:tanh_mlp", "--input", "2x3:bool"], "kind must be one of"),
        (["tests.test_coverage:tanh_mlp", "--input", "2xa"], "shape is not like"),
        (["tests.test_coverage:tanh_mlp", "--input", "2x5"], "forward on these inputs failed"),
        (["tests.test_coverage:nothing", "--input", "2x3"], "has no 'nothing'"),
        (["tests.test_coverage:VIEW_NODES"], "not a torch.nn.Module"),
    ],
)
def test_command_rejects_bad_arguments_in_one_line(capsys, argv, message):
    from manualgrad.cli import main

    assert main(["coverage", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("manualgrad coverage: error: ") and message in err
    assert len(err.splitlines()) == 1


def test_parse_input():
    from manualgrad.commands.coverage import parse_input

    assert parse_input("input_ids=2x16:int") == ("input_ids", (2, 16), "int")
    assert parse_input("8x64") == (None, (8, 64), "float")
