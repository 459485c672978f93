"""conv_transpose1d/2d/3d, conv3d, interpolate, normalize and cosine_similarity beyond the
registry's generic properties: option grids and edge cases against torch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF

import manualgrad.functional as F


def _assert_same_as_torch(name, *args, **kwargs):
    """Outputs and the gradient of every floating arg equal torch's (float64)."""
    results = []
    for op in (getattr(F, name), getattr(TF, name)):
        leaves = [
            a.detach().clone().requires_grad_() if isinstance(a, torch.Tensor) else a for a in args
        ]
        output = op(*leaves, **kwargs)
        grad = torch.linspace(-1, 1, output.numel(), dtype=output.dtype).reshape(output.shape)
        tensors = [a for a in leaves if isinstance(a, torch.Tensor)]
        results.append((output.detach(), torch.autograd.grad(output, tensors, grad)))
    (ours, our_grads), (theirs, their_grads) = results
    torch.testing.assert_close(ours, theirs)
    for a, b in zip(our_grads, their_grads, strict=True):
        torch.testing.assert_close(a, b)


def _randn(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64)


@pytest.mark.parametrize(
    "options",
    [{}, {"stride": 2}, {"stride": 3, "padding": 1, "output_padding": 2},
     {"stride": (2, 1), "dilation": (1, 2), "output_padding": (1, 0)},
     {"groups": 2, "padding": (0, 1)}],
)  # fmt: skip
def test_conv_transpose2d_options_match_torch(options):
    out_channels = 3 * options.get("groups", 1)
    weight = _randn(4, 3, 3, 2)
    _assert_same_as_torch(
        "conv_transpose2d", _randn(2, 4, 3, 4), weight, _randn(out_channels), **options
    )


def test_conv_transpose1d_3d_and_conv3d_match_torch():
    _assert_same_as_torch("conv_transpose1d", _randn(4, 5), _randn(4, 2, 3), None, stride=2)
    _assert_same_as_torch(
        "conv_transpose3d", _randn(1, 2, 2, 3, 2), _randn(2, 3, 2, 2, 2), _randn(3), stride=2
    )
    _assert_same_as_torch(
        "conv3d", _randn(2, 3, 4, 4, 3), _randn(2, 3, 3, 3, 1), None, padding="same"
    )


@pytest.mark.parametrize(
    ("shape", "options"),
    [((1, 2, 7), {"size": 12}), ((1, 2, 7), {"scale_factor": 0.45}),
     ((1, 2, 5, 6), {"scale_factor": (1.5, 0.7), "mode": "nearest-exact"}),
     ((2, 1, 5, 6), {"size": (9, 4), "mode": "bilinear"}),
     ((2, 1, 5, 6), {"size": (9, 4), "mode": "bilinear", "align_corners": True}),
     ((1, 2, 7), {"scale_factor": 1.3, "mode": "linear", "recompute_scale_factor": True}),
     ((1, 1, 3, 2, 4), {"size": (4, 4, 3), "mode": "trilinear"}),
     ((1, 2, 6, 6), {"size": (3, 2), "mode": "area"})],
)  # fmt: skip
def test_interpolate_modes_match_torch(shape, options):
    _assert_same_as_torch("interpolate", _randn(*shape), **options)


def test_normalize_and_cosine_similarity_at_the_eps_clamp_match_torch():
    tiny = torch.tensor([[1e-13, 0.0], [3.0, -4.0]], dtype=torch.float64)
    _assert_same_as_torch("normalize", tiny)
    _assert_same_as_torch("normalize", tiny, p=1.0, dim=0, eps=1e-3)
    other = torch.tensor([[1.0, 2.0], [0.5, 0.5]], dtype=torch.float64)
    _assert_same_as_torch("cosine_similarity", tiny * 1e4, other)
    _assert_same_as_torch("cosine_similarity", tiny, other, dim=0, eps=1e-6)
