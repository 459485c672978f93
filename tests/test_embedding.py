"""Embedding and embedding_bag options outside the generic matrix: max_norm, sparse gradients,
from_pretrained; where embedding_bag follows its definition and torch 2.13 on CPU does not; the
max mode under vmap; torch.embedding_bag routed in the mode."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF

import manualgrad
import manualgrad.functional as F
import manualgrad.nn as mnn


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.5])
def test_max_norm_renormalises_in_place_like_torch(dtype, norm_type):
    weight = torch.randn(20, 5, dtype=dtype) * 2
    indices = torch.randint(0, 20, (3, 7))
    ours, theirs = weight.clone().requires_grad_(), weight.clone().requires_grad_()
    out = F.embedding(indices, ours, max_norm=1.5, norm_type=norm_type)
    expected = TF.embedding(indices, theirs, max_norm=1.5, norm_type=norm_type)
    assert torch.equal(out, expected)
    assert torch.equal(ours, theirs)  # same rows renormalised, bit for bit
    assert ours._version == theirs._version > 0
    grad = torch.randn_like(out)
    assert torch.equal(
        *(torch.autograd.grad(o, w, grad)[0] for o, w in ((out, ours), (expected, theirs)))
    )


def _sparse_grads(**kwargs):
    weight = torch.randn(6, 3)
    indices = torch.tensor([[0, 2, 2, 5], [2, 1, 0, 2]])
    grads = []
    for fn in (F.embedding, TF.embedding):
        leaf = weight.clone().requires_grad_()
        out = fn(indices, leaf, sparse=True, **kwargs)
        (grad,) = torch.autograd.grad(out, leaf, torch.arange(24.0).reshape(2, 4, 3))
        grads.append(grad)
    return grads


@pytest.mark.parametrize("padding_idx", [None, 2])
def test_sparse_gradient_matches_torch(padding_idx):
    ours, theirs = _sparse_grads(padding_idx=padding_idx)
    assert ours.is_sparse and ours.shape == theirs.shape
    assert torch.equal(ours._indices(), theirs._indices())
    torch.testing.assert_close(ours.to_dense(), theirs.to_dense())


def test_sparse_refuses_scale_grad_by_freq_like_torch():
    with pytest.raises(RuntimeError, match="scale_grad_by_freq not supported with sparse"):
        _sparse_grads(scale_grad_by_freq=True)


def test_sparse_module_trains_with_sgd_like_torch():
    torch.manual_seed(0)
    ours = mnn.Embedding(8, 3, sparse=True)
    theirs = torch.nn.Embedding(8, 3, sparse=True)
    theirs.load_state_dict(ours.state_dict())
    indices = torch.tensor([1, 4, 4, 7])
    for module in (ours, theirs):
        optimizer = torch.optim.SGD(module.parameters(), lr=0.5)
        for _ in range(3):
            optimizer.zero_grad()
            module(indices).square().sum().backward()
            optimizer.step()
    torch.testing.assert_close(ours.weight, theirs.weight)


def test_from_pretrained_builds_the_manualgrad_class():
    table = torch.randn(4, 2)
    layer = mnn.Embedding.from_pretrained(table, padding_idx=0)
    assert type(layer) is mnn.Embedding and not layer.weight.requires_grad
    assert torch.equal(layer(torch.tensor([3, 1])), table[[3, 1]])
    trainable = mnn.Embedding.from_pretrained(table, freeze=False)
    trainable(torch.tensor([0, 0])).sum().backward()
    assert torch.equal(trainable.weight.grad, torch.tensor([[2.0, 2.0], [0, 0], [0, 0], [0, 0]]))


# embedding_bag ------------------------------------------------------------------------------


def _bag_grads(fn, weight, *args, per_sample_weights=None, **kwargs):
    """Output and gradients (weight[, per_sample_weights]) of ``fn`` for a seeded output grad."""
    leaves = [weight.clone().requires_grad_()]
    if per_sample_weights is not None:
        leaves.append(per_sample_weights.clone().requires_grad_())
        kwargs["per_sample_weights"] = leaves[1]
    out = fn(args[0], leaves[0], *args[1:], **kwargs)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(3), dtype=out.dtype)
    return out, torch.autograd.grad(out, leaves, grad)


def _by_definition(input, weight, offsets, mode, per_sample_weights=None, padding_idx=None):
    """Each bag reduced from its own rows (torch's autograd over plain indexing: the reference
    for what torch 2.13's CPU kernel gets wrong)."""
    ends = offsets[1:].tolist()
    bags = []
    for start, end in zip(offsets[:-1].tolist(), ends, strict=True):
        keep = [k for k in range(start, end) if input[k] != padding_idx]
        rows = weight[input[keep]]
        if per_sample_weights is not None:
            rows = rows * per_sample_weights[keep].unsqueeze(1)
        if not keep:
            bags.append(weight.new_zeros(weight.shape[1]))
        elif mode == "max":
            bags.append(rows.amax(0))
        else:
            bags.append(rows.sum(0) / (len(keep) if mode == "mean" else 1))
    return torch.stack(bags)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_bag_indices_after_the_last_offset_belong_to_no_bag(mode):
    """include_last_offset: the last offset ends the last bag (torch 2.13 on CPU still reduces
    the indices after it into the last bag in mean and max, and gives them its gradient)."""
    weight = torch.randn(8, 3, dtype=torch.float64)
    input, offsets = torch.tensor([1, 2, 1, 5, 1, 3, 2, 0, 7]), torch.tensor([0, 3, 5])
    psw = torch.rand(9, dtype=torch.float64) if mode == "sum" else None
    out, grads = _bag_grads(
        F.embedding_bag,
        weight,
        input,
        offsets,
        mode=mode,
        include_last_offset=True,
        per_sample_weights=psw,
    )
    expected, expected_grads = _bag_grads(
        lambda i, w, o, **kw: _by_definition(i, w, o, mode, **kw),
        weight,
        input,
        offsets,
        per_sample_weights=psw,
    )
    torch.testing.assert_close(out, expected)
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected_grad)
    assert not grads[0][[0, 7]].any()  # rows only the trailing indices reference


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_bag_scale_grad_by_freq_divides_by_each_index_count(mode):
    """Mixed counts: index 1 twice, 3 once. torch 2.13's CPU kernel divides row 3 by index 1's
    count (it reads the counts at the wrong position of the sorted indices)."""
    weight = torch.ones(4, 2, dtype=torch.float64)
    input, offsets = torch.tensor([1, 1, 3]), torch.tensor([0])
    leaf = weight.clone().requires_grad_()
    out = F.embedding_bag(input, leaf, offsets, mode=mode, scale_grad_by_freq=True)
    (grad,) = torch.autograd.grad(out.sum(), leaf)
    per_index = 1 / 3 if mode == "mean" else 1.0
    expected = torch.tensor([0.0, 2 * per_index / 2, 0.0, per_index / 1], dtype=torch.float64)
    torch.testing.assert_close(grad[:, 0], expected)


