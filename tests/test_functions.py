"""Generic tests over every registry op: one test body per property, one registry entry per op."""

from __future__ import annotations

import pytest
import torch

from manualgrad.testing.calls import differentiable_call, float_outputs, random_like, run_with_grads
from manualgrad.testing.memory import saved_bytes
from tests.registry import OPS


def _cases(predicate=lambda op: True, dtype=torch.float64):
    return [
        pytest.param(op, sample, id=f"{op.name}-{sample.name}")
        for op in OPS
        if predicate(op)
        for sample in op.seeded_samples(dtype)
    ]


def _first_samples(predicate=lambda op: True):
    return [
        pytest.param(op, op.seeded_samples(torch.float64)[0], id=op.name)
        for op in OPS
        if predicate(op)
    ]


@pytest.mark.parametrize(("op", "sample"), _cases(lambda op: op.gradcheck))
def test_gradcheck_and_gradgradcheck(op, sample):
    call, inputs = differentiable_call(op.op, sample, sample.prepared())
    if not inputs:
        pytest.skip("no differentiable input")
    assert torch.autograd.gradcheck(call, inputs)
    if not op.gradgradcheck:
        return
    generator = torch.Generator().manual_seed(1)
    grad_outputs = [random_like(o, generator, sample.noncontiguous_grad) for o in call(*inputs)]
    assert torch.autograd.gradgradcheck(
        call, inputs, grad_outputs, gen_non_contig_grad_outputs=sample.noncontiguous_grad
    )


def _assert_close_lists(actual, expected, op):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        if e is None:
            assert a is None or not a.any()
            continue
        assert a is not None
        torch.testing.assert_close(a, e, atol=op.atol, rtol=op.rtol)


@pytest.mark.parametrize(("op", "sample"), _cases())
def test_float32_parity_with_torch(op, sample):
    outputs, grads = run_with_grads(op.op, sample, torch.float32)
    expected_outputs, expected_grads = run_with_grads(op.reference, sample, torch.float32)
    _assert_close_lists(outputs, expected_outputs, op)
    _assert_close_lists(grads, expected_grads, op)


@pytest.mark.parametrize(("op", "sample"), _cases())
def test_partial_requires_grad(op, sample):
    for position, index in enumerate(sample.differentiable()):
        _, grads = run_with_grads(op.op, sample, only=index)
        _, expected = run_with_grads(op.reference, sample, only=index)
        assert all(g is None for k, g in enumerate(grads) if k != position)
        _assert_close_lists(grads[position : position + 1], expected[position : position + 1], op)


@pytest.mark.parametrize(("op", "sample"), _first_samples())
def test_none_grad_output_for_unused_outputs(op, sample):
    count = len(float_outputs(op.op(*sample.prepared(), **sample.kwargs)))
    for index in range(count):
        _, grads = run_with_grads(op.op, sample, output_index=index)
        _, expected = run_with_grads(op.reference, sample, output_index=index)
        _assert_close_lists(grads, expected, op)


@pytest.mark.parametrize(("op", "sample"), _first_samples(lambda op: op.vmap))
def test_vmap_and_func_grad_match_loop(op, sample):
    positions = sample.differentiable()
    batch = [sample.prepared() for _ in range(3)]
    for args in batch[1:]:
        for i in positions:
            args[i] = args[i].detach() + torch.randn_like(args[i])
    stacked = [
        torch.stack([args[i] for args in batch]) if i in positions else None
        for i in range(len(sample.args))
    ]
    in_dims = tuple(0 if i in positions else None for i in range(len(sample.args)))
    base = sample.prepared()

    def call(*args):
        full = [a if i in positions else base[i] for i, a in enumerate(args)]
        return float_outputs(op.op(*full, **sample.kwargs))[0]

    vmapped = torch.func.vmap(call, in_dims=in_dims)(
        *[s if s is not None else base[i] for i, s in enumerate(stacked)]
    )
    looped = torch.stack([call(*args) for args in batch])
    torch.testing.assert_close(vmapped, looped)

    argnums = tuple(positions)
    func_grads = torch.func.grad(lambda *a: call(*a).sum(), argnums=argnums)(*base)
    outputs = call(*base)
    autograd_grads = torch.autograd.grad(
        outputs.sum(), [base[i] for i in positions], allow_unused=True
    )
    for f, a in zip(func_grads, autograd_grads, strict=True):
        torch.testing.assert_close(f, torch.zeros_like(f) if a is None else a)


