"""Test what ships: the package as pip builds and installs it, run outside
the source tree (issue 15).

The editable install the rest of the suite uses reads the folders in place,
so a package left out of pyproject.toml, a header left out of the source
distribution or a module that imports something only the dev extras bring
passes every other test.  Here, once per session:

  1. the tree is copied to a temporary directory (not its build products,
     egg-info or .venv: a stale SOURCES.txt or build/lib would hide a gap);
  2. a source distribution is made from the copy (setuptools' PEP 517
     backend, MANIFEST.in), and a wheel from that sdist (pip wheel), so the
     wheel holds only what the sdist carried (what `python -m build` does;
     `pip install CHECKOUT` of docs/DEPLOY.md builds from the whole tree,
     which holds at least as much);
  3. a fresh virtual environment (no system site-packages) gets the wheel
     and its runtime dependencies from the package index (pip's cache);
  4. its `zksidecar` runs from a directory outside the tree, PYTHONPATH unset.

Both builds run without build isolation, on the dev extra's setuptools,
wheel and cffi (the extra lists [build-system] requires, checked below), so
no build environment is downloaded per run.  A C compiler is needed, as for
the rest of `make test`.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest

from daemon_helpers import Daemon
from source_tree import ROOT, modules, package_dirs

pytestmark = pytest.mark.slow

# What a copy of the tree leaves out: VCS, environments, build products, caches.
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "venv", "build", "dist", "*.egg-info",
                                    "__pycache__", "*.pyc", "*.so", "*.o", "var", ".pytest_cache",
                                    ".hypothesis", ".benchmarks")

CSV = """ts_ns,kind,side,price,qty,account,order_id
0,LIMIT,SELL,101,5,1,1
1,LIMIT,SELL,100,5,2,2
2,LIMIT,BUY,99,3,3,3
3,IOC,BUY,101,7,4,4
4,REDUCE,,,1,,1
5,CANCEL,,,,,3
6,FOK,SELL,99,50,5,5
7,POST_ONLY,BUY,101,1,6,6
8,MARKET,SELL,,2,7,7
"""


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, (f"{' '.join(map(str, cmd))} exited with {proc.returncode}\n"
                                  f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


class Installed:
    """The wheel, and a virtual environment with it installed."""

    def __init__(self, base: pathlib.Path):
        self.base = base
        self.sdist = self.wheel = None
        self.venv = base / "venv"
        self.bin = self.venv / "bin"
        self.cwd = base / "elsewhere"      # where the commands run: not the tree
        self.cwd.mkdir()
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "NOTIFY_SOCKET")}

    def build(self) -> None:
        src, sdists, wheels = self.base / "src", self.base / "sdist", self.base / "wheels"
        shutil.copytree(ROOT, src, ignore=NOT_SOURCE)
        sdists.mkdir()
        _run([sys.executable, "-c", "import sys, setuptools.build_meta as b; "
              "print(b.build_sdist(sys.argv[1]))", str(sdists)], cwd=src)
        (self.sdist,) = sdists.glob("zksidecar-*.tar.gz")
        _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
              "--disable-pip-version-check", "-w", str(wheels), str(self.sdist)], cwd=self.base)
        (self.wheel,) = wheels.glob("zksidecar-*.whl")

    def install(self) -> None:
        # from this interpreter's base installation: a venv made from a venv's
        # python is a plain one, without the dev environment's packages
        _run([sys.executable, "-m", "venv", str(self.venv)], cwd=self.base)
        _run([str(self.bin / "python"), "-m", "pip", "install", "--quiet",
              "--disable-pip-version-check", str(self.wheel)], cwd=self.cwd, env=self.env)

    def run(self, *args, cwd=None) -> subprocess.CompletedProcess:
        proc = _run([str(self.bin / "zksidecar"), *map(str, args)], cwd=cwd or self.cwd, env=self.env)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def python(self, code: str) -> str:
        return _run([str(self.bin / "python"), "-c", code], cwd=self.cwd, env=self.env).stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("installed")
    assert not base.resolve().is_relative_to(ROOT), "the temporary directory is inside the tree"
    inst = Installed(base)
    inst.build()
    inst.install()
    yield inst
    # the large parts; the sdist and the wheel stay for a look after a failure
    shutil.rmtree(inst.venv, ignore_errors=True)
    shutil.rmtree(base / "src", ignore_errors=True)


def test_the_dev_extra_holds_the_build_requirements():
    """The builds below use the dev environment's setuptools, wheel and cffi
    (no build isolation): the dev extra must ask for what the build needs."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dev = set(config["project"]["optional-dependencies"]["dev"])
    assert set(config["build-system"]["requires"]) <= dev


def test_the_sdist_carries_what_the_build_compiles(installed):
    """Every C source, header and .inc file and every cffi build module:
    without them the wheel cannot be built from the sdist."""
    import tarfile

    with tarfile.open(installed.sdist) as tar:
        names = {pathlib.PurePosixPath(n).relative_to(pathlib.PurePosixPath(n).parts[0]).as_posix()
                 for n in tar.getnames() if "/" in n}
    needed = {p.relative_to(ROOT).as_posix()
              for pattern in ("csrc/**/*.[ch]", "csrc/**/*.inc", "bindings/*.py", "bindings/*.c")
              for p in ROOT.glob(pattern)}
    needed |= {"setup.py", "pyproject.toml", "README.md"}
    assert sorted(needed - names) == []


