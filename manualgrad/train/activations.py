"""The activation catalogue: one line per activation, the only place its traits are written.

Derived from it (so adding an activation is one line here, after its Function, module and
registry entry):

- ``manualgrad train --activation`` choices (:data:`TRAIN_CHOICES`), read without torch so the
  command parses its arguments before importing it;
- the model factory (:func:`manualgrad.train.model.activation`, ``--init auto`` and the
  init gain);
- the benchmark inputs of the element-wise ops (:mod:`manualgrad.bench.inputs`);
- the ``inplace=True`` tests (``tests/test_activation_options.py``).

This module imports nothing but the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Activation:
    """One activation.

    ``name``: the ``--activation`` choice (``train=False``: not offered there).
    ``module``: the ``manualgrad.nn`` class name, built with ``kwargs`` (and, when
    ``per_channel``, ``num_parameters`` = the layer width).
    ``op``: the registry op (``manualgrad.testing``) computing it, ``None`` for the identity;
    ``elementwise``: its benchmark input is one (rows, cols) tensor and no parameter.
    ``relu_family``: ``--init auto`` picks He (Kaiming) init for it, else Xavier.
    ``gain``: ``torch.nn.init.calculate_gain``'s name for the init's gain (the ReLU family
    without a gain of its own uses ReLU's).
    ``inplace``: the module and functional op take torch's ``inplace`` flag.
    """

    name: str
    module: str
    op: str | None
    kwargs: dict[str, Any] = field(default_factory=dict)
    relu_family: bool = False
    gain: str = "linear"
    inplace: bool = False
    per_channel: bool = False
    train: bool = True

    @property
    def elementwise(self) -> bool:
        """Whether the op maps one tensor to one tensor with no parameter."""
        return self.op is not None and not self.per_channel


CATALOGUE: tuple[Activation, ...] = (
    Activation("relu", "ReLU", "relu", relu_family=True, gain="relu", inplace=True),
    Activation(
        "leaky_relu", "LeakyReLU", "leaky_relu", relu_family=True, gain="leaky_relu", inplace=True
    ),
    Activation("prelu", "PReLU", "prelu", relu_family=True, gain="relu", per_channel=True),
    Activation("elu", "ELU", "elu", relu_family=True, gain="relu", inplace=True),
    Activation("gelu", "GELU", "gelu", relu_family=True, gain="relu"),
    Activation("silu", "SiLU", "silu", relu_family=True, gain="relu", inplace=True),
    Activation("selu", "SELU", "selu", gain="selu", inplace=True),
    Activation("celu", "CELU", "celu", relu_family=True, gain="relu", inplace=True),
    Activation("mish", "Mish", "mish", relu_family=True, gain="relu", inplace=True),
    Activation("hardswish", "Hardswish", "hardswish", relu_family=True, gain="relu", inplace=True),
    Activation("relu6", "ReLU6", "relu6", relu_family=True, gain="relu", inplace=True),
    Activation("hardsigmoid", "Hardsigmoid", "hardsigmoid", inplace=True, train=False),
    Activation("logsigmoid", "LogSigmoid", "logsigmoid", train=False),
    Activation("softplus", "Softplus", "softplus", train=False),
    Activation("sigmoid", "Sigmoid", "sigmoid", gain="sigmoid"),
    Activation("tanh", "Tanh", "tanh", gain="tanh"),
    Activation("hardtanh", "Hardtanh", "hardtanh", inplace=True, train=False),
    Activation("step", "Step", "step", {"straight_through": False}),
    Activation("step-ste", "Step", "step_straight_through", {"straight_through": True}),
    Activation("linear", "Identity", None),
)

BY_NAME: dict[str, Activation] = {a.name: a for a in CATALOGUE}
TRAIN_CHOICES: tuple[str, ...] = tuple(a.name for a in CATALOGUE if a.train)

__all__ = ["BY_NAME", "CATALOGUE", "TRAIN_CHOICES", "Activation"]
