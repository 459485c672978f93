"""Registry entries (see manualgrad.testing.registry): element-wise activations."""

import torch
import torch.nn.functional as TF

import manualgrad.functional as F
import manualgrad.nn as mnn
from manualgrad.testing.registry import ModuleInfo, OpInfo, elementwise_samples, tensor


def _activation_module(name, module, reference, kwargs=({},)):
    return ModuleInfo(
        name, module, reference, list(kwargs), lambda kw, dtype: (tensor(4, 5, dtype=dtype),)
    )


OPS = [
    OpInfo("relu", F.relu, TF.relu, F.ReLUFunction, elementwise_samples(), compile=True),
]

MODULES = [
    _activation_module("ReLU", mnn.ReLU, torch.nn.ReLU),
]
