"""Benchmark inputs: one maker per registry op, at three sizes.

The registry's own samples are tiny (they feed gradgradcheck); a benchmark needs realistic
tensors. ``MAKERS`` maps every registry op name to ``maker(size) -> Sample`` for the sizes in
``SIZES``. A size is the same amount of data in each op's own terms:

==========  =====================  ===========================  ===================
size        matrix (rows × cols)   image (N, C, H, W)           attention (B, H, L, D)
==========  =====================  ===========================  ===================
small       64 × 64                1 × 16 × 16 × 16             1 × 1 × 64 × 64
medium      256 × 1024             4 × 64 × 32 × 32             4 × 4 × 256 × 64
large       4096 × 1024            16 × 64 × 64 × 64            16 × 8 × 512 × 64
==========  =====================  ===========================  ===================

In those terms: a linear layer (and linear + activation) maps ``cols → cols`` features of ``rows``
inputs; a loss sees ``rows`` examples of ``cols`` classes (targets are data, without gradient);
an embedding looks ``rows`` ids up in a (1024, cols) table (an embedding bag reduces them in
bags of 16); linear + cross-entropy projects ``rows`` states of width ``cols`` onto
``LM_VOCAB`` classes; a convolution maps C → C channels with a 3-wide kernel, in 1-d over
(N, C, H·W). Inputs are float32, seeded, on the default device. The element-wise activations
come from the activation catalogue (:mod:`manualgrad.train.activations`). A registry op with no
maker here fails the bench smoke test, so every new op gets one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from manualgrad.bench.elementary_inputs import makers as elementary_makers
from manualgrad.testing.registry import Sample
from manualgrad.train.activations import CATALOGUE

SIZES = ("small", "medium", "large")
MATRIX = {"small": (64, 64), "medium": (256, 1024), "large": (4096, 1024)}
IMAGE = {"small": (1, 16, 16, 16), "medium": (4, 64, 32, 32), "large": (16, 64, 64, 64)}
ATTENTION = {"small": (1, 1, 64, 64), "medium": (4, 4, 256, 64), "large": (16, 8, 512, 64)}

Maker = Callable[[str], Sample]


def randn(*shape: int) -> Tensor:
    """Standard normal float32 values."""
    return torch.randn(*shape)


def classes(count: int, num_classes: int) -> Tensor:
    """``count`` integer class labels in ``[0, num_classes)``."""
    return torch.randint(0, num_classes, (count,))


def elementwise(**kwargs: object) -> Maker:
    """One (rows, cols) input, with ``kwargs`` passed to the op."""
    return lambda size: Sample(size, (randn(*MATRIX[size]),), dict(kwargs))


def linear(size: str) -> Sample:
    """x (rows, cols) through a (cols → cols) layer with bias."""
    rows, cols = MATRIX[size]
    return Sample(size, (randn(rows, cols), randn(cols, cols) / cols**0.5, randn(cols)))


def prelu(size: str) -> Sample:
    """x (rows, cols) with one slope per column (channel)."""
    rows, cols = MATRIX[size]
    return Sample(size, (randn(rows, cols), torch.full((cols,), 0.25)))


def embedding(**kwargs: object) -> Maker:
    """``rows`` token ids looking up a (VOCAB, cols) table."""

    def maker(size: str) -> Sample:
        rows, cols = MATRIX[size]
        return Sample(size, (classes(rows, VOCAB), randn(VOCAB, cols)), dict(kwargs))

    return maker


def embedding_bag(**kwargs: object) -> Maker:
    """``rows`` token ids in bags of ``BAG`` (a 2-d input) reduced over a (VOCAB, cols) table."""

    def maker(size: str) -> Sample:
        rows, cols = MATRIX[size]
        ids = classes(rows, VOCAB).reshape(rows // BAG, BAG)
        return Sample(size, (ids, randn(VOCAB, cols)), dict(kwargs))

    return maker


VOCAB = 1024
BAG = 16


def loss(target: Callable[[int, int], Tensor], constant: frozenset[int] = frozenset()) -> Maker:
    """``rows`` examples of ``cols`` outputs/classes: (input, ``target(rows, cols)``)."""

    def maker(size: str) -> Sample:
        rows, cols = MATRIX[size]
        return Sample(size, (randn(rows, cols), target(rows, cols)), constant=constant)

    return maker


# Regression and probability targets are data: no gradient, as in training.
TARGET = frozenset({1})


def signs(rows: int, cols: int) -> Tensor:
    """±1 labels."""
    return torch.randint(0, 2, (rows, cols)).float() * 2 - 1


def image(**kwargs: object) -> Maker:
    """One (N, C, H, W) image batch, with ``kwargs`` passed to the op."""
    return lambda size: Sample(size, (randn(*IMAGE[size]),), dict(kwargs))


def line(**kwargs: object) -> Maker:
    """The image's rows laid end to end, (N, C, H·W), with ``kwargs`` passed to the op."""

    def maker(size: str) -> Sample:
        batch, channels, height, width = IMAGE[size]
        return Sample(size, (randn(batch, channels, height * width),), dict(kwargs))

    return maker


