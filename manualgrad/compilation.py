"""``manualgrad.compile(model)``: the hand-derived backward passes, compiled by ``torch.compile``.

Every manualgrad op is a ``torch.autograd.Function`` written in the ``forward`` +
``setup_context`` form from plain tensor ops, which is what TorchDynamo can trace: it inlines the
Function's ``forward`` and ``backward`` into the graph, and AOTAutograd builds the backward graph
from *our* ``backward`` (not from torch's derivative formulas), so the compiled model computes
exactly the hand-derived gradients, with Inductor fusing the element-wise work of forward and
backward into a few kernels.

Usage::

    model = manualgrad.compile(model)              # torch.compile defaults (Inductor)
    loss = loss_fn(model(x), y); loss.backward()   # forward and backward both compiled
    optimizer.step()                               # stays eager (compile it separately if wanted)

The first call compiles (tens of seconds for Inductor on a small CPU); later calls with the same
shapes reuse the compiled graphs.
"""

from __future__ import annotations

from typing import Any

import torch


def compile(model: torch.nn.Module, **kwargs: Any) -> torch.nn.Module:
    """``torch.compile(model, **kwargs)``; the result runs forward and backward compiled.

    ``kwargs`` are ``torch.compile``'s own (``backend``, ``mode``, ``fullgraph``, ``dynamic``,
    ``options``); ``fullgraph=True`` checks that no manualgrad op breaks the graph. The returned
    module shares ``model``'s parameters, so optimizers built on either one keep working.
    """
    return torch.compile(model, **kwargs)


__all__ = ["compile"]
