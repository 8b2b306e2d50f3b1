"""The package's import graph has no cycles.

Every `import` and `from ... import` in the shipped packages counts, at
module level or inside a function (an import hidden in a function is still
a dependency).  `from package import name` points at the submodule `name`
when there is one, else at the package itself, as Python resolves it.  A
cycle is reported with its modules in order, so the test names what to
untangle.
"""
from __future__ import annotations

from source_tree import imports, modules


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read_whole():
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    assert "zksidecar.engine._engine" in graph["zksidecar.engine.native"]
    assert "zksidecar.daemon.service" in graph and "zksidecar.prover.prove" in graph
    assert "zksidecar.daemon.journal" in graph["zksidecar.daemon.service"]
    assert "zksidecar.prover.orderbook.witness" in graph["zksidecar.prover.orderbook.batch"]
    assert "zksidecar.ringbuf" in graph["zksidecar.daemon.service"]      # `from .. import ringbuf`


def test_no_import_cycles():
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    assert cycles(graph) == []


def test_a_cycle_would_be_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
