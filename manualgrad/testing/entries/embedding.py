"""Registry entries (see manualgrad.testing.registry): embedding, embedding_bag.

``max_norm`` (an in-place renormalisation of the weight) and ``sparse=True`` (sparse gradients)
do not fit gradcheck; tests/test_embedding.py covers them against torch. embedding_bag's
mode="max" samples have no ties (random values), where its gradient is a subgradient choice.
"""

import inspect

import torch
import torch.nn.functional as TF

import manualgrad.functional as F
import manualgrad.nn as mnn
from manualgrad.testing.registry import ErrorCase, ModuleInfo, OpInfo, Sample, tensor


def _indices(*shape, high=6, dtype=torch.int64):
    return torch.randint(0, high, shape, dtype=dtype)


def embedding_samples(dtype):
    weight = tensor(6, 3, dtype=dtype)
    repeated = torch.tensor([[0, 2, 2, 5], [2, 1, 0, 2]])
    yield Sample("regular", (_indices(2, 4), weight))
    yield Sample("int32_indices", (_indices(5, dtype=torch.int32), weight))
    yield Sample("scalar_index", (torch.tensor(4), weight))
    yield Sample("empty", (_indices(0, 3), weight))
    yield Sample("size1", (_indices(1, high=1), tensor(1, 1, dtype=dtype)))
    yield Sample(
        "noncontiguous",
        (repeated.t(), tensor(6, 4, dtype=dtype, noncontiguous=True)),
        noncontiguous_grad=True,
    )


def convention_samples(dtype):
    """padding_idx and scale_grad_by_freq: torch's gradient is a convention, not the Jacobian."""
    weight = tensor(6, 3, dtype=dtype)
    repeated = torch.tensor([[0, 2, 2, 5], [2, 1, 0, 2]])
    yield Sample("padding_idx", (repeated, weight), {"padding_idx": 2})
    yield Sample("negative_padding_idx", (repeated, weight), {"padding_idx": -1})
    yield Sample("scale_grad_by_freq", (repeated, weight), {"scale_grad_by_freq": True})
    yield Sample(
        "freq_and_padding", (repeated, weight), {"scale_grad_by_freq": True, "padding_idx": 0}
    )


def embedding_errors():
    weight = torch.randn(5, 3)
    index = torch.tensor([0, 4])
    yield ErrorCase((index.float(), weight), {}, RuntimeError, "argument #1 'indices'")
    yield ErrorCase((torch.tensor([5]), weight), {}, IndexError, "index out of range")
    yield ErrorCase((index, torch.randn(5)), {}, RuntimeError, "'weight' must be 2-D")
    for padding_idx in (5, -6):
        yield ErrorCase((index, weight), {"padding_idx": padding_idx}, AssertionError, "Padding")


_BAG_SIGNATURE = inspect.signature(TF.embedding_bag)


def embedding_bag_reference(*args, **kwargs):
    """``F.embedding_bag``; with no bags of a non-empty 1-d input, on the input emptied, which
    gives the same: no rows, no gradient (torch 2.13's backward segfaults there, taking the test
    process with it — the fuzz and edge-case tests empty the offsets)."""
    call = _BAG_SIGNATURE.bind(*args, **kwargs)
    call.apply_defaults()
    given = call.arguments
    input, offsets = given["input"], given["offsets"]
    bagless = (
        input.dim() == 1
        and isinstance(offsets, torch.Tensor)
        and offsets.dim() == 1
        and offsets.shape[0] == int(given["include_last_offset"])
        and input.numel() > 0
    )
    if bagless:
        given["input"] = input[:0]
        if given["per_sample_weights"] is not None:
            given["per_sample_weights"] = given["per_sample_weights"][:0]
    return TF.embedding_bag(*call.args, **call.kwargs)


def _bag_weight(dtype, rows=7, cols=3, noncontiguous=False):
    return tensor(rows, cols, dtype=dtype, noncontiguous=noncontiguous)


def _positional(
    input, weight, offsets, mode, per_sample_weights=None, include_last_offset=False, freq=False
):
    """embedding_bag's arguments up to ``per_sample_weights`` (positional, so it gets a
    gradient), ``include_last_offset`` when set; ``freq``: scale_grad_by_freq."""
    head = (input, weight, offsets, None, 2, freq, mode, False, per_sample_weights)
    return (*head, True) if include_last_offset else head


