"""Real models through ``manualgrad.convert``: Hugging Face BERT, GPT-2 and Llama from small
configs, a ``TransformerEncoderLayer`` stack, a CNN with ``ConvTranspose2d``, a ResNet-18 and the
README's MLP give the unconverted model's loss and gradients, the same AdamW trajectory, and a
backward graph with no native compute node left (read from the graph, not the source)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import manualgrad
from manualgrad.testing.real_models import BUILDERS, RealModel, build
from tests.autograd_graph import graph_nodes

TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}
LR = 1e-3
DTYPES = [pytest.param(torch.float64, id="float64"), pytest.param(torch.float32, id="float32")]


def _pair(name: str, dtype: torch.dtype) -> tuple[RealModel, RealModel]:
    native = build(name, dtype)
    converted = manualgrad.convert(native.model, example_inputs=native.inputs)
    return native, dataclasses.replace(native, model=converted)


def _close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype, total: float) -> bool:
    """Within the tolerance relative to the expected tensor's norm, plus round-off of the whole
    (``total``: the norm over every parameter or gradient). The round-off term is for what is
    zero in exact arithmetic — a key bias's gradient under softmax, a conv bias's before
    BatchNorm: both sides are then noise, and AdamW normalises that noise into a step."""
    error = (actual - expected).norm().item()
    return error <= TOLERANCE[dtype] * expected.norm().item() + 16 * torch.finfo(dtype).eps * total


def _norm(tensors) -> float:
    return torch.stack([t.norm() for t in tensors if t is not None]).norm().item()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(BUILDERS))
def test_loss_and_every_parameter_gradient_equal_the_unconverted_model(name, dtype):
    results = []
    for model in _pair(name, dtype):
        loss = model.loss()
        parameters = dict(model.model.named_parameters())
        grads = torch.autograd.grad(loss, list(parameters.values()), allow_unused=True)
        results.append((loss, dict(zip(parameters, grads, strict=True))))
    (loss, expected_grads), (converted_loss, grads) = results
    assert _close(converted_loss, loss, dtype, 0.0), (converted_loss, loss)
    assert grads.keys() == expected_grads.keys()
    total = _norm(expected_grads.values())
    for key, expected in expected_grads.items():
        assert (grads[key] is None) == (expected is None), key
        if expected is not None:
            assert _close(grads[key], expected, dtype, total), key


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(BUILDERS))
def test_three_adamw_steps_give_equal_weights(name, dtype):
    """Equal weights after three AdamW steps. A weight whose gradient is zero in exact
    arithmetic (a key bias, a conv bias before BatchNorm) gets round-off for a gradient on both
    sides, which Adam normalises into steps of up to about ``lr`` in either direction (in
    float32 that noise is above Adam's eps): such elements, found from the first gradient, are
    held to that bound instead."""
    models, first_grads = _pair(name, dtype), []
    for model in models:
        optimizer = torch.optim.AdamW(model.model.parameters(), lr=LR)
        for step in range(3):
            optimizer.zero_grad()
            model.loss().backward()
            if step == 0:
                first_grads.append({k: p.grad.clone() for k, p in model.model.named_parameters()})
            optimizer.step()
    native, converted = (dict(model.model.named_parameters()) for model in models)
    grads = first_grads[0]
    noise_level = 16 * torch.finfo(dtype).eps * _norm(grads.values())
    total = _norm(native.values())
    for key, expected in native.items():
        noise = grads[key].abs() <= noise_level
        assert _close(converted[key][~noise], expected[~noise], dtype, total), key
        assert (converted[key] - expected)[noise].abs().le(6 * LR).all(), key


@pytest.mark.parametrize("name", list(BUILDERS))
def test_coverage_finds_no_native_compute_node(name):
    native, converted = _pair(name, torch.float32)
    before = manualgrad.coverage(native.model, **native.inputs)
    assert before.hand_derived_nodes == 0 and before.native_nodes > 0  # the check can fail
    report = converted.model.convert_report.coverage
    assert report.complete, str(report)
    assert report.hand_derived_nodes > 0
    assert manualgrad.convert(native.model, strict=True, example_inputs=native.inputs)


def test_library_forms_run_as_one_function_and_to_torch_gives_the_class_back():
    from transformers.activations import NewGELUActivation
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    from manualgrad.functional.activations import GELUFunction
    from manualgrad.functional.normalization import RMSNormFunction

    cases = (("llama", LlamaRMSNorm, RMSNormFunction), ("gpt2", NewGELUActivation, GELUFunction))
    for name, cls, function in cases:
        native, converted = _pair(name, torch.float32)
        count = sum(type(m) is cls for m in native.model.modules())
        swapped = [m for m in converted.model.modules() if type(m).__bases__ == (cls,)]
        assert count > 0 and len(swapped) == count  # every instance
        names = {old for _, old, new in converted.model.convert_report.swapped}
        assert f"{cls.__module__}.{cls.__qualname__}" in names
        functions = [fn for _, fn in graph_nodes(converted.loss().grad_fn)]
        assert functions.count(function) == count  # one node per module
        back = manualgrad.to_torch(converted.model)
        assert sum(type(m) is cls for m in back.modules()) == count


def test_a_library_form_whose_forward_changed_is_routed_op_by_op(monkeypatch):
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    from manualgrad.forms import form_class

    assert form_class(LlamaRMSNorm) is not None
    monkeypatch.setattr(LlamaRMSNorm, "forward", lambda self, x: self.weight * x)
    assert form_class(LlamaRMSNorm) is None
    model = manualgrad.convert(LlamaRMSNorm(8))
    assert type(model) is LlamaRMSNorm


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_rms_norm_other_than_float32_keeps_the_librarys_arithmetic_in_the_mode(dtype):
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    native = LlamaRMSNorm(8).to(dtype)
    converted = manualgrad.convert(native)
    x = torch.randn(3, 8, dtype=dtype, requires_grad=True)
    assert torch.equal(converted(x), native(x))
    report = manualgrad.coverage(converted, x)
    assert report.complete and report.hand_derived_nodes > 1  # pow, mean, rsqrt, ... each routed
