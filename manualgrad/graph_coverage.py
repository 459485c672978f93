"""``manualgrad.coverage(model, *args, **kwargs)``: which backward nodes are hand-derived, read
from the autograd graph itself.

One forward runs (grad mode on); the graph is walked from its outputs through
``grad_fn.next_functions``, and every node is put in one of three kinds:

- **hand-derived**: the node of a manualgrad Function (its class, ``<Name>Backward``, has a
  ``_forward_cls`` defined in ``manualgrad``), or of its compiled twin (manualgrad/csrc/: a C++
  node, ``manualgrad::TwinNode<manualgrad::<Name>Twin>``); a twin's node is reported under
  its Python Function's name (:func:`node_name`), so a report reads the same on both paths;
- **view/cast**: a node that moves data and does no arithmetic (:data:`VIEW_NODES`, listed by
  name; ``AccumulateGrad`` at the leaves is one too); these are left out of every share;
- **native**: everything else, i.e. torch's own derivative formula.

Each node is attributed to the innermost module whose ``forward`` was running when the node was
created: forward pre/post hooks on every submodule record the autograd sequence number
(``torch._C._autograd._get_sequence_nr``, which numbers nodes as they are created) at entry and
exit, and a node's own ``_sequence_nr()`` falls in exactly one such interval. Nodes are counted
and weighed by their output elements (the sizes of the gradients they receive).
"""

from __future__ import annotations

import bisect
import functools
import importlib
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from manualgrad import _ext

# Backward nodes of ops that only move or reinterpret data (views, copies, dtype/device casts)
# and the leaves' gradient accumulators; names as torch prints them, without the overload digit.
VIEW_NODES = frozenset(
    {
        "AccumulateGrad",
        "AliasBackward",
        "AsStridedBackward",
        "CloneBackward",
        "ExpandBackward",
        "NarrowBackward",
        "PermuteBackward",
        "ReshapeAliasBackward",
        "SelectBackward",
        "SliceBackward",
        "SplitBackward",
        "SplitWithSizesBackward",
        "SqueezeBackward",
        "TBackward",
        "ToCopyBackward",
        "TransposeBackward",
        "UnbindBackward",
        "UnflattenBackward",
        "UnsafeSplitBackward",
        "UnsafeViewBackward",
        "UnsqueezeBackward",
        "ViewBackward",
        "ViewAsComplexBackward",
        "ViewAsRealBackward",
    }
)

_OVERLOAD = re.compile(r"\d+$")
# The node of a compiled twin (csrc/twin_function.h's TwinNode).
_TWIN_NODE = re.compile(r"manualgrad::TwinNode<manualgrad::(\w+)>")
# A twin's struct name → the Python Function it twins (``ReLUTwin`` ↔ ``ReLUFunction``), as
# module.qualname.
_TWIN_OF = {
    qualname.rsplit(".", 1)[-1].removesuffix("Function") + "Twin": qualname
    for qualname in _ext.TWINNED
}


@functools.cache
def _twinned(struct: str) -> type | None:
    """The Python Function the twin ``manualgrad::<struct>`` twins, or None."""
    qualname = _TWIN_OF.get(struct)
    if qualname is None:
        return None
    module, name = qualname.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def node_function(node: Any) -> type | None:
    """The ``autograd.Function`` whose derivation one autograd node runs: a Python Function's
    node gives its ``_forward_cls`` (manualgrad's or anyone's), a compiled twin's node
    (``TwinNode<manualgrad::LinearTwin>``) the manualgrad Function it twins (``LinearFunction``);
    None for a native node."""
    forward_cls = getattr(type(node), "_forward_cls", None)
    if forward_cls is not None:
        return forward_cls
    twin = _TWIN_NODE.fullmatch(node.name())
    return None if twin is None else _twinned(twin.group(1))


def node_name(node: Any) -> str:
    """The op name of one autograd node: its class name (``AddmmBackward0``,
    ``LinearFunctionBackward``); a compiled twin's node takes the name of its Python Function's
    node (``TwinNode<manualgrad::LinearTwin>`` → ``LinearFunctionBackward``), or keeps its C++
    name (``LinearTwin``) if it twins no Function in ``_ext``."""
    twin = _TWIN_NODE.fullmatch(node.name())
    if twin is None:
        return type(node).__name__
    function = _twinned(twin.group(1))
    return twin.group(1) if function is None else f"{function.__name__}Backward"


