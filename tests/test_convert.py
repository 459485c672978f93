"""manualgrad.convert on real architectures: a ResNet-style CNN and a GPT-style transformer
converted from plain torch.nn give the same outputs, gradients and optimizer trajectories, and
their backward graphs run manualgrad's Functions."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as TF

import manualgrad
from manualgrad.conversion import ConvertReport
from manualgrad.testing.real_models import BasicBlock
from tests.autograd_graph import graph_nodes

TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}


class ResNet(nn.Module):
    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.blocks = nn.Sequential(BasicBlock(8, 8, 1), BasicBlock(8, 16, 2))
        self.pool = nn.Sequential(nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.blocks(self.stem(x))))


class TransformerBlock(nn.Module):
    """Pre-norm GPT block: causal self-attention and a GELU MLP, each with a residual."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(0.0)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(length, dtype=x.dtype)
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, is_causal=True, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, vocab: int = 11, length: int = 6, dim: int = 8, heads: int = 2) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, dim)
        self.positions = nn.Embedding(length, dim)
        self.blocks = nn.Sequential(TransformerBlock(dim, heads), TransformerBlock(dim, heads))
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(idx.shape[1], device=idx.device)
        x = self.tokens(idx) + self.positions(positions)
        return self.head(self.ln_f(self.blocks(x)))


def _resnet(dtype):
    torch.manual_seed(0)
    model = ResNet().to(dtype)
    inputs = torch.randn(4, 3, 16, 16, dtype=dtype)
    return model, inputs, torch.randint(0, 5, (4,))


def _gpt(dtype):
    torch.manual_seed(0)
    model = GPT().to(dtype)
    idx = torch.randint(0, 11, (3, 6))
    return model, idx, torch.randint(0, 11, (3 * 6,))


MODELS = {"resnet": _resnet, "gpt": _gpt}
DTYPES = [pytest.param(torch.float64, id="float64"), pytest.param(torch.float32, id="float32")]


def _loss(model, inputs, target):
    output = model(inputs)
    return output, TF.cross_entropy(output.reshape(target.shape[0], -1), target)


def _assert_close(actual, expected, dtype):
    tol = TOLERANCE[dtype]
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(MODELS))
def test_outputs_and_every_gradient_equal_the_original(name, dtype):
    model, inputs, target = MODELS[name](dtype)
    converted = manualgrad.convert(model, example_inputs=inputs)
    assert converted.convert_report.complete, str(converted.convert_report)
    results = []
    for m in (model, converted):
        output, loss = _loss(m, inputs, target)
        grads = torch.autograd.grad(loss, list(m.parameters()))
        results.append((output, grads, dict(m.named_buffers())))
    (out, grads, buffers), (expected_out, expected_grads, expected_buffers) = results[::-1]
    _assert_close(out, expected_out, dtype)
    for g, e in zip(grads, expected_grads, strict=True):
        _assert_close(g, e, dtype)
    for key, value in buffers.items():  # BatchNorm running statistics took the same step
        _assert_close(value, expected_buffers[key], dtype)


# native nodes that do a layer's math (the converted model must have none of them)
NATIVE_COMPUTE = (
    "Convolution",
    "Addmm",
    "Mm",
    "Bmm",
    "BatchNorm",
    "LayerNorm",
    "Embedding",
    "Gelu",
    "Relu",
    "Threshold",
    "Softmax",
    "ScaledDotProduct",
    "MaxPool",
    "AvgPool",
)
FAMILIES = {
    "resnet": {"conv", "normalization", "activations", "pooling", "linear", "arithmetic"},
    "gpt": {"embedding", "normalization", "attention", "fused", "linear", "arithmetic"},
}


@pytest.mark.parametrize("name", list(MODELS))
def test_backward_graph_nodes_are_manualgrad_functions(name):
    model, inputs, _ = MODELS[name](torch.float64)
    native = {node for node, _ in graph_nodes(model(inputs).grad_fn)}
    assert any(node.startswith(NATIVE_COMPUTE) for node in native)  # the check can fail
    nodes = graph_nodes(manualgrad.convert(model)(inputs).grad_fn)
    compute = [node for node, cls in nodes if cls is None and node.startswith(NATIVE_COMPUTE)]
    assert not compute, f"native compute nodes left: {sorted(set(compute))}"
    modules = {cls.__module__ for _, cls in nodes if cls is not None}
    assert modules == {f"manualgrad.functional.{family}" for family in FAMILIES[name]}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(MODELS))
def test_sgd_steps_stay_equal(name, dtype):
    model, inputs, target = MODELS[name](dtype)
    converted = manualgrad.convert(model)
    for m in (model, converted):
        optimizer = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        for _ in range(3):
            optimizer.zero_grad()
            _loss(m, inputs, target)[1].backward()
            optimizer.step()
    for p, e in zip(converted.parameters(), model.parameters(), strict=True):
        _assert_close(p, e, dtype)


