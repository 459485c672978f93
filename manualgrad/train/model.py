"""The network and the loss, built only from manualgrad layers.

``build_mlp`` stacks ``Linear → activation`` blocks named ``fc1, act1, fc2, act2, …, out`` (the
names appear in every TensorBoard tag). ``--init`` picks the weight initialiser; biases start at 0:

- ``he``     Kaiming normal, Var(W) = 2/fan_in (ReLU keeps half of the second moment);
- ``xavier`` Glorot uniform with the activation's gain, Var(W) = gain² · 2/(fan_in + fan_out);
- ``normal`` N(0, 0.01²): the classic "small random numbers", which starves deep nets of signal;
- ``zeros``  every hidden unit identical — the symmetry that random init exists to break;
- ``auto``   ``he`` for the ReLU family, ``xavier`` otherwise.

``build_loss`` returns the loss module and how targets are presented to it: class indices for
cross-entropy and multi-margin, one-hot vectors for MSE, ±1 one-vs-rest codes for hinge.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from itertools import pairwise

import torch
from torch import Tensor

from manualgrad import nn
from manualgrad.train.activations import BY_NAME


def activation(name: str, width: int) -> torch.nn.Module:
    """The manualgrad module for ``--activation name`` (its :data:`~manualgrad.train.activations.
    CATALOGUE` line; ``width`` sizes a per-channel activation's parameters, PReLU's slopes)."""
    entry = BY_NAME[name]
    kwargs = dict(entry.kwargs)
    if entry.per_channel:
        kwargs["num_parameters"] = width
    return getattr(nn, entry.module)(**kwargs)


def build_mlp(
    num_inputs: int, hidden: tuple[int, ...], num_outputs: int, act: str, init: str
) -> nn.Sequential:
    """``Linear(num_inputs, hidden[0]) → act → … → Linear(hidden[-1], num_outputs)``."""
    layers: OrderedDict[str, torch.nn.Module] = OrderedDict()
    widths = (num_inputs, *hidden)
    for i, (fan_in, fan_out) in enumerate(pairwise(widths), start=1):
        layers[f"fc{i}"] = nn.Linear(fan_in, fan_out)
        layers[f"act{i}"] = activation(act, fan_out)
    layers["out"] = nn.Linear(widths[-1], num_outputs)
    model = nn.Sequential(layers)
    initialize(model, act, init)
    return model


def initialize(model: torch.nn.Module, act: str, init: str) -> None:
    """Apply ``--init`` to every Linear weight (biases to zero)."""
    entry = BY_NAME[act]
    if init == "auto":
        init = "he" if entry.relu_family else "xavier"
    gain_name = entry.gain
    for module in model.modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        weight = module.weight
        if init == "he":
            nonlinearity = gain_name if gain_name in ("relu", "leaky_relu") else "relu"
            nn.init.kaiming_normal_(weight, a=0.01, nonlinearity=nonlinearity)
        elif init == "xavier":
            nn.init.xavier_uniform_(weight, gain=nn.init.calculate_gain(gain_name))
        elif init == "normal":
            nn.init.normal_(weight, 0.0, 0.01)
        else:
            nn.init.zeros_(weight)
        nn.init.zeros_(module.bias)


def build_loss(name: str, num_classes: int) -> tuple[torch.nn.Module, Callable[[Tensor], Tensor]]:
    """The manualgrad loss module for ``--loss name`` and the map from class indices to its
    target format."""
    if name == "cross_entropy":
        return nn.CrossEntropyLoss(), _identity
    if name == "multi_margin":
        return nn.MultiMarginLoss(), _identity
    if name == "mse":
        return nn.MSELoss(), lambda y: torch.nn.functional.one_hot(y, num_classes).float()
    return nn.HingeLoss(), lambda y: torch.nn.functional.one_hot(y, num_classes).float() * 2 - 1


def _identity(y: Tensor) -> Tensor:
    return y