def node_kind(node: Any) -> str:
    """``"hand-derived"``, ``"view"`` or ``"native"`` for one autograd node (see the module
    docstring)."""
    forward_cls = getattr(type(node), "_forward_cls", None)
    if forward_cls is not None and forward_cls.__module__.startswith("manualgrad."):
        return "hand-derived"
    if _TWIN_NODE.fullmatch(node.name()):
        return "hand-derived"
    if _OVERLOAD.sub("", type(node).__name__) in VIEW_NODES:
        return "view"
    return "native"


@dataclass(frozen=True)
class Row:
    """One (module, op) group of native backward nodes: ``module`` is the qualified name of the
    innermost module that created them (``""`` is the model itself, ``"(outside)"`` a node
    created before the forward), ``op`` the node's class name."""

    module: str
    op: str
    nodes: int
    elements: int


@dataclass(frozen=True)
class Coverage:
    """The graph of one forward, counted (see the module docstring).

    ``native``: the native compute nodes grouped by (module, op), most nodes first;
    ``hand_derived``: the manualgrad nodes by op; ``views``: the view/cast nodes by op.
    Shares are over compute nodes (hand-derived + native); ``complete`` is True when there is
    no native compute node at all.
    """

    native: tuple[Row, ...]
    hand_derived: Mapping[str, tuple[int, int]]
    views: Mapping[str, int]

    @property
    def native_nodes(self) -> int:
        """How many native compute nodes the graph holds."""
        return sum(row.nodes for row in self.native)

    @property
    def hand_derived_nodes(self) -> int:
        """How many manualgrad nodes the graph holds."""
        return sum(nodes for nodes, _ in self.hand_derived.values())

    @property
    def share(self) -> float:
        """The hand-derived share of compute nodes (1.0 for a graph with none)."""
        total = self.hand_derived_nodes + self.native_nodes
        return self.hand_derived_nodes / total if total else 1.0

    @property
    def element_share(self) -> float:
        """The hand-derived share of compute nodes' output elements."""
        native = sum(row.elements for row in self.native)
        hand = sum(elements for _, elements in self.hand_derived.values())
        return hand / (hand + native) if hand + native else 1.0

    @property
    def complete(self) -> bool:
        """True when every compute node of the graph is hand-derived."""
        return not self.native

    def native_ops(self) -> Counter[str]:
        """Native compute nodes per op name."""
        counts: Counter[str] = Counter()
        for row in self.native:
            counts[row.op] += row.nodes
        return counts

    def __str__(self) -> str:
        compute = self.hand_derived_nodes + self.native_nodes
        lines = [
            f"{compute} compute nodes: {self.hand_derived_nodes} hand-derived ({self.share:.1%}), "
            f"{self.native_nodes} native; {self.element_share:.1%} of their output elements "
            f"hand-derived; {sum(self.views.values())} view/cast nodes not counted"
        ]
        if not self.native:
            return lines[0]
        width = max(len("module"), *(len(_label(row.module)) for row in self.native))
        op_width = max(len("native op"), *(len(row.op) for row in self.native))
        lines.append(
            f"{'module':<{width}}  {'native op':<{op_width}}  {'nodes':>5}  {'elements':>9}"
            f"  {'share':>6}"
        )
        lines += [
            f"{_label(row.module):<{width}}  {row.op:<{op_width}}  {row.nodes:>5}  "
            f"{row.elements:>9}  {row.nodes / compute:>6.1%}"
            for row in self.native
        ]
        return "\n".join(lines)


def _label(module: str) -> str:
    return module or "(model)"


