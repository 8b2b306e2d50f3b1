"""The library and its tools stay apart: no module of the library packages
(daemon, prover, engine, ringbuf) is a benchmark, demo, load generator or
command-line module, none imports zksidecar.tools (the tools import the
library, never the other way), the production ring module carries no
benchmark code, and pyproject.toml lists every package folder (a wheel holds
only what it lists).  The source is read with ast, not imported."""
from __future__ import annotations

import ast
import re
import tomllib

from source_tree import ROOT, imported_names, modules, parse

LIBRARY = {"daemon": "zksidecar.daemon", "prover": "zksidecar.prover",
           "engine": "zksidecar.engine", "ringbuf": "zksidecar.ringbuf"}
TOOLS = "zksidecar.tools"
# What belongs in tools/, by module name.
TOOL_NAME = re.compile(r"(^|_)(bench|benchmarks?|demo|loadgen|cli|stats|selfcheck|__main__)(_|$)")
# Modules that parse a command line or run as a script.
COMMAND_LINE_MODULES = {"argparse", "optparse", "getopt"}


def library_modules():
    """(dotted module name, path, syntax tree) of every library module."""
    for name, path in modules(set(LIBRARY.values())).items():
        if path is not None:
            yield name, path, parse(path)


def docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes of a tree (prose may name the tools)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _is_tools(name: str) -> bool:
    return name == TOOLS or name.startswith(TOOLS + ".")


def test_the_library_walk_finds_the_packages():
    names = {name for name, _, _ in library_modules()}
    assert set(LIBRARY.values()) <= names
    assert "zksidecar.prover.orderbook.batch" in names and "zksidecar.daemon.service" in names


def test_no_library_module_is_a_tool():
    tools = [str(path.relative_to(ROOT)) for _, path, _ in library_modules()
             if TOOL_NAME.search(path.stem)]
    assert tools == [], f"benchmark, demo, load-generator or command modules belong in tools/: {tools}"


def test_no_library_module_parses_a_command_line_or_runs_as_a_script():
    found = []
    for module, path, tree in library_modules():
        if COMMAND_LINE_MODULES & set(imported_names(module, path, tree)):
            found.append(f"{path.relative_to(ROOT)}: imports a command-line parser")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Compare) and isinstance(node.left, ast.Name)
                    and node.left.id == "__name__"
                    and any(isinstance(c, ast.Constant) and c.value == "__main__"
                            for c in node.comparators)):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: a script entry point")
    assert found == [], found


def test_the_library_never_imports_the_tools():
    found = []
    for module, path, tree in library_modules():
        found += [f"{path.relative_to(ROOT)}: imports {name}"
                  for name in imported_names(module, path, tree) if _is_tools(name)]
        # by name at run time: importlib, `python -m zksidecar.tools.cli`, a suite table
        prose = docstrings(tree)
        found += [f"{path.relative_to(ROOT)}:{node.lineno}: names {node.value!r}"
                  for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and TOOLS in node.value and id(node) not in prose]
    assert found == [], found


def test_relative_imports_resolve():
    """The resolution the import checks rely on, on known modules."""
    tree = ast.parse("from ..tools import cli\nfrom . import records\nfrom ...engine.book import Book")
    names = set(imported_names("zksidecar.prover.orderbook.batch",
                               ROOT / "prover" / "orderbook" / "batch.py", tree))
    assert {"zksidecar.prover.tools.cli", "zksidecar.prover.orderbook.records",
            "zksidecar.engine.book.Book"} <= names
    tree = ast.parse("from ..tools import cli")
    assert any(_is_tools(n) for n in imported_names("zksidecar.daemon.service",
                                                     ROOT / "daemon" / "service.py", tree))


def test_the_production_ring_module_has_no_benchmark_code():
    from zksidecar.ringbuf.ring import lib

    assert [name for name in dir(lib) if "bench" in name] == []


def test_pyproject_lists_every_package_folder():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dir = config["package-dir"]
    assert set(package_dir) == set(LIBRARY.values()) | {TOOLS}
    folders = set()
    for package, folder in package_dir.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            folders.add(".".join((package,) + parts))
    assert sorted(config["packages"]) == sorted(folders)
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"zksidecar": "zksidecar.tools.cli:main"}
