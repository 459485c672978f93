"""manualgrad.nn.init: torch's values for the same generator, derived moments, torch's errors."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from manualgrad.nn import init

SHAPES = [(300, 200), (50, 1000), (64, 32, 3, 3)]

# (name, kwargs): every sampling initialiser torch draws the same way as manualgrad.
SAME_SAMPLING = [
    ("uniform_", {}),
    ("uniform_", {"a": -3.0, "b": 0.5}),
    ("normal_", {}),
    ("normal_", {"mean": 2.0, "std": 0.3}),
    ("xavier_uniform_", {}),
    ("xavier_uniform_", {"gain": 5 / 3}),
    ("xavier_normal_", {"gain": 2.0}),
    ("kaiming_uniform_", {}),
    ("kaiming_uniform_", {"a": math.sqrt(5)}),
    ("kaiming_uniform_", {"mode": "fan_out", "nonlinearity": "relu"}),
    ("kaiming_normal_", {"a": 0.2, "mode": "FAN_IN"}),
    ("kaiming_normal_", {"mode": "fan_out", "nonlinearity": "tanh"}),
    ("orthogonal_", {}),
    ("orthogonal_", {"gain": 0.5}),
]


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _gain(kwargs: dict) -> float:
    """Recomputed here from the derivation, not from init.calculate_gain."""
    nonlinearity = kwargs.get("nonlinearity", "leaky_relu")
    slope = kwargs.get("a", 0.0)
    return {"leaky_relu": math.sqrt(2 / (1 + slope**2)), "relu": math.sqrt(2), "tanh": 5 / 3}[
        nonlinearity
    ]


def _derived_moments(name: str, kwargs: dict, shape: tuple[int, ...]) -> tuple[float, float]:
    """(mean, variance) the docstrings derive, for tensors of ``shape``."""
    fan_in, fan_out = _fans(shape)
    if name == "uniform_":
        a, b = kwargs.get("a", 0.0), kwargs.get("b", 1.0)
        return (a + b) / 2, (b - a) ** 2 / 12
    if name == "normal_":
        return kwargs.get("mean", 0.0), kwargs.get("std", 1.0) ** 2
    if name.startswith("xavier"):
        return 0.0, kwargs.get("gain", 1.0) ** 2 * 2 / (fan_in + fan_out)
    if name.startswith("kaiming"):
        fan = fan_in if kwargs.get("mode", "fan_in").lower() == "fan_in" else fan_out
        return 0.0, _gain(kwargs) ** 2 / fan
    raise AssertionError(name)


@pytest.mark.parametrize("shape", [(5, 3), (3, 7), (4, 2, 3, 3), (1, 1)])
@pytest.mark.parametrize(("name", "kwargs"), SAME_SAMPLING)
def test_identical_to_torch_with_same_generator(name, kwargs, shape):
    ours = getattr(init, name)(torch.empty(shape), **kwargs, generator=_gen(7))
    theirs = getattr(torch.nn.init, name)(torch.empty(shape), **kwargs, generator=_gen(7))
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize(("name", "kwargs"), SAME_SAMPLING[::3])
def test_identical_to_torch_with_global_seed(name, kwargs):
    torch.manual_seed(3)
    ours = getattr(init, name)(torch.empty(6, 4, dtype=torch.float64), **kwargs)
    torch.manual_seed(3)
    theirs = getattr(torch.nn.init, name)(torch.empty(6, 4, dtype=torch.float64), **kwargs)
    assert torch.equal(ours, theirs)


def test_trunc_normal_draws_differently_from_torch_but_stays_in_bounds():
    ours = init.trunc_normal_(torch.empty(1000), generator=_gen(0))
    theirs = torch.nn.init.trunc_normal_(torch.empty(1000), generator=_gen(0))
    assert not torch.equal(ours, theirs)  # documented: inverse CDF vs torch's rejection sampler
    assert ours.min() >= -2 and ours.max() <= 2


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _assert_moments(sample: torch.Tensor, mean: float, var: float, kurtosis: float) -> None:
    """Sample mean and variance within 5 standard errors of (mean, var).

    SE(mean) = √(var/n), SE(variance) = var · √((κ − 1)/n) for a distribution of kurtosis κ.
    """
    x = sample.double().flatten()
    n = x.numel()
    assert abs(x.mean().item() - mean) < 5 * math.sqrt(var / n)
    assert abs(x.var().item() - var) < 5 * var * math.sqrt((kurtosis - 1) / n)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("name", "kwargs"), [(n, k) for n, k in SAME_SAMPLING if not n.startswith("orthogonal")]
)
def test_sample_moments_match_derivation(name, kwargs, shape):
    sample = getattr(init, name)(torch.empty(shape), **kwargs, generator=_gen(11))
    mean, var = _derived_moments(name, kwargs, shape)
    _assert_moments(sample, mean, var, kurtosis=1.8 if "uniform" in name else 3.0)


@pytest.mark.parametrize(
    ("mean", "std", "a", "b"), [(0.0, 1.0, -2.0, 2.0), (1.0, 0.5, 0.0, 3.0), (0.0, 2.0, -1.0, 1.0)]
)
def test_trunc_normal_moments_match_derivation(mean, std, a, b):
    sample = init.trunc_normal_(torch.empty(200, 300), mean, std, a, b, generator=_gen(5))
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = [math.exp(-(t**2) / 2) / math.sqrt(2 * math.pi) for t in (alpha, beta)]
    z = 0.5 * (math.erf(beta / math.sqrt(2)) - math.erf(alpha / math.sqrt(2)))
    shift = (pdf[0] - pdf[1]) / z
    var = std**2 * (1 + (alpha * pdf[0] - beta * pdf[1]) / z - shift**2)
    assert sample.min() >= a and sample.max() <= b
    _assert_moments(sample, mean + std * shift, var, kurtosis=3.0)


@pytest.mark.parametrize("shape", [(6, 6), (8, 3), (3, 8), (4, 2, 3)])
@pytest.mark.parametrize("gain", [1.0, 1.5])
def test_orthogonal_rows_or_columns_orthonormal(shape, gain):
    w = init.orthogonal_(torch.empty(shape, dtype=torch.float64), gain=gain).reshape(shape[0], -1)
    small = min(w.shape)
    gram = w @ w.T if w.shape[0] == small else w.T @ w
    torch.testing.assert_close(gram, gain**2 * torch.eye(small, dtype=torch.float64))
    assert math.isclose(w.pow(2).mean().item(), gain**2 / max(w.shape), rel_tol=1e-12)


def test_constant_zeros_ones():
    assert torch.equal(init.constant_(torch.empty(3, 2), 0.25), torch.full((3, 2), 0.25))
    assert torch.equal(init.zeros_(torch.empty(4)), torch.zeros(4))
    assert torch.equal(init.ones_(torch.empty(2, 5)), torch.ones(2, 5))


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [*SAME_SAMPLING[::2], ("trunc_normal_", {}), ("constant_", {"val": 1.0}), ("zeros_", {})],
)
def test_fills_a_parameter_in_place_without_recording_autograd(name, kwargs):
    parameter = torch.nn.Parameter(torch.empty(4, 3))
    out = getattr(init, name)(parameter, **kwargs)
    assert out is parameter and parameter.grad_fn is None and parameter.requires_grad


@pytest.mark.parametrize(
    "nonlinearity",
    ["linear", "conv1d", "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"],
)
@pytest.mark.parametrize("param", [None, 0.2, 1])
def test_calculate_gain_equals_torch(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == torch.nn.init.calculate_gain(
        nonlinearity, param
    )


BAD_CALLS = [
    ("xavier_uniform_", (torch.empty(5),), {}),
    ("xavier_normal_", (torch.empty(()),), {}),
    ("kaiming_uniform_", (torch.empty(5),), {}),
    ("kaiming_normal_", (torch.empty(3, 4),), {"mode": "fan_avg"}),
    ("kaiming_uniform_", (torch.empty(3, 4),), {"nonlinearity": "swish"}),
    ("kaiming_normal_", (torch.empty(3, 4),), {"a": True}),
    ("calculate_gain", ("leaky_relu", "0.1"), {}),
    ("calculate_gain", ("softmax",), {}),
    ("orthogonal_", (torch.empty(4),), {}),
    ("xavier_uniform_", (torch.empty(0, 0),), {}),
]


@pytest.mark.parametrize(("name", "args", "kwargs"), BAD_CALLS)
def test_bad_input_raises_like_torch(name, args, kwargs):
    with pytest.raises(Exception) as theirs:
        getattr(torch.nn.init, name)(*args, **kwargs)
    with pytest.raises(theirs.type) as ours:
        getattr(init, name)(*args, **kwargs)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("name", ["kaiming_uniform_", "kaiming_normal_"])
def test_zero_element_kaiming_warns_like_torch(name):
    with pytest.warns(UserWarning, match="zero-element tensors is a no-op"):
        getattr(init, name)(torch.empty(0, 3))


def test_trunc_normal_warns_like_torch_for_far_mean():
    with pytest.warns(UserWarning, match="mean is more than 2 std"):
        init.trunc_normal_(torch.empty(10), mean=5.0, std=1.0, a=-1.0, b=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        init.trunc_normal_(torch.empty(10))


def test_fan_in_and_fan_out():
    assert init.fan_in_and_fan_out(torch.empty(16, 8, 3, 5)) == (8 * 15, 16 * 15)
    assert init._calculate_fan_in_and_fan_out(torch.empty(7, 2)) == (2, 7)


def _second_moment_ratio(initialiser, activation, depth: int = 10, width: int = 256) -> float:
    """E[h_depth²] / E[h_0²] through ``depth`` bias-free layers of ``activation`` ∘ linear."""
    gen = _gen(0)
    h0 = torch.randn(2048, width, generator=gen, dtype=torch.float64)
    h = h0
    for _ in range(depth):
        w = initialiser(torch.empty(width, width, dtype=torch.float64), generator=gen)
        h = activation(h) @ w.T
    return h.pow(2).mean().item() / h0.pow(2).mean().item()


def test_xavier_keeps_variance_of_a_linear_stack():
    ratio = _second_moment_ratio(init.xavier_normal_, lambda h: h)
    assert 0.7 < ratio < 1.4


def test_he_keeps_variance_through_relu_and_xavier_halves_it_per_layer():
    he = _second_moment_ratio(
        lambda w, generator: init.kaiming_normal_(w, nonlinearity="relu", generator=generator),
        torch.relu,
    )
    xavier = _second_moment_ratio(init.xavier_normal_, torch.relu)
    assert 0.7 < he < 1.4
    assert 0.7 < xavier * 2**10 < 1.4  # each ReLU layer keeps only half: (½)¹⁰