def embedding_bag_samples(dtype):
    flat = torch.tensor([4, 0, 2, 2, 6, 1, 5, 3, 0])
    offsets = torch.tensor([0, 3, 3, 7])  # bags of 3, 0 (empty), 4 and 2 indices
    weight = _bag_weight(dtype)
    yield Sample("offsets_mean", _positional(flat, weight, offsets, "mean"))
    yield Sample("2d_mean", (_indices(3, 4, high=7), weight))
    yield Sample("2d_sum", (_indices(3, 4, high=7), weight), {"mode": "sum"})
    yield Sample("offsets_sum", _positional(flat, weight, offsets, "sum"))
    yield Sample("offsets_max", _positional(flat, weight, offsets, "max"))
    yield Sample("2d_max", (_indices(2, 5, high=7), weight), {"mode": "max"})
    psw = tensor(9, dtype=dtype)
    yield Sample("per_sample_weights", _positional(flat, weight, offsets, "sum", psw))
    yield Sample(
        "per_sample_weights_2d",
        (
            _indices(2, 3, high=7),
            weight,
            None,
            None,
            2,
            False,
            "sum",
            False,
            tensor(2, 3, dtype=dtype),
        ),
        {"padding_idx": 0},
    )
    csr = torch.tensor([0, 2, 2, 9])  # the last offset ends the last bag
    for mode in ("sum", "mean", "max"):
        yield Sample(
            f"include_last_offset_{mode}",
            _positional(flat, weight, csr, mode, include_last_offset=True),
        )
    for mode in ("sum", "mean", "max"):
        # bag [2, 2] is all padding: a zero row; mean counts only the other indices
        yield Sample(
            f"padding_idx_{mode}",
            _positional(flat, weight, torch.tensor([0, 2, 4]), mode),
            {"padding_idx": 2},
        )
    yield Sample(
        "padding_idx_per_sample_weights",
        _positional(flat, weight, offsets, "sum", tensor(9, dtype=dtype)),
        {"padding_idx": -1},
    )
    yield Sample("int32", _positional(flat.int(), weight, offsets.int(), "mean"))
    yield Sample("empty_input", _positional(flat[:0], weight, torch.tensor([0, 0]), "mean"))
    yield Sample("empty_input_max", _positional(flat[:0], weight, torch.tensor([0]), "max"))
    # no bags of an empty input (torch 2.13's backward crashes on no bags of a non-empty one)
    yield Sample("no_bags", _positional(flat[:0], weight, flat[:0], "sum"))
    yield Sample("size1", (torch.zeros(1, 1, dtype=torch.int64), _bag_weight(dtype, 1, 1)))
    yield Sample(
        "noncontiguous",
        (torch.tensor([[0, 2, 2, 5], [2, 1, 0, 2]]).t(), _bag_weight(dtype, 6, 4, True)),
        {"mode": "sum"},
        noncontiguous_grad=True,
    )


def embedding_bag_freq_samples(dtype):
    """scale_grad_by_freq: a convention, not the Jacobian. Every index occurs equally often:
    torch 2.13's CPU kernel divides by another index's count where counts differ (see
    EmbeddingBagFunction; tests/test_embedding.py checks those against the definition)."""
    flat = torch.tensor([1, 3, 3, 6, 1, 6, 0, 0])
    weight = _bag_weight(dtype)
    for mode in ("sum", "mean"):
        yield Sample(
            f"freq_{mode}",
            _positional(flat, weight, torch.tensor([0, 3, 3]), mode, freq=True),
        )
    yield Sample(
        "freq_per_sample_weights",
        _positional(flat, weight, torch.tensor([0, 5]), "sum", tensor(8, dtype=dtype), freq=True),
    )


