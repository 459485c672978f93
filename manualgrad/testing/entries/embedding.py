"""Registry entries (see manualgrad.testing.registry): embedding.

``max_norm`` (an in-place renormalisation of the weight) and ``sparse=True`` (sparse gradients)
do not fit gradcheck; tests/test_embedding.py covers them against torch.
"""

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
]