def test_bag_no_bags_of_a_non_empty_input():
    """torch 2.13's backward crashes (segfault) here; ours gives no rows and a zero gradient."""
    weight = torch.randn(5, 2, requires_grad=True)
    out = F.embedding_bag(
        torch.tensor([0, 4, 1]), weight, torch.tensor([0]), include_last_offset=True, mode="sum"
    )
    assert out.shape == (0, 2)
    (grad,) = torch.autograd.grad(out, weight, torch.ones_like(out))
    assert not grad.any()


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_bag_max_norm_renormalises_in_place_like_torch(mode):
    weight = torch.randn(20, 5) * 2
    input, offsets = torch.randint(0, 20, (12,)), torch.tensor([0, 5, 5, 9])
    ours, theirs = weight.clone().requires_grad_(), weight.clone().requires_grad_()
    out = F.embedding_bag(input, ours, offsets, max_norm=1.5, mode=mode)
    expected = TF.embedding_bag(input, theirs, offsets, max_norm=1.5, mode=mode)
    torch.testing.assert_close(out, expected)
    assert torch.equal(ours, theirs) and ours._version == theirs._version > 0
    grad = torch.randn_like(out)
    torch.testing.assert_close(
        *(torch.autograd.grad(o, w, grad)[0] for o, w in ((out, ours), (expected, theirs)))
    )


@pytest.mark.parametrize(("mode", "padding_idx"), [("sum", None), ("mean", 2), ("sum", 0)])
def test_bag_sparse_gradient_matches_torch(mode, padding_idx):
    weight, input = torch.randn(6, 3), torch.tensor([0, 2, 2, 5, 2, 1, 0, 2])
    offsets, psw = torch.tensor([0, 3, 3]), torch.rand(8) if mode == "sum" else None
    grads = [
        _bag_grads(
            fn,
            weight,
            input,
            offsets,
            mode=mode,
            sparse=True,
            padding_idx=padding_idx,
            per_sample_weights=psw,
        )[1][0]
        for fn in (F.embedding_bag, TF.embedding_bag)
    ]
    ours, theirs = grads
    assert ours.is_sparse and ours.shape == theirs.shape
    assert torch.equal(ours._indices(), theirs._indices())
    torch.testing.assert_close(ours.to_dense(), theirs.to_dense())


