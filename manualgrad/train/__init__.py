"""Training: the parts behind ``manualgrad train`` (its command line is
:mod:`manualgrad.commands.train`).

config.py       the typed :class:`TrainConfig` (saved as ``config.json``)
data.py         digits, MNIST (IDX reader), xor, spirals; seeded split, standardisation
model.py        the MLP and loss built from manualgrad modules, ``--init``
optimizers.py   ``--optimizer`` (any manualgrad.optim class) and ``--scheduler``
trainer.py      the loop: forward → backprop → update → repeat until convergence or budget
diagnostics.py  TensorBoard tags: per-layer gradient/weight/update statistics, histograms,
                ``check/max_grad_diff`` against the torch twin, ...
checkpoint.py   atomic ``last.pt``/``best.pt``, RNG states, ``weights_only`` loading
early_stopping.py  ``--tol`` convergence and ``--early-stopping``
distributed.py  torchrun / DDP on gloo, DistributedSampler, rank-0-only logging
activations.py  the activation catalogue behind ``--activation`` (torch-free)

``TrainConfig``, ``Trainer`` and ``TrainResult`` are imported on first use, so the torch-free
modules (config, activations) load without torch.
"""

from __future__ import annotations

from importlib import import_module

_LAZY = {
    "TrainConfig": "manualgrad.train.config",
    "Trainer": "manualgrad.train.trainer",
    "TrainResult": "manualgrad.train.trainer",
}


def __getattr__(name: str) -> object:
    """Import ``TrainConfig``, ``Trainer`` or ``TrainResult`` on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module 'manualgrad.train' has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


__all__ = ["TrainConfig", "TrainResult", "Trainer"]