def conv(dims: int) -> Maker:
    """A 3-wide (3×3) convolution C → C with bias and padding 1 over the image (``dims`` = 2)
    or the image's rows laid end to end (``dims`` = 1)."""

    def maker(size: str) -> Sample:
        batch, channels, height, width = IMAGE[size]
        spatial = (height, width) if dims == 2 else (height * width,)
        weight = randn(channels, channels, *(3,) * dims) / (channels * 3**dims) ** 0.5
        args = (randn(batch, channels, *spatial), weight, randn(channels))
        return Sample(size, args, {"padding": 1})

    return maker


def attention(**kwargs: object) -> Maker:
    """Query, key and value of shape (B, H, L, D)."""
    return lambda size: Sample(size, tuple(randn(*ATTENTION[size]) for _ in range(3)), kwargs)


def rotary(size: str) -> Sample:
    """(B, H, L, D) attention heads and their (L, D) cos/sin tables (constants)."""
    shape = ATTENTION[size]
    angles = torch.rand(shape[-2], shape[-1])
    return Sample(size, (randn(*shape), angles.cos(), angles.sin()), constant=frozenset({1, 2}))


def gate(size: str) -> Sample:
    """Gate and up projections, (rows, cols) each."""
    return Sample(size, (randn(*MATRIX[size]), randn(*MATRIX[size])))


def add_norm(size: str) -> Sample:
    """Sublayer output and residual (rows, cols), normalised over cols with affine params."""
    rows, cols = MATRIX[size]
    return Sample(size, (randn(rows, cols), randn(rows, cols), (cols,), randn(cols)))


def linear_cross_entropy(**kwargs: object) -> Maker:
    """``rows`` hidden states of width ``cols`` against a (LM_VOCAB, cols) head, no bias."""

    def maker(size: str) -> Sample:
        rows, cols = MATRIX[size]
        vocab = LM_VOCAB[size]
        args = (randn(rows, cols), randn(vocab, cols) / cols**0.5, classes(rows, vocab))
        return Sample(size, args, dict(kwargs))

    return maker


LM_VOCAB = {"small": 512, "medium": 8192, "large": 8192}


def batch_norm(size: str) -> Sample:
    """Training-mode batch norm of an image batch, affine, updating running statistics."""
    channels = IMAGE[size][1]
    stats = (torch.zeros(channels), torch.ones(channels))
    args = (randn(*IMAGE[size]), *stats, randn(channels), randn(channels))
    return Sample(size, args, {"training": True}, constant=frozenset({1, 2}))


def normalized(*params: str) -> Maker:
    """(rows, cols) normalised over the last dim, with the named affine ``params`` (cols,)."""

    def maker(size: str) -> Sample:
        rows, cols = MATRIX[size]
        return Sample(size, (randn(rows, cols), (cols,), *(randn(cols) for _ in params)))

    return maker


def hard_concrete(size: str) -> Sample:
    """Gates of a (rows, cols) weight: log α and constant noise u ~ U(0.05, 0.95), the L0
    paper's β = 2/3, γ = −0.1, ζ = 1.1."""
    rows, cols = MATRIX[size]
    noise = torch.rand(rows, cols) * 0.9 + 0.05
    return Sample(size, (randn(rows, cols), noise, 2 / 3, -0.1, 1.1), constant=TARGET)


