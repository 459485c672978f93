"""Registry entries (see manualgrad.testing.registry): dropout.

Dropout is random: both the op and its torch reference run under a freshly seeded RNG (forked,
so the global stream is untouched), hence draw the same mask; gradcheck sees one fixed mask.
"""

import torch
import torch.nn.functional as TF

import manualgrad.functional as F
import manualgrad.nn as mnn
from manualgrad.testing.registry import ErrorCase, ModuleInfo, OpInfo, Sample, tensor


def seeded(fn, seed=0):
    """``fn`` run under ``torch.manual_seed(seed)`` in a forked RNG state."""

    def call(*args, **kwargs):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return fn(*args, **kwargs)

    call.__name__ = getattr(fn, "__name__", "seeded")
    return call


def dropout_samples(dtype):
    yield Sample("regular", (tensor(4, 5, dtype=dtype),), {"p": 0.5})
    yield Sample("p0.2", (tensor(3, 7, dtype=dtype),), {"p": 0.2})
    yield Sample("p0", (tensor(3, 4, dtype=dtype),), {"p": 0.0})
    yield Sample("p1", (tensor(3, 4, dtype=dtype),), {"p": 1.0})
    yield Sample("eval", (tensor(3, 4, dtype=dtype),), {"p": 0.5, "training": False})
    yield Sample("empty", (tensor(0, 3, dtype=dtype),), {"p": 0.5})
    yield Sample("size1", (tensor(1, dtype=dtype),), {"p": 0.5})
    yield Sample("scalar", (tensor(dtype=dtype),), {"p": 0.1})
    yield Sample(
        "noncontiguous",
        (tensor(2, 3, 4, dtype=dtype, noncontiguous=True),),
        {"p": 0.4},
        noncontiguous_grad=True,
    )


def dropout_errors():
    for p in (-0.1, 1.5):
        yield ErrorCase((torch.randn(3),), {"p": p}, ValueError, "between 0 and 1, but got")


def _variant_samples(shapes, kwargs):
    """Samples of a dropout variant: one per input shape, plus p = 1, eval and non-contiguous."""

    def samples(dtype):
        for shape in shapes:
            yield Sample(
                f"shape{len(shape)}d", (tensor(*shape, dtype=dtype),), {"p": 0.4, **kwargs}
            )
        yield Sample("p1", (tensor(*shapes[0], dtype=dtype),), {"p": 1.0, **kwargs})
        yield Sample("p0", (tensor(*shapes[0], dtype=dtype),), {"p": 0.0, **kwargs})
        yield Sample("eval", (tensor(*shapes[0], dtype=dtype),), {"p": 0.5, "training": False})
        yield Sample("empty", (tensor(0, *shapes[0][1:], dtype=dtype),), {"p": 0.5, **kwargs})
        yield Sample(
            "noncontiguous",
            (tensor(*shapes[0], dtype=dtype, noncontiguous=True),),
            {"p": 0.3, **kwargs},
            noncontiguous_grad=True,
        )

    return samples


VARIANTS = [
    ("dropout1d", F.DropoutFunction, [(3, 4, 5), (4, 5)], {}),
    ("dropout2d", F.DropoutFunction, [(3, 4, 5, 2)], {}),
    ("dropout3d", F.DropoutFunction, [(2, 3, 4, 2, 2), (3, 4, 2, 2)], {}),
    ("alpha_dropout", F.AlphaDropoutFunction, [(4, 5), (2, 3, 4)], {"training": True}),
    ("feature_alpha_dropout", F.AlphaDropoutFunction, [(3, 4, 5)], {"training": True}),
]

OPS = [
    # vmap/compile: the op draws random numbers (covered in tests/test_dropout.py instead).
    OpInfo(
        "dropout",
        seeded(F.dropout),
        seeded(TF.dropout),
        F.DropoutFunction,
        dropout_samples,
        dropout_errors,
        vmap=False,
    ),
    *(
        OpInfo(
            name,
            seeded(getattr(F, name)),
            seeded(getattr(TF, name)),
            function,
            _variant_samples(shapes, kwargs),
            dropout_errors,
            vmap=False,
        )
        for name, function, shapes, kwargs in VARIANTS
    ),
]


def seeded_module(cls):
    """A subclass of ``cls``, with the same name (and so the same repr), seeding its forward."""

    def forward(self, *args, **kwargs):
        return seeded(cls.forward)(self, *args, **kwargs)

    return type(cls.__name__, (cls,), {"forward": forward})


MODULES = [
    ModuleInfo(
        "Dropout",
        seeded_module(mnn.Dropout),
        seeded_module(torch.nn.Dropout),
        [{}, {"p": 0.2}],
        lambda kw, dtype: (tensor(4, 5, dtype=dtype),),
    ),
    *(
        ModuleInfo(
            name,
            seeded_module(getattr(mnn, name)),
            seeded_module(getattr(torch.nn, name)),
            [{}, {"p": 0.2}],
            lambda kw, dtype, shape=shape: (tensor(*shape, dtype=dtype),),
        )
        for name, shape in [
            ("Dropout1d", (3, 4, 5)),
            ("Dropout2d", (2, 3, 4, 5)),
            ("Dropout3d", (2, 3, 4, 2, 2)),
            ("AlphaDropout", (4, 5)),
            ("FeatureAlphaDropout", (3, 4, 5)),
        ]
    ),
]