class _Timeline:
    """Forward pre/post hooks on every submodule that record, in creation-sequence order, which
    module is innermost; a node's sequence number then names the module that created it."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.starts: list[int] = []  # sequence number at each enter/exit
        self.owners: list[str] = []  # innermost module from that point on
        self.stack: list[str] = []
        self.handles = []
        for name, module in model.named_modules():
            self.handles.append(module.register_forward_pre_hook(self._enter(name)))
            self.handles.append(module.register_forward_hook(self._exit, always_call=True))

    def _enter(self, name: str) -> Any:
        def hook(module: torch.nn.Module, args: tuple) -> None:
            self.stack.append(name)
            self._mark()

        return hook

    def _exit(self, module: torch.nn.Module, args: tuple, output: Any) -> None:
        self.stack.pop()
        self._mark()

    def _mark(self) -> None:
        self.starts.append(torch._C._autograd._get_sequence_nr())
        self.owners.append(self.stack[-1] if self.stack else "(outside)")

    def owner(self, sequence_nr: int) -> str:
        """The innermost module when the node numbered ``sequence_nr`` was created."""
        index = bisect.bisect_right(self.starts, sequence_nr) - 1
        return self.owners[index] if index >= 0 else "(outside)"

    def remove(self) -> None:
        """Take every hook off the model again."""
        for handle in self.handles:
            handle.remove()


def coverage(model: torch.nn.Module, *args: Any, **kwargs: Any) -> Coverage:
    """Run ``model(*args, **kwargs)`` once and count its backward graph: which nodes are
    hand-derived, which are torch's own (by module and op), which are views and casts.

    The graph is read from the outputs: a ``loss`` attribute or key when present and not
    ``None`` (Hugging Face ``ModelOutput``), otherwise every tensor in the output (tensor,
    tuple, list, dict). The forward leaves no trace: the model's buffers (BatchNorm's running
    statistics) and the CPU random-number state are put back afterwards. Returns a
    :class:`Coverage`, which prints as a table.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"coverage(): model must be a torch.nn.Module, got {type(model).__name__}")
    timeline = _Timeline(model)
    buffers = {name: buffer.clone() for name, buffer in model.named_buffers()}
    rng = torch.random.get_rng_state()
    try:
        with torch.enable_grad():
            output = model(*args, **kwargs)
    finally:
        timeline.remove()
        torch.random.set_rng_state(rng)
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                buffer.copy_(buffers[name])
    roots = [tensor.grad_fn for tensor in _outputs(output) if tensor.grad_fn is not None]
    native: Counter[tuple[str, str]] = Counter()
    native_elements: Counter[tuple[str, str]] = Counter()
    hand: Counter[str] = Counter()
    hand_elements: Counter[str] = Counter()
    views: Counter[str] = Counter()
    for node in _walk(roots):
        op, kind = node_name(node), node_kind(node)
        elements = sum(_numel(meta.shape) for meta in node._input_metadata)
        if kind == "view":
            views[op] += 1
        elif kind == "hand-derived":
            hand[op] += 1
            hand_elements[op] += elements
        else:
            key = (timeline.owner(node._sequence_nr()), op)
            native[key] += 1
            native_elements[key] += elements
    rows = tuple(
        Row(module, op, count, native_elements[module, op])
        for (module, op), count in sorted(native.items(), key=lambda item: (-item[1], item[0]))
    )
    return Coverage(
        native=rows,
        hand_derived={op: (count, hand_elements[op]) for op, count in hand.most_common()},
        views=dict(views.most_common()),
    )


def _numel(shape: Sequence[int]) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


def _outputs(output: Any) -> list[torch.Tensor]:
    """The tensors to read the graph from (see :func:`coverage`)."""
    loss = output.get("loss") if isinstance(output, Mapping) else getattr(output, "loss", None)
    if isinstance(loss, torch.Tensor):
        return [loss]
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, Mapping):
        output = list(output.values())
    if isinstance(output, (list, tuple)):
        return [tensor for item in output for tensor in _outputs(item)]
    return []


def _walk(roots: list[Any]) -> Iterator[Any]:
    """Every node reachable from ``roots``, once each."""
    seen: dict[int, Any] = {}  # holds the Python wrappers, so no id is reused during the walk
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen[id(node)] = node
        yield node
        stack.extend(child for child, _ in node.next_functions)


__all__ = ["VIEW_NODES", "Coverage", "Row", "coverage", "node_function", "node_kind", "node_name"]