def test_bag_sparse_refuses_scale_grad_by_freq_like_torch():
    for fn in (F.embedding_bag, TF.embedding_bag):
        with pytest.raises(RuntimeError, match="scale_grad_by_freq not supported with sparse"):
            _bag_grads(
                fn,
                torch.randn(4, 2),
                torch.tensor([0, 3]),
                torch.tensor([0]),
                sparse=True,
                scale_grad_by_freq=True,
            )


def test_bag_old_argument_order_warns_and_swaps_like_torch():
    weight, input, offsets = torch.randn(4, 2), torch.tensor([0, 3, 3]), torch.tensor([0, 1])
    with pytest.warns(UserWarning, match="Argument order of nn.functional.embedding_bag"):
        out = F.embedding_bag(weight, input, offsets)
    torch.testing.assert_close(out, TF.embedding_bag(input, weight, offsets))


@pytest.mark.parametrize("mode", ["sum", "max"])
def test_bag_vmap_over_weights_matches_a_loop(mode):
    input, offsets = torch.tensor([1, 2, 1, 5, 0, 3]), torch.tensor([0, 2, 2, 4])
    weights = torch.randn(3, 6, 2, dtype=torch.float64)

    def call(weight):
        return F.embedding_bag(input, weight, offsets, mode=mode)

    torch.testing.assert_close(
        torch.func.vmap(call)(weights), torch.stack([call(w) for w in weights])
    )
    grads = torch.func.vmap(torch.func.grad(lambda w: call(w).square().sum()))(weights)
    for weight, grad in zip(weights, grads, strict=True):
        leaf = weight.clone().requires_grad_()
        torch.testing.assert_close(grad, torch.autograd.grad(call(leaf).square().sum(), leaf)[0])


@pytest.mark.parametrize("mode", [0, 1, 2])
@pytest.mark.parametrize("padding_idx", [None, 4])
def test_torch_embedding_bag_in_the_mode_returns_torchs_four_tensors(mode, padding_idx):
    weight = torch.randn(10, 3, requires_grad=True)
    input, offsets = torch.tensor([1, 2, 4, 5, 4, 3, 2, 9]), torch.tensor([0, 4, 4])
    args = (weight, input, offsets, False, mode, False, None, False, padding_idx)
    expected = torch.embedding_bag(*args)
    with manualgrad.hand_derived():
        results = torch.embedding_bag(*args)
    assert type(results[0].grad_fn).__name__ == "EmbeddingBagFunctionBackward"
    for result, reference in zip(results, expected, strict=True):
        assert result.dtype == reference.dtype
        torch.testing.assert_close(result, reference)
    grad = torch.randn_like(expected[0])
    torch.testing.assert_close(
        torch.autograd.grad(results[0], weight, grad)[0],
        torch.autograd.grad(expected[0], weight, grad)[0],
    )


def test_bag_from_pretrained_builds_the_manualgrad_class():
    table = torch.randn(4, 2)
    layer = mnn.EmbeddingBag.from_pretrained(table, mode="sum", padding_idx=0)
    assert type(layer) is mnn.EmbeddingBag and not layer.weight.requires_grad
    input, offsets = torch.tensor([3, 1, 0, 2]), torch.tensor([0, 2])
    torch.testing.assert_close(layer(input, offsets), torch.stack([table[3] + table[1], table[2]]))


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
@pytest.mark.parametrize("ids", [[0, 1, 2], [2, 1, 0], [3, 4], [4, 3], [1, 2, 3, 0], [5, 3, 0]])
def test_bag_max_with_nan_and_inf_picks_torchs_winner(dtype, ids):
    """torch's running maximum: a NaN entry wins only as its bag's first, which then stays."""
    nan, inf = float("nan"), float("inf")
    table = [[nan, 1.0], [2.0, nan], [3.0, -inf], [-inf, -inf], [nan, nan], [inf, 1.0]]
    weight, input = torch.tensor(table, dtype=dtype), torch.tensor(ids)
    results = [
        _bag_grads(fn, weight, input, torch.tensor([0]), mode="max")
        for fn in (F.embedding_bag, TF.embedding_bag)
    ]
    (out, grads), (expected, expected_grads) = results
    torch.testing.assert_close(out, expected, equal_nan=True)
    torch.testing.assert_close(grads[0], expected_grads[0])
