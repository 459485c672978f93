"""Registry entries (see manualgrad.testing.registry): the fused transformer ops — rotary
embedding, SwiGLU/GeGLU gates, RMSNorm/LayerNorm with the residual add. References are the
unfused torch compositions (HF transformers' ``rotate_half`` convention for rotary)."""

import torch
import torch.nn.functional as TF

import manualgrad.functional as F
from manualgrad.testing.registry import ErrorCase, OpInfo, Sample, tensor


def hf_rotate_half(x):
    """HF transformers' ``rotate_half``: cat(−x₂, x₁)."""
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def rotary_reference(input, cos, sin):
    """HF's ``q * cos + rotate_half(q) * sin``."""
    return input * cos + hf_rotate_half(input) * sin


def rotary_samples(dtype):
    yield Sample(
        "regular",
        (tensor(2, 3, 5, 4, dtype=dtype), tensor(5, 4, dtype=dtype), tensor(5, 4, dtype=dtype)),
    )
    yield Sample(
        "constant_tables",
        (tensor(1, 2, 3, 6, dtype=dtype), tensor(3, 6, dtype=dtype), tensor(3, 6, dtype=dtype)),
        constant=frozenset({1, 2}),
    )
    yield Sample(
        "empty",
        (tensor(0, 2, 3, 4, dtype=dtype), tensor(3, 4, dtype=dtype), tensor(3, 4, dtype=dtype)),
    )
    yield Sample(
        "noncontiguous",
        (
            tensor(2, 3, 4, dtype=dtype, noncontiguous=True),
            tensor(3, 4, dtype=dtype),
            tensor(3, 4, dtype=dtype),
        ),
        noncontiguous_grad=True,
    )


def rotary_errors():
    x = tensor(2, 3, 5, dtype=torch.float32)
    yield ErrorCase(
        (x, tensor(3, 5), tensor(3, 5)), {}, ValueError, "input's last dim must be even"
    )


def gate_samples(dtype):
    yield Sample("regular", (tensor(3, 6, dtype=dtype), tensor(3, 6, dtype=dtype)))
    yield Sample("broadcast", (tensor(2, 3, 4, dtype=dtype), tensor(3, 4, dtype=dtype)))
    yield Sample("empty", (tensor(0, 4, dtype=dtype), tensor(0, 4, dtype=dtype)))
    yield Sample(
        "noncontiguous",
        (
            tensor(2, 3, 4, dtype=dtype, noncontiguous=True),
            tensor(2, 3, 4, dtype=dtype, noncontiguous=True),
        ),
        noncontiguous_grad=True,
    )


def add_norm_samples(with_bias):
    def samples(dtype):
        def params(*shape):
            return tuple(tensor(*shape, dtype=dtype) for _ in range(2 if with_bias else 1))

        yield Sample(
            "regular", (tensor(3, 6, dtype=dtype), tensor(3, 6, dtype=dtype), (6,), *params(6))
        )
        yield Sample(
            "two_dims",
            (tensor(2, 3, 4, dtype=dtype), tensor(2, 3, 4, dtype=dtype), (3, 4), *params(3, 4)),
        )
        yield Sample(
            "broadcast_residual",
            (tensor(2, 3, 5, dtype=dtype), tensor(3, 5, dtype=dtype), (5,), *params(5)),
        )
        yield Sample(
            "empty_rows", (tensor(0, 4, dtype=dtype), tensor(0, 4, dtype=dtype), (4,), *params(4))
        )

    return samples


def add_norm_errors():
    x = tensor(3, 6, dtype=torch.float32)
    yield ErrorCase((x, x, (5,)), {}, RuntimeError, "expected input with shape")
    yield ErrorCase(
        (x, x, (6,), tensor(5)), {}, RuntimeError, "Expected weight to be of same shape"
    )
    yield ErrorCase((x, tensor(2, 6)), {"normalized_shape": 6}, RuntimeError, "broadcast")


def _add_then(norm):
    def reference(input, residual, normalized_shape, *params, **kwargs):
        total = input + residual
        return norm(total, normalized_shape, *params, **kwargs), total

    reference.__name__ = f"add_{norm.__name__}"
    return reference


OPS = [
    OpInfo(
        "apply_rotary",
        F.apply_rotary,
        rotary_reference,
        F.RotaryFunction,
        rotary_samples,
        rotary_errors,
    ),
    OpInfo("swiglu", F.swiglu, lambda a, b: TF.silu(a) * b, F.GatedFunction, gate_samples),
    OpInfo("geglu", F.geglu, lambda a, b: TF.gelu(a) * b, F.GatedFunction, gate_samples),
    OpInfo(
        "geglu_tanh",
        lambda a, b: F.geglu(a, b, approximate="tanh"),
        lambda a, b: TF.gelu(a, approximate="tanh") * b,
        F.GatedFunction,
        gate_samples,
    ),
    OpInfo(
        "add_rms_norm",
        F.add_rms_norm,
        _add_then(TF.rms_norm),
        F.AddNormFunction,
        add_norm_samples(with_bias=False),
        add_norm_errors,
    ),
    OpInfo(
        "add_layer_norm",
        F.add_layer_norm,
        _add_then(TF.layer_norm),
        F.AddNormFunction,
        add_norm_samples(with_bias=True),
        add_norm_errors,
    ),
]

MODULES = []