def test_state_dict_hooks_and_mode_are_kept():
    model, idx, _ = _gpt(torch.float64)
    model.eval()
    calls = []
    model.blocks[0].register_forward_hook(lambda module, args, output: calls.append(module))
    converted = manualgrad.convert(model)
    assert type(model.head) is nn.Linear  # the original is untouched
    assert type(converted.head) is manualgrad.nn.Linear
    assert isinstance(converted.blocks[0].attn, nn.MultiheadAttention)
    assert not converted.training and not converted.blocks[1].mlp[3].training
    assert list(converted.state_dict()) == list(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(converted.state_dict()[key], value)
    converted(idx)
    assert calls == [converted.blocks[0]]
    same = manualgrad.convert(model, inplace=True)
    assert same is model and type(model.head) is manualgrad.nn.Linear


class _CustomBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.rnn = nn.GRU(4, 4)
        self.act = TF.silu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        return self.act(h) + torch.tanh(h) + h.softmax(-1)


class _MyLinear(nn.Linear):
    pass


class _WithGRU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.rnn = nn.GRU(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(self.fc(x))[0]


def test_custom_forward_calls_run_hand_derived_and_the_report_reads_the_graph():
    model = nn.Sequential(_CustomBlock(), _MyLinear(4, 4), nn.ReLU())
    x = torch.randn(3, 4)
    converted = manualgrad.convert(model, example_inputs=x)
    report = converted.convert_report
    assert isinstance(report, ConvertReport)
    assert [name for name, *_ in report.swapped] == ["0.fc", "2"]
    assert [(name, reason.split(";")[0]) for name, _, reason in report.kept] == [
        ("0.rnn", "no manualgrad twin"),
        ("1", "subclass of torch.nn.modules.linear.Linear"),
    ]
    # F.silu through an attribute, torch.tanh, x.softmax and the subclass's F.linear all routed
    assert report.complete, str(report)
    assert report.coverage.hand_derived_nodes >= 6
    assert {cls.__module__ for _, cls in graph_nodes(converted(x).grad_fn) if cls} >= {
        "manualgrad.functional.activations",
        "manualgrad.functional.softmax",
        "manualgrad.functional.linear",
    }
    assert "0.rnn" in str(report)
    assert not manualgrad.convert(model).convert_report.complete  # nothing measured


def test_report_lists_native_nodes_by_module():
    report = manualgrad.convert(_WithGRU(), example_inputs=torch.randn(2, 3, 4)).convert_report
    assert not report.complete
    assert {row.module for row in report.coverage.native} == {"rnn"}
    assert "rnn" in str(report) and "native op" in str(report)


def test_strict_needs_example_inputs_and_raises_listing_native_nodes():
    model = nn.Sequential(nn.Linear(4, 4), _WithGRU())
    with pytest.raises(ValueError, match="example_inputs"):
        manualgrad.convert(model, strict=True)
    with pytest.raises(NotImplementedError, match=r"1\.rnn: \w+Backward"):
        manualgrad.convert(model, strict=True, example_inputs=torch.randn(2, 3, 4))
    assert type(model[0]) is nn.Linear
    strict = manualgrad.convert(
        nn.Sequential(_CustomBlock()), strict=True, example_inputs=(torch.randn(3, 4),)
    )
    assert strict.convert_report.complete


def test_to_torch_of_a_converted_model_runs_torchs_backward():
    converted = manualgrad.convert(_CustomBlock())
    reference = manualgrad.to_torch(converted)
    nodes = graph_nodes(reference(torch.randn(3, 4)).grad_fn)
    assert all(cls is None for _, cls in nodes)


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.GELU("tanh"), nn.Linear(8, 3), nn.ReLU()
    ).double()


def _outputs_and_grads(model, x):
    output = model(x)
    return [output, *torch.autograd.grad(output.square().sum(), list(model.parameters()))]


def test_linear_activation_pairs_fuse_into_one_node():
    model, x = _mlp(), torch.randn(5, 6, dtype=torch.float64)
    fused = manualgrad.convert(model, example_inputs=x)
    unfused = manualgrad.convert(model, fuse=False)
    assert fused.convert_report.fused == [
        ("0", "1", "linear_relu"),
        ("2", "3", "linear_gelu"),
        ("4", "5", "linear_relu"),
    ]
    assert "0 + 1: linear_relu" in str(fused.convert_report) and fused.convert_report.complete
    assert not unfused.convert_report.fused and type(unfused) is nn.Sequential
    pairs = zip(_outputs_and_grads(fused, x), _outputs_and_grads(unfused, x), strict=True)
    for got, expected in pairs:
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    nodes = [cls for _, cls in graph_nodes(fused(x).grad_fn) if cls is not None]
    assert {cls.__name__ for cls in nodes} == {"LinearReLUFunction", "LinearGELUFunction"}
    assert len(nodes) == 3 < len([c for _, c in graph_nodes(unfused(x).grad_fn) if c]) == 6
    # the layers are untouched: indexing, slicing, state_dict and to_torch work as before
    assert type(fused[0]) is manualgrad.nn.Linear and type(fused[1]) is manualgrad.nn.ReLU
    torch.testing.assert_close(fused[1](x), x.relu())
    torch.testing.assert_close(fused[:1](x), model[0](x))
    assert list(fused.state_dict()) == list(model.state_dict())
    fused.load_state_dict(model.state_dict())
    back = manualgrad.to_torch(fused)
    assert type(back) is nn.Sequential
    assert [type(m) for m in back] == [type(m) for m in model]
    assert all(cls is None for _, cls in graph_nodes(back(x).grad_fn))
    torch.testing.assert_close(back(x), model(x))


def test_pairs_with_hooks_run_unfused():
    model, x = _mlp(), torch.randn(5, 6, dtype=torch.float64)
    seen = []
    model[1].register_forward_hook(lambda module, args, output: seen.append(output))
    converted = manualgrad.convert(model)
    assert [pair[:2] for pair in converted.convert_report.fused] == [("2", "3"), ("4", "5")]
    converted[2].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    output = converted(x)
    assert len(seen) == 2  # both hooks ran: the pairs they sit on ran unfused, not (4, 5)
    names = [cls.__name__ for _, cls in graph_nodes(output.grad_fn) if cls is not None]
    assert sorted(names) == sorted(
        ["LinearFunction", "ReLUFunction", "LinearFunction", "GELUFunction", "LinearReLUFunction"]
    )
    torch.testing.assert_close(output, model(x))
    with torch.nn.modules.module.register_module_forward_hook(lambda *args: None):
        assert not manualgrad.convert(_mlp()).convert_report.fused