def group_norm(size: str) -> Sample:
    """An image batch in 8 channel groups, affine."""
    channels = IMAGE[size][1]
    return Sample(size, (randn(*IMAGE[size]), 8, randn(channels), randn(channels)))


MAKERS: dict[str, Maker] = {
    "linear": linear,
    **dict.fromkeys((a.op for a in CATALOGUE if a.elementwise), elementwise()),
    "prelu": prelu,
    "softmax": elementwise(dim=-1),
    "log_softmax": elementwise(dim=-1),
    "glu": elementwise(dim=-1),
    "dropout": elementwise(p=0.5),
    "dropout1d": line(p=0.5),
    **dict.fromkeys(("dropout2d", "dropout3d"), image(p=0.5)),
    "alpha_dropout": elementwise(p=0.5, training=True),
    "feature_alpha_dropout": image(p=0.5, training=True),
    "embedding": embedding(),
    "embedding_padding_freq": embedding(padding_idx=0, scale_grad_by_freq=True),
    "embedding_bag": embedding_bag(),
    "embedding_bag_freq": embedding_bag(mode="sum", scale_grad_by_freq=True),
    **dict.fromkeys(("mse_loss", "l1_loss", "huber_loss"), loss(randn, TARGET)),
    "hinge_loss": loss(signs, TARGET),
    **dict.fromkeys(("multi_margin_loss", "cross_entropy", "nll_loss"), loss(classes)),
    "cross_entropy_probabilities": loss(
        lambda rows, cols: torch.rand(rows, cols).softmax(-1), TARGET
    ),
    "binary_cross_entropy_with_logits": loss(lambda rows, cols: torch.rand(rows, cols), TARGET),
    "conv1d": conv(1),
    "conv2d": conv(2),
    "max_pool2d": image(kernel_size=2),
    "avg_pool2d": image(kernel_size=3, stride=2, padding=1),
    "adaptive_avg_pool2d": image(output_size=1),
    "max_pool1d": line(kernel_size=2),
    "avg_pool1d": line(kernel_size=3, stride=2, padding=1),
    "adaptive_avg_pool1d": line(output_size=1),
    "adaptive_max_pool1d": line(output_size=1),
    "adaptive_max_pool2d": image(output_size=1),
    "linear_relu": linear,
    "linear_gelu": linear,
    "linear_cross_entropy": linear_cross_entropy(),
    "linear_cross_entropy_none": linear_cross_entropy(reduction="none"),
    "linear_cross_entropy_options": linear_cross_entropy(
        options=torch.nn.LinearCrossEntropyOptions()
    ),
    "scaled_dot_product_attention": attention(),
    "scaled_dot_product_attention_dropout": attention(dropout_p=0.1),
    "scaled_dot_product_attention_blocks": attention(is_causal=True),
    "apply_rotary": rotary,
    **dict.fromkeys(("swiglu", "geglu", "geglu_tanh"), gate),
    **dict.fromkeys(("add_rms_norm", "add_layer_norm"), add_norm),
    "batch_norm": batch_norm,
    "_weight_norm": lambda size: Sample(size, (randn(*MATRIX[size]), randn(MATRIX[size][0], 1))),
    "layer_norm": normalized("weight", "bias"),
    "rms_norm": normalized("weight"),
    "group_norm": group_norm,
    **dict.fromkeys(("abs_sum", "half_square_sum"), elementwise()),
    "hard_concrete": hard_concrete,
    "expected_l0": elementwise(shift=-1.6),
    "masked_weight": loss(lambda rows, cols: (torch.rand(rows, cols) < 0.5).float(), TARGET),
    **elementary_makers(MATRIX, IMAGE),
}


def make(name: str, size: str) -> Sample:
    """The seeded benchmark sample of op ``name`` at ``size`` (``KeyError`` if none is written)."""
    if name not in MAKERS:
        raise KeyError(f"no benchmark input maker for registry op {name!r} in {__name__}.MAKERS")
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return MAKERS[name](size)


__all__ = ["ATTENTION", "IMAGE", "MAKERS", "MATRIX", "SIZES", "Maker", "make"]
