"""Test support: the shipped packages read as source (never imported), for
the tests of the package's structure (test_import_graph.py, test_layout.py).

pyproject.toml's package-dir maps the user's folders onto the zksidecar
namespace; the cffi build modules in bindings/ name the compiled modules
(which have no source and import nothing of ours).
"""
from __future__ import annotations

import ast
import pathlib
import re
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def package_dirs() -> dict[str, pathlib.Path]:
    """Import name -> folder of every top-level package."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {name: ROOT / folder
            for name, folder in config["tool"]["setuptools"]["package-dir"].items()}


def compiled_modules() -> set[str]:
    named = re.compile(r"""["'](zksidecar(?:\.\w+)+)["']""")     # the module a build makes
    return {m for path in (ROOT / "bindings").glob("build_*.py") for m in named.findall(path.read_text())}


def modules(packages: set[str] | None = None) -> dict[str, pathlib.Path | None]:
    """Every module of the shipped packages (or of `packages`), by dotted
    name; a compiled module has no source (None)."""
    found: dict[str, pathlib.Path | None] = {}
    for package, folder in package_dirs().items():
        if packages is not None and package not in packages:
            continue
        found.update({m: None for m in compiled_modules() if m.startswith(package + ".")})
        for path in sorted(folder.rglob("*.py")):
            parts = [p for p in path.relative_to(folder).with_suffix("").parts if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


def parse(path: pathlib.Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def imported_names(module: str, path: pathlib.Path, tree: ast.AST):
    """Every name the tree imports, relative imports resolved: for `from X
    import y`, both X and X.y (y may be a submodule or a name in X).
    Imports inside functions count."""
    here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            yield target
            yield from (f"{target}.{alias.name}" for alias in node.names)


def imports(module: str, path: pathlib.Path | None, known: dict) -> set[str]:
    """The modules of `known` that `module` imports (`from X import y` is
    X.y when that is a module, else X, as Python resolves it)."""
    if path is None:
        return set()
    out = set()
    for node in ast.walk(parse(path)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = list(imported_names(module, path, ast.Module([node], [])))
            if isinstance(node, ast.ImportFrom):   # [X, X.y, X.z...]: each y as a module, else X
                names = [n if n in known else names[0] for n in names[1:]]
            for target in names:
                while target and target not in known:      # a name inside a module: the module
                    target = target.rpartition(".")[0]
                if target and target != module:
                    out.add(target)
    return out
