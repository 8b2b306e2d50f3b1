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

from source_tree import ROOT, imported_names, imports, modules, parse


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


# ---------------------------------------------------------------- zk paths --
# Every random value of a zk proof is derived from the store key
# (prover/zk_keys.py, docs/ZK_KEYS.md): no random-number generator may be
# reachable from a zk module, so none is ever copied into a forked worker
# or shared by two commitments.  The one draw is the store key itself,
# os.urandom in zk_keys.new_store_key.
ZK_MODULES = ["zksidecar.prover.zk_keys", "zksidecar.prover.chacha20_reference",
              "zksidecar.prover.poseidon2", "zksidecar.prover.poseidon2_reference",
              "zksidecar.prover.poseidon2_air", "zksidecar.prover.orderbook.zk_encoding",
              "zksidecar.prover.orderbook.zk_lists", "zksidecar.prover.orderbook.receipt",
              "zksidecar.prover.orderbook.zk_air", "zksidecar.prover.orderbook.zk_lane",
              "zksidecar.prover.orderbook.zk_chain",
              "zksidecar.prover.masking", "zksidecar.prover.orderbook.zk_record_checks"]
GENERATOR_MODULES = {"random", "secrets", "numpy.random"}
GENERATOR_NAMES = {"random", "default_rng", "RandomState", "Generator", "SystemRandom", "urandom",
                   "getrandom", "token_bytes", "token_hex", "randbits", "randbelow"}
KEY_CREATION = ("zksidecar.prover.zk_keys", "new_store_key", "urandom")


def generator_uses(module: str, tree, path) -> list[str]:
    """Where `tree` imports a generator module or names a generator, as
    "module: what" lines; os.urandom inside KEY_CREATION's function is the
    one allowed draw."""
    found = [f"{module}: imports {name}" for name in imported_names(module, path, tree)
             if name in GENERATOR_MODULES or name.startswith("numpy.random.")]
    allowed = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and (module, node.name) == KEY_CREATION[:2]:
            allowed |= {id(n) for n in ast.walk(node)}
    for node in ast.walk(tree):
        name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
        if name in GENERATOR_NAMES and not (name == KEY_CREATION[2] and id(node) in allowed):
            found.append(f"{module}:{node.lineno}: uses {name}")
    return found


def test_no_generator_on_zk_paths():
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    reached, todo = set(), list(ZK_MODULES)
    while todo:                             # the zk modules and all they import, transitively
        m = todo.pop()
        if m not in reached:
            reached.add(m)
            todo.extend(graph[m])
    assert "zksidecar.prover.native" in reached and "zksidecar.prover.field" in reached
    found = [line for m in sorted(reached) if known[m] is not None
             for line in generator_uses(m, parse(known[m]), known[m])]
    assert found == []


def test_a_generator_on_a_zk_path_would_be_found():
    path = ROOT / "prover" / "zk_keys.py"
    source = ("import numpy as np\nfrom numpy.random import default_rng\nimport secrets\n"
              "def new_store_key():\n    return os.urandom(32)\n"
              "def mask():\n    return np.random.default_rng(1), os.urandom(4)\n")
    found = generator_uses("zksidecar.prover.zk_keys", ast.parse(source), path)
    assert any("imports numpy.random" in f for f in found) and any("imports secrets" in f for f in found)
    assert sorted(f for f in found if ":7:" in f) == ["zksidecar.prover.zk_keys:7: uses default_rng",
                                                       "zksidecar.prover.zk_keys:7: uses random",
                                                       "zksidecar.prover.zk_keys:7: uses urandom"]
    assert not any(":5:" in f for f in found)     # the store key's draw is allowed
