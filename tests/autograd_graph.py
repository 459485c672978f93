"""Walking a backward graph: which nodes a result's ``grad_fn`` reaches (shared by the tests that
check a model runs manualgrad's Functions rather than native kernels)."""

from __future__ import annotations

import torch


def graph_nodes(grad_fn: torch.Node | None) -> list[tuple[str, type | None]]:
    """Every node reachable from ``grad_fn``, once each: (its type's name, the
    ``autograd.Function`` class behind it, or None for a native node)."""
    seen, stack, nodes = set(), [grad_fn], []
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        nodes.append((type(node).__name__, getattr(node, "_forward_cls", None)))
        stack.extend(next_node for next_node, _ in node.next_functions)
    return nodes
