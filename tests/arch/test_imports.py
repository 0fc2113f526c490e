"""The import graph of `p2pim/`: no cycles, and faces that use only the public vocabulary.

The faces (the TUI, the RPC and daemon, the one-shot commands) present the node to people
and scripts.  They reach it through `Node` and the records of `p2pim.api`, never through
the layers beneath (storage, sessions, the features' managers, the wire), so those layers
can change without a face noticing."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "p2pim"

FACES = (
    "p2pim.ui",
    "p2pim.commands",
    "p2pim.cli",
    "p2pim.rpc",
    "p2pim.rpc_stream",
    "p2pim.daemon",
    "p2pim.control",
    "p2pim.client",
    "p2pim.oneshot",
    "p2pim.oneshot_node",
    "p2pim.blocking_client",
    "p2pim.terminal",
    "p2pim.doctor",
    "p2pim.profile",
)
# What a face may import besides other faces: the façade and the vocabulary users see.
PUBLIC = (
    "p2pim",
    "p2pim.api",
    "p2pim.node",
    "p2pim.events",
    "p2pim.config",
    "p2pim.settings",
    "p2pim.identity",
    "p2pim.names",
    "p2pim.reach",
    "p2pim.clock",
    "p2pim.export",
    "p2pim.testing",
)


def module_of(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_of(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path) -> Iterator[str]:
    """The p2pim modules `path` imports (at any depth: a deferred import is an edge too)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("p2pim"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not node.module.startswith("p2pim"):
                continue
            for alias in node.names:  # `from p2pim.ui import app` imports p2pim.ui.app
                sub = f"{node.module}.{alias.name}"
                yield sub if sub in MODULES else node.module


GRAPH = {name: set(imports_of(path)) - {name} for name, path in MODULES.items()}


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_graph_is_read() -> None:
    assert GRAPH["p2pim.node"], "node.py imports other modules of the package"


def test_no_import_cycle() -> None:
    """Tarjan's strongly connected components: any with more than one module is a cycle.
    A package's `__init__` counts as importing nothing, since it only re-exports lazily."""
    graph = {n: {d for d in deps if d in GRAPH} for n, deps in GRAPH.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for dep in graph[node]:
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert cycles == []


def test_faces_import_only_the_public_vocabulary() -> None:
    wrong = {
        f"{face} imports {dep}"
        for face, deps in GRAPH.items()
        if within(face, FACES)
        for dep in deps
        if not within(dep, FACES) and dep not in PUBLIC and not within(dep, ("p2pim.testing",))
    }
    assert sorted(wrong) == []