# Backwards that still write with out=/in place, flatten or query strides in a way autograd's
# legacy vmap (is_grads_batched) cannot batch: known gaps, strict so a fix shows up.
BATCHED_GRAD_GAPS = frozenset(
    {
        "scaled_dot_product_attention",
        "scaled_dot_product_attention_blocks",
    }
)
# ... except these samples of theirs: an empty query or key has all-zero gradients, no kernels.
BATCHED_GRAD_GAP_EXCEPTIONS = frozenset(
    {
        "scaled_dot_product_attention_blocks-empty_query",
        "scaled_dot_product_attention_blocks-empty_key",
    }
)
# Samples whose backward draws random numbers (blocked attention regenerates its dropout mask
# from a seed): the legacy vmap has no randomness rule and raises on any random op.
BATCHED_GRAD_RANDOM_REASON = "random draws in backward: legacy vmap has no randomness rule"
BATCHED_GRAD_RANDOM = frozenset(
    {
        "scaled_dot_product_attention_blocks-dropout_causal",
        "scaled_dot_product_attention_blocks-dropout_gqa_mask",
    }
)


def _batched_grad_cases(cases):
    def marks(case):
        if case.id in BATCHED_GRAD_RANDOM:
            return pytest.mark.xfail(strict=True, reason=BATCHED_GRAD_RANDOM_REASON)
        if case.values[0].name in BATCHED_GRAD_GAPS and case.id not in BATCHED_GRAD_GAP_EXCEPTIONS:
            return pytest.mark.xfail(strict=True, reason="not batchable under is_grads_batched")
        return ()

    return [pytest.param(*case.values, id=case.id, marks=marks(case)) for case in cases]


@pytest.mark.parametrize(("op", "sample"), _batched_grad_cases(_first_samples(lambda op: op.vmap)))
def test_batched_grad_outputs_match_one_backward_each(op, sample):
    """``torch.autograd.grad(..., is_grads_batched=True)`` (autograd's own vmap over the
    incoming gradients, as Hessian and Jacobian rows are computed) equals one backward each."""
    call, inputs = differentiable_call(op.op, sample, sample.prepared())
    if not inputs:
        pytest.skip("no differentiable input")
    output = call(*inputs)[0]
    generator = torch.Generator().manual_seed(2)
    batched = torch.stack([random_like(output, generator) for _ in range(3)])
    grads = torch.autograd.grad(
        output, inputs, batched, retain_graph=True, allow_unused=True, is_grads_batched=True
    )
    for row, grad_output in enumerate(batched):
        single = torch.autograd.grad(
            output, inputs, grad_output, retain_graph=True, allow_unused=True
        )
        for b, s in zip(grads, single, strict=True):
            if s is None:
                assert b is None or not b[row].any()
            else:
                torch.testing.assert_close(b[row], s)


@pytest.mark.slow
@pytest.mark.parametrize(("op", "sample"), _batched_grad_cases(_cases(lambda op: op.vmap)))
def test_batched_grad_outputs_match_one_backward_each_every_sample(op, sample):
    """The same property over every sample of every vmap-able op, not only the first."""
    test_batched_grad_outputs_match_one_backward_each(op, sample)


@pytest.mark.parametrize(("op", "sample"), _first_samples(lambda op: op.compile))
def test_torch_compile_fullgraph_matches_eager(op, sample):
    torch._dynamo.reset()
    compiled = torch.compile(op.op, fullgraph=True, backend="aot_eager")
    outputs, grads = run_with_grads(compiled, sample)
    expected_outputs, expected_grads = run_with_grads(op.op, sample)
    _assert_close_lists(outputs, expected_outputs, op)
    _assert_close_lists(grads, expected_grads, op)


@pytest.mark.parametrize(("op", "sample"), _cases(dtype=torch.float32))
def test_saved_bytes_at_most_native(op, sample):
    def measure(fn):
        args = sample.prepared()
        return saved_bytes(lambda: fn(*args, **sample.kwargs))

    assert measure(op.op) <= op.saved_bytes_slack * measure(op.reference)


@pytest.mark.parametrize("op", [pytest.param(op, id=op.name) for op in OPS if op.errors])
def test_bad_input_raises_like_torch(op):
    for case in op.errors():
        with pytest.raises(case.error, match=case.match):
            op.op(*case.args, **case.kwargs)
        try:
            op.reference(*case.args, **case.kwargs)
        except Exception as error:
            assert isinstance(error, case.error), f"torch raises {type(error).__name__}"
