"""Walking a backward graph: which nodes a result's ``grad_fn`` reaches (shared by the tests that
check a model runs manualgrad's Functions rather than native kernels)."""

from __future__ import annotations

import torch

from manualgrad.graph_coverage import node_function, node_name


def graph_nodes(grad_fn: torch.Node | None) -> list[tuple[str, type | None]]:
    """Every node reachable from ``grad_fn``, once each: (its name, the ``autograd.Function``
    class behind it, or None for a native node); a compiled twin's node counts as its Python
    Function's (``node_name``, ``node_function``), so a graph reads the same on both paths."""
    seen, stack, nodes = set(), [grad_fn], []
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        nodes.append((node_name(node), node_function(node)))
        stack.extend(next_node for next_node, _ in node.next_functions)
    return nodes
