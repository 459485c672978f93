"""Training: ``manualgrad train`` and its parts.

config.py       the typed :class:`TrainConfig` (saved as ``config.json``)
data.py         digits, MNIST (IDX reader), xor, spirals; seeded split, standardisation
model.py        the MLP and loss built from manualgrad modules, ``--init``
optimizers.py   ``--optimizer`` (any manualgrad.optim class) and ``--scheduler``
trainer.py      the loop: forward → backprop → update → repeat until convergence or budget
diagnostics.py  TensorBoard tags: per-layer gradient/weight/update statistics, histograms, ...
twin.py         the equivalent torch.nn model and ``check/max_grad_diff``
checkpoint.py   atomic ``last.pt``/``best.pt``, RNG states, ``weights_only`` loading
early_stopping.py  ``--tol`` convergence and ``--early-stopping``
distributed.py  torchrun / DDP on gloo, DistributedSampler, rank-0-only logging
cli.py          argparse front end, exit statuses
"""

from manualgrad.train.config import TrainConfig
from manualgrad.train.trainer import Trainer, TrainResult

__all__ = ["TrainConfig", "TrainResult", "Trainer"]
