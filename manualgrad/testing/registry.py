"""The registry's types and sample helpers: ``OpInfo`` (a Function), ``ModuleInfo`` (a module),
``OptimizerInfo`` (an optimizer), ``Sample``/``ErrorCase`` and the tensor makers.

The entries themselves live in :mod:`manualgrad.testing.entries`, one file per family, which
collects ``OPS``, ``MODULES`` and ``OPTIMIZERS`` (this module imports none of them, so an entry
file can be imported on its own). Adding a layer = a Function + a module + one entry in
``manualgrad/testing/entries/<family>.py``; adding an optimizer = its class + one entry in
``manualgrad/testing/entries/optimizers.py``.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.testing import make_tensor

SampleGenerator = Callable[[torch.dtype], Iterator["Sample"]]


@dataclass
class Sample:
    """One call: ``op(*args, **kwargs)``. Floating tensors in ``args`` are differentiable unless
    their index is in ``constant``. ``name`` says what the sample exercises."""

    name: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    constant: frozenset[int] = frozenset()
    noncontiguous_grad: bool = False

    def differentiable(self) -> list[int]:
        """Indices of the args that get a gradient."""
        return [
            i
            for i, a in enumerate(self.args)
            if isinstance(a, Tensor) and a.is_floating_point() and i not in self.constant
        ]

    def prepared(self, dtype: torch.dtype | None = None, only: int | None = None) -> list:
        """Fresh leaves (cast to ``dtype`` if given); ``only`` restricts requires_grad to one."""
        args = []
        for i, a in enumerate(self.args):
            if isinstance(a, Tensor):
                a = a.detach().clone() if a.is_contiguous() else _same_strides(a)
                if dtype is not None and a.is_floating_point():
                    a = a.to(dtype) if a.is_contiguous() else _same_strides(a.to(dtype))
                wanted = i in self.differentiable() and (only is None or only == i)
                a.requires_grad_(wanted)
            args.append(a)
        return args


def _same_strides(tensor: Tensor) -> Tensor:
    """A detached copy that keeps ``tensor``'s non-contiguous layout (transposed last dims)."""
    base = tensor.detach().transpose(-1, -2).contiguous().clone()
    return base.transpose(-1, -2)


@dataclass
class ErrorCase:
    """A bad call: ``op(*args, **kwargs)`` must raise ``error``, its message matching ``match``."""

    args: tuple
    kwargs: dict
    error: type[Exception]
    match: str


@dataclass
class OpInfo:
    """A manualgrad functional op, its torch reference and how to sample it."""

    name: str
    op: Callable[..., object]
    reference: Callable[..., object]
    function: type[torch.autograd.Function]
    samples: SampleGenerator
    errors: Callable[[], Iterator[ErrorCase]] | None = None
    gradcheck: bool = True
    gradgradcheck: bool = True  # False: first-order only (e.g. gradients saved as constants)
    vmap: bool = True
    compile: bool = False
    atol: float = 1e-5
    rtol: float = 1.3e-6
    saved_bytes_slack: float = 1.0

    def seeded_samples(self, dtype: torch.dtype) -> list[Sample]:
        """``samples(dtype)`` drawn from an RNG seeded by the op's name, so an op's samples do
        not change when entries are added before it (the global RNG state is left untouched)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(zlib.crc32(self.name.encode()))
            return list(self.samples(dtype))


@dataclass
class ModuleInfo:
    """A manualgrad module class, its torch twin, constructor kwargs and an input maker."""

    name: str
    module: type[torch.nn.Module]
    reference: type[torch.nn.Module]
    kwargs: list[dict]
    inputs: Callable[[dict, torch.dtype], tuple]
    atol: float = 1e-5
    rtol: float = 1.3e-6


def grid(**axes: list[Any]) -> list[dict[str, Any]]:
    """Every combination of the axes' values, as kwargs dicts."""
    names = list(axes)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*axes.values())]


