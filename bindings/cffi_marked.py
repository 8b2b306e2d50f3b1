"""What the cffi build modules (bindings/build_*.py) share.

The cdef of each compiled module is the C text between `/* cffi-begin */`
and `/* cffi-end */` in the files that define its interface, so the C stays
the one definition of what Python may call.  cffi runs each build module as
a script rather than importing it, so the modules reach this helper through
their own folder on sys.path.
"""
from __future__ import annotations

import pathlib
import re

from cffi import FFI

ROOT = pathlib.Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
_MARKED = re.compile(r"/\* cffi-begin \*/(.*?)/\* cffi-end \*/", re.S)


def marked(paths: list[pathlib.Path]) -> str:
    """The marked declarations of `paths`, in order."""
    return "\n".join(m for p in paths for m in _MARKED.findall(p.read_text()))


def builder(module: str, interface: list[pathlib.Path], source: str, *,
            sources: list[pathlib.Path] = (), include_dirs: list[pathlib.Path],
            extra_compile_args: list[str]) -> FFI:
    """An FFI building `module` from `source` (the C that includes the
    interface) and `sources`, its cdef the marked text of `interface`."""
    ffi = FFI()
    ffi.cdef(marked(interface))
    ffi.set_source(module, source,
                   # setuptools wants paths relative to setup.py
                   sources=[str(p.relative_to(ROOT)) for p in sources],
                   include_dirs=[str(p.relative_to(ROOT)) for p in include_dirs],
                   extra_compile_args=extra_compile_args)
    return ffi
