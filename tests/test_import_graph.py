"""The package's import graph has no cycles.

Every `import` and `from ... import` in the shipped packages counts, at
module level or inside a function (an import hidden in a function is still
a dependency).  `from package import name` points at the submodule `name`
when there is one, else at the package itself, as Python resolves it.  A
cycle is reported with its modules in order, so the test names what to
untangle.
"""
from __future__ import annotations

import ast
import pathlib
import re
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def package_dirs() -> dict[str, pathlib.Path]:
    """Import name -> folder, from pyproject.toml's package-dir (the source
    layout maps the user's folders onto the zksidecar namespace)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping = config["tool"]["setuptools"]["package-dir"]
    return {name: ROOT / folder for name, folder in mapping.items()}


def compiled_modules() -> set[str]:
    """The C extension modules the cffi build modules make (leaves of the
    graph: they import nothing of ours)."""
    named = re.compile(r"""set_source\(\s*["']([\w.]+)["']""")
    return {m for path in (ROOT / "bindings").glob("build_*.py") for m in named.findall(path.read_text())}


def modules() -> dict[str, pathlib.Path | None]:
    """Every module of the shipped packages, by its dotted name (a compiled
    module has no source: None)."""
    found: dict[str, pathlib.Path | None] = dict.fromkeys(compiled_modules())
    for package, folder in package_dirs().items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


def imports(name: str, path: pathlib.Path | None, known: dict) -> set[str]:
    """The modules of `known` that module `name` imports."""
    if path is None:
        return set()
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            stem = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in known else stem
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:     # `import a.b.c` needs a.b.c or its parent
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


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