def constructs(factory: Callable[..., Optimizer], kwargs: dict[str, Any]) -> bool:
    """Whether ``factory`` accepts the kwargs (a ``ValueError`` says it does not)."""
    try:
        factory([torch.zeros(1, requires_grad=True)], **kwargs)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class OptimizerInfo:
    """A manualgrad optimizer, the reference it is tested against and the kwargs to test with.

    ``reference`` is torch's twin (``torch.optim.X``), or, for an optimizer torch lacks, a
    factory ``reference(params, **kwargs)`` of an optimizer written in plain math from the
    documented update (see :mod:`manualgrad.testing.entries.optimizers`). The trajectory tests
    follow the reference step for step, over every configuration of :meth:`configs`; the
    signature, defaults, ``state_dict`` and error-message tests run against a torch twin only.

    Fields: ``axes`` the kwargs grid (the combinations the reference accepts are kept); ``rich``
    a configuration creating every state key; ``invalid`` kwargs torch rejects (ours must raise
    the same ``ValueError``); ``flags`` the compatibility flags torch accepts (``foreach``,
    ``fused``, ...); ``usual`` kwargs that train the digits MLP to 90 % within ``budget`` steps
    (``None``: too costly at that size, the optimizer's own tests check its convergence), also
    the configuration ``manualgrad bench optim`` times.
    """

    ours: type[Optimizer]
    reference: Callable[..., Optimizer]
    axes: dict[str, list[Any]] = field(default_factory=dict)
    rich: dict[str, Any] = field(default_factory=dict)
    invalid: list[dict[str, Any]] = field(default_factory=list)
    flags: tuple[str, ...] = ()
    usual: dict[str, Any] | None = field(default_factory=dict)
    budget: int = 60

    @property
    def name(self) -> str:
        """The optimizer's class name."""
        return self.ours.__name__

    @property
    def torch_twin(self) -> bool:
        """Whether the reference is torch.optim's class of the same name."""
        return self.reference is getattr(torch.optim, self.name, None)

    @property
    def steps_on_grads(self) -> bool:
        """Whether ``step()`` without a closure updates from ``p.grad`` (first-order methods),
        as opposed to needing a closure it evaluates one or more times."""
        return self.ours.closure_evaluations == 1 and not self.ours.second_order

    def make_reference(self, params: Any, **kwargs: Any) -> Optimizer:
        """The reference optimizer over ``params``: for a torch twin, its for-loop
        implementation (``foreach=False``) where torch has several."""
        loop = {"foreach": False} if "foreach" in self.flags else {}
        return self.reference(params, **loop, **kwargs)

    def configs(self) -> list[dict[str, Any]]:
        """The kwargs grid (the combinations the reference accepts), plus the rich config with a
        tensor lr."""
        combos = [kw for kw in grid(**self.axes) if constructs(self.reference, kw)]
        tensor_lr = dict(self.rich, lr=torch.tensor(self.rich.get("lr", 0.01)))
        return [*combos, tensor_lr]


def tensor(
    *shape: int,
    dtype: torch.dtype = torch.float64,
    low: float = -2,
    high: float = 2,
    noncontiguous: bool = False,
    exclude_zero: bool = False,
) -> Tensor:
    """A random tensor (torch.testing.make_tensor) — non-contiguous means transposed last dims."""
    if noncontiguous and len(shape) >= 2:
        flipped = (*shape[:-2], shape[-1], shape[-2])
        base = make_tensor(
            flipped, dtype=dtype, device="cpu", low=low, high=high, exclude_zero=exclude_zero
        )
        return base.transpose(-1, -2)
    return make_tensor(
        shape, dtype=dtype, device="cpu", low=low, high=high, exclude_zero=exclude_zero
    )


def elementwise_samples(low: float = -2, high: float = 2, **kwargs: object) -> SampleGenerator:
    """Regular, empty, size-1, 0-d and non-contiguous inputs for an element-wise op."""

    def samples(dtype: torch.dtype) -> Iterator[Sample]:
        def make(*shape: int, noncontiguous: bool = False) -> Tensor:
            return tensor(
                *shape,
                dtype=dtype,
                low=low,
                high=high,
                noncontiguous=noncontiguous,
                exclude_zero=True,
            )

        yield Sample("regular", (make(3, 4),), dict(kwargs))
        yield Sample("empty", (make(0, 3),), dict(kwargs))
        yield Sample("size1", (make(1),), dict(kwargs))
        yield Sample("scalar", (make(),), dict(kwargs))
        yield Sample(
            "noncontiguous",
            (make(2, 3, 4, noncontiguous=True),),
            dict(kwargs),
            noncontiguous_grad=True,
        )

    return samples
