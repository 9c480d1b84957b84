"""Lineage: the graph of what a product came from, or of what it fed, to any depth.

Up from a product: the products it read, their products, down to the runs and the raw files
(name and sha256) they were ingested from. Down from a product or a run: every product that
used it, directly or not. :mod:`labledger.lineage.walk` finds it in the catalog; a server
sends it as JSON (:meth:`Lineage.from_dict`).

It prints as a tree (a node reached twice is shown once, then referred to), and exports as DOT
for graphviz and as JSON.

>>> from labledger.sim.analysis import density
>>> p = la.compute(density, la.runs.search(gas="Ar"))
>>> print(la.lineage(p.id))
density@2 [set] ...
├── density@2 run 1234 [value] ...
│   └── run 1234
│       └── 01234_Data.tdms  sha256:...
...
>>> print(la.lineage(1255, direction="down"))
run 1255
├── ...
>>> [n["label"] for n in la.lineage(1255, direction="down").to_dict()["nodes"]][:2]
['run 1255', 'density@2 run 1255 [value] ...']
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from labledger.errors import InvalidArgument

DIRECTIONS = ("up", "down")


def checked_direction(direction: str) -> str:
    """``direction`` if it is one of :data:`DIRECTIONS`; else a one-line refusal.

    >>> checked_direction("sideways")
    Traceback (most recent call last):
    ...
    labledger.errors.InvalidArgument: direction='sideways': 'up' (its inputs) or 'down' (its uses)
    """
    if direction not in DIRECTIONS:
        raise InvalidArgument(f"direction={direction!r}: 'up' (its inputs) or 'down' (its uses)")
    return direction


@dataclass
class Node:
    """A product, a run or a raw file in a lineage graph."""

    id: str
    kind: str  # "product", "run" or "file"
    label: str
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Lineage:
    """The graph around ``root``: ``nodes`` by id, ``edges`` as (input, output) pairs."""

    root: str
    direction: str
    nodes: dict[str, Node]
    edges: list[tuple[str, str]]

    def __len__(self) -> int:
        return len(self.nodes)

    def ancestors(self) -> list[Node]:
        """Every node but the root."""
        return [n for i, n in self.nodes.items() if i != self.root]

    def __str__(self) -> str:
        return self.tree()

    def tree(self) -> str:
        """The graph as an indented tree from the root."""
        children: dict[str, list[str]] = defaultdict(list)
        for source, target in self.edges:
            if self.direction == "up":
                children[target].append(source)
            else:
                children[source].append(target)
        lines = [self.nodes[self.root].label]
        shown: set[str] = {self.root}
        stack = [
            (c, "", i == len(children[self.root]) - 1) for i, c in enumerate(children[self.root])
        ][::-1]
        while stack:  # iterative: a deep graph would exhaust Python's recursion
            node_id, indent, last = stack.pop()
            node = self.nodes[node_id]
            seen = node_id in shown and children[node_id]
            lines.append(
                f"{indent}{'└── ' if last else '├── '}{node.label}"
                + ("  (shown above)" if seen else "")
            )
            if seen:
                continue
            shown.add(node_id)
            below = children[node_id]
            inner = indent + ("    " if last else "│   ")
            stack += [(c, inner, i == len(below) - 1) for i, c in enumerate(below)][::-1]
        return "\n".join(lines)

    def to_dot(self) -> str:
        """The graph in graphviz's DOT language, inputs pointing at what they made."""
        shapes = {"product": "box", "run": "ellipse", "file": "note"}
        lines = ["digraph lineage {", "  rankdir=LR;"]
        for node in self.nodes.values():
            label = json.dumps(node.label)
            style = ', style="bold"' if node.id == self.root else ""
            color = ', color="red"' if node.attrs.get("status") == "failed" else ""
            lines.append(f'  "{node.id}" [label={label}, shape={shapes[node.kind]}{style}{color}];')
        lines += [f'  "{a}" -> "{b}";' for a, b in self.edges]
        lines.append("}")
        return "\n".join(lines)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Lineage:
        """The graph :meth:`to_dict` gave (as a server sends it)."""
        nodes = {}
        for n in data["nodes"]:
            attrs = {k: v for k, v in n.items() if k not in ("id", "kind", "label")}
            nodes[n["id"]] = Node(n["id"], n["kind"], n["label"], attrs)
        edges = [(e["from"], e["to"]) for e in data["edges"]]
        return cls(data["root"], data["direction"], nodes, edges)

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "direction": self.direction,
            "nodes": [
                {"id": n.id, "kind": n.kind, "label": n.label, **n.attrs}
                for n in self.nodes.values()
            ],
            "edges": [{"from": a, "to": b} for a, b in self.edges],
        }
