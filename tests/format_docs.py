"""What the tests hold each binary format's two definitions to: a C struct
against its numpy mirror (`check_layout`, through cffi), and docs/FORMATS.md's
byte tables (or another page's) against the dtype (`check_byte_table`)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from zksidecar.engine.native import ffi as engine_ffi

FORMATS_MD = Path(__file__).resolve().parents[1] / "docs" / "FORMATS.md"
STORE_MD = FORMATS_MD.with_name("STORE.md")


def check_byte_table(title: str, dtype: np.dtype, page: Path = FORMATS_MD) -> None:
    """The table under heading `title` of `page` (docs/FORMATS.md unless
    given) lists exactly `dtype`'s fields, at the same bytes (rows `| a–b |
    `name` |`), and the heading names the size ("N bytes")."""
    doc = page.read_text()
    section = doc[doc.index(title):]
    section = section[:section.index("\n#", 1)]
    rows = re.findall(r"^\| (\d+)(?:–(\d+))? \| `(\w+)` \|", section, re.M)
    got = [(name, int(a), int(b or a)) for a, b, name in rows]
    want = [(name, dtype.fields[name][1], dtype.fields[name][1] + dtype.fields[name][0].itemsize - 1)
            for name in dtype.names]
    assert got == want
    assert f"{dtype.itemsize} bytes" in section.splitlines()[0]


def check_layout(ctype: str, dtype: np.dtype, ffi=engine_ffi) -> None:
    """The C struct `ctype` (compiled, through cffi: the engine's module
    unless `ffi` names another) and `dtype` agree: the size, the fields in
    order, each field's offset and size, and every field little-endian (or
    a nested record, checked as its own pair)."""
    assert ffi.sizeof(ctype) == dtype.itemsize, ctype
    fields = ffi.typeof(ctype).fields
    assert [name for name, _ in fields] == list(dtype.names), ctype
    for name, field in fields:
        sub, offset = dtype.fields[name][:2]
        assert ffi.offsetof(ctype, name) == offset, name
        assert ffi.sizeof(field.type) == sub.itemsize, name
        assert sub.base.str[0] in "<|" or sub.names, name