def test_the_wheel_holds_every_package_module_and_the_command(installed):
    with zipfile.ZipFile(installed.wheel) as whl:
        names = set(whl.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = whl.read(entry_points).decode()
    # every .py file of every package folder (subpackages included), at its import path
    expected = set()
    for package, folder in package_dirs().items():
        for path in folder.rglob("*.py"):
            expected.add("/".join([*package.split("."), *path.relative_to(folder).parts]))
    assert sorted(expected - names) == []
    # every compiled module, built for this interpreter
    compiled = {m for m, path in modules().items() if path is None}
    assert compiled
    for module in compiled:
        stem = module.replace(".", "/")
        assert any(n.startswith(stem + ".") and n.endswith(".so") for n in names), module
    assert re.search(r"^zksidecar\s*=\s*zksidecar\.tools\.cli:main$", scripts, re.M), scripts
    # and nothing that is not the package's: no tests, no sources beside it
    assert [n for n in names if not n.startswith(("zksidecar/", "zksidecar-"))] == []


def test_every_module_imports_from_the_installed_package(installed):
    """From the venv, outside the tree: each module of the package imports,
    and is the venv's file, not the checkout's."""
    names = sorted(modules())
    report = json.loads(installed.python(f"""
import importlib, importlib.metadata, json, zksidecar
out = {{"path": list(zksidecar.__path__),
        "dist": str(importlib.metadata.distribution("zksidecar").locate_file("")),
        "files": {{}}, "failed": {{}}}}
for name in {names!r}:
    try:
        out["files"][name] = importlib.import_module(name).__file__
    except Exception as exc:
        out["failed"][name] = repr(exc)
print(json.dumps(out))
"""))
    # a module of an optional extra (pyproject.toml) needs that extra, which
    # this venv does not install: it may fail only for want of it
    optional = {"zksidecar.daemon.cluster": "distributed"}     # the `cluster` extra
    for name, needs in optional.items():
        failed = report["failed"].pop(name, None)
        assert failed is None or f"No module named '{needs}'" in failed, failed
        report["files"].pop(name, None)
    assert report["failed"] == {}
    venv = installed.venv.resolve()
    for where in [*report["path"], report["dist"], *report["files"].values()]:
        assert pathlib.Path(where).resolve().is_relative_to(venv), where
        assert not pathlib.Path(where).resolve().is_relative_to(ROOT), where


def test_help_selfcheck_prove_verify(installed):
    assert "selfcheck" in installed.run("--help").stdout
    assert "selfcheck passed" in installed.run("selfcheck").stdout
    (installed.cwd / "ops.csv").write_text(CSV)
    out = installed.run("prove", "ops.csv", "--capacity", "16", "--batch-size", "4",
                        "--out", "proofs").stdout
    assert "9 operations in batches of up to 4" in out
    files = sorted((installed.cwd / "proofs").glob("batch-*.zkb"))
    assert len(files) == 3
    out = installed.run("verify", *files).stdout
    assert "verified 3 batches (9 operations)" in out
    # a forgery is refused by the installed verifier too
    raw = bytearray(files[1].read_bytes())
    raw[len(raw) // 2] ^= 0x10
    files[1].write_bytes(bytes(raw))
    proc = subprocess.run([str(installed.bin / "zksidecar"), "verify", *map(str, files)],
                          capture_output=True, text=True, cwd=installed.cwd, env=installed.env)
    assert proc.returncode in (1, 2) and "Traceback" not in proc.stderr


def test_zk_prove_verify(installed):
    """zk mode from the installed package: its C builders (the lane, the
    record-check block) and masked commitments are in the wheel's kernels,
    and the installed verifier checks the chain."""
    (installed.cwd / "zk-ops.csv").write_text(CSV)
    out = installed.run("prove", "zk-ops.csv", "--capacity", "1024", "--batch-size", "4", "--out", "zk-proofs",
                        "--zk", "--key", "zk-store.key", "--new-key").stdout
    files = sorted((installed.cwd / "zk-proofs").glob("batch-*.zkb"))
    assert len(files) == 3, out
    out = installed.run("verify", *files).stdout
    assert "verified 3 zk batches (9 operations)" in out


def test_daemon_starts_and_stops(installed, tmp_path):
    """`zksidecar daemon` from the venv: up (its admin socket answers), then a
    clean stop on SIGTERM, exit 0, no traceback."""
    daemon = Daemon(tmp_path)
    try:
        daemon.start(command=[str(installed.bin / "zksidecar")], cwd=installed.cwd,
                     env={k: None for k in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")})
        status = daemon.status()
        assert status["counts"]["divergences"] == 0
        assert daemon.stop() == 0, daemon.logs()
    finally:
        daemon.cleanup()
    assert "Traceback" not in daemon.logs(), daemon.logs()
