"""Optimizers: torch.optim.Optimizer subclasses whose update rules are written out.

First order: :class:`SGD`, :class:`Adagrad`, :class:`Adadelta`, :class:`RMSprop`, :class:`Adam`,
:class:`AdamW` (same defaults, state keys and ``state_dict`` as torch.optim). Quasi-Newton:
:class:`LBFGS`. Second order, which torch lacks: :class:`Newton` and :class:`HessianFree`.
``lr_scheduler`` is torch's, and drives all of them.

Each class declares its traits (``default_lr``, ``second_order``, ``closure_evaluations``; see
:class:`manualgrad.optim._base.Traits`), which ``manualgrad train``, the experiments and the bench
read. Adding an optimizer: its file here, its name below, and its entry in
``manualgrad/testing/entries/optimizers.py``.
"""

from torch.optim import lr_scheduler

from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .lbfgs import LBFGS
from .newton import HessianFree, Newton
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = [
    "LBFGS",
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "HessianFree",
    "Newton",
    "RMSprop",
    "lr_scheduler",
]