def embedding_bag_errors():
    weight, flat, offsets = torch.randn(5, 3), torch.tensor([0, 4, 1]), torch.tensor([0, 2])
    cases = [
        ((flat.float(), weight, offsets), {}, RuntimeError, "argument #1 'indices'"),
        ((flat, weight, offsets.float()), {}, RuntimeError, "argument #1 'indices'"),
        ((flat.view(1, 3), weight, offsets), {}, ValueError, "offsets has to be None"),
        ((flat, weight), {}, ValueError, "offsets has to be a 1D Tensor but got None"),
        ((flat, weight, offsets.view(1, 2)), {}, ValueError, "offsets has to be a 1D"),
        ((flat.view(1, 1, 3), weight), {}, ValueError, "input has to be 1D or 2D"),
        ((flat, torch.randn(5), offsets), {}, ValueError, "weight has to be a 2D"),
        ((flat, weight, offsets), {"mode": "min"}, ValueError, "mode has to be one of"),
        ((flat, weight, offsets), {"mode": "max", "sparse": True}, ValueError, "sparse"),
        (
            (flat, weight, offsets),
            {"mode": "max", "scale_grad_by_freq": True},
            ValueError,
            "frequency",
        ),
        (
            (flat, weight, offsets),
            {"per_sample_weights": torch.rand(3)},
            NotImplementedError,
            "per_sample_weights",
        ),
        (
            (flat, weight, offsets),
            {"mode": "sum", "per_sample_weights": torch.rand(2)},
            ValueError,
            "per_sample_weights",
        ),
        (
            (flat, weight, offsets),
            {"mode": "sum", "per_sample_weights": torch.rand(3).double()},
            RuntimeError,
            "per_sample_weights",
        ),
        ((flat, weight, torch.tensor([1, 2])), {}, RuntimeError, r"offsets\[0\] has to be 0"),
        ((flat, weight, torch.tensor([0, 4])), {}, RuntimeError, r"offsets\[-1\]"),
        ((flat, weight, torch.tensor([0, -1])), {}, IndexError, "offsets"),
        ((flat, weight, torch.tensor([0, 3, 2])), {}, RuntimeError, "offsets"),
        ((torch.tensor([0, 5]), weight, offsets), {}, RuntimeError, "input"),
        ((torch.tensor([0, -1]), weight, offsets), {}, RuntimeError, "input"),
        ((flat, weight, offsets), {"padding_idx": 5}, RuntimeError, "padding_idx"),
        ((flat, weight, offsets), {"padding_idx": -6}, RuntimeError, "padding_idx"),
        (
            (flat, weight, flat[:0]),
            {"include_last_offset": True},
            RuntimeError,
            "include_last_offset",
        ),
    ]
    for args, kwargs, error, match in cases:
        yield ErrorCase(args, kwargs, error, match)


def _bag_inputs(kwargs, dtype):
    flat, offsets = torch.tensor([1, 3, 3, 1, 6, 6]), torch.tensor([0, 2, 2, 6])
    if kwargs.get("mode") == "sum":
        return flat, offsets, torch.rand(6, dtype=dtype)
    return flat, offsets


OPS = [
    OpInfo(
        "embedding",
        F.embedding,
        TF.embedding,
        F.EmbeddingFunction,
        embedding_samples,
        embedding_errors,
        compile=True,
    ),
    # gradcheck compares with the true Jacobian, which these options deliberately depart from;
    # parity with torch (values and gradients) still runs.
    OpInfo(
        "embedding_padding_freq",
        F.embedding,
        TF.embedding,
        F.EmbeddingFunction,
        convention_samples,
        gradcheck=False,
    ),
    OpInfo(
        "embedding_bag",
        F.embedding_bag,
        embedding_bag_reference,
        F.EmbeddingBagFunction,
        embedding_bag_samples,
        embedding_bag_errors,
        compile=True,
    ),
    # scale_grad_by_freq departs from the Jacobian by design, as embedding's; parity still runs
    OpInfo(
        "embedding_bag_freq",
        F.embedding_bag,
        embedding_bag_reference,
        F.EmbeddingBagFunction,
        embedding_bag_freq_samples,
        gradcheck=False,
    ),
]

MODULES = [
    ModuleInfo(
        "Embedding",
        mnn.Embedding,
        torch.nn.Embedding,
        [
            {"num_embeddings": 7, "embedding_dim": 3},
            {"num_embeddings": 7, "embedding_dim": 2, "padding_idx": 1},
            {"num_embeddings": 7, "embedding_dim": 3, "scale_grad_by_freq": True},
            {"num_embeddings": 7, "embedding_dim": 4, "max_norm": 1.0},
        ],
        lambda kw, dtype: (torch.tensor([[1, 3, 3], [6, 0, 1]]),),
    ),
    ModuleInfo(
        "EmbeddingBag",
        mnn.EmbeddingBag,
        torch.nn.EmbeddingBag,
        [
            {"num_embeddings": 7, "embedding_dim": 3},
            {"num_embeddings": 7, "embedding_dim": 3, "mode": "sum", "padding_idx": 1},
            {"num_embeddings": 7, "embedding_dim": 2, "mode": "max"},
            {"num_embeddings": 7, "embedding_dim": 3, "mode": "sum", "include_last_offset": True},
            {"num_embeddings": 7, "embedding_dim": 3, "scale_grad_by_freq": True},
            {"num_embeddings": 7, "embedding_dim": 4, "max_norm": 1.0},
        ],
        _bag_inputs,
    ),
]
