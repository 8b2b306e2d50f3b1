"""docs/FORMATS.md's byte tables, read for the tests that hold each binary
format's documentation to its definition (tests/test_engine_records.py,
tests/test_zk_receipts.py)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

FORMATS_MD = Path(__file__).resolve().parents[1] / "docs" / "FORMATS.md"


def check_byte_table(title: str, dtype: np.dtype) -> None:
    """The table under heading `title` lists exactly `dtype`'s fields, at
    the same bytes (rows `| a–b | `name` |`), and the heading names the
    size ("N bytes")."""
    doc = FORMATS_MD.read_text()
    section = doc[doc.index(title):]
    section = section[:section.index("\n#", 1)]
    rows = re.findall(r"^\| (\d+)(?:–(\d+))? \| `(\w+)` \|", section, re.M)
    got = [(name, int(a), int(b or a)) for a, b, name in rows]
    want = [(name, dtype.fields[name][1], dtype.fields[name][1] + dtype.fields[name][0].itemsize - 1)
            for name in dtype.names]
    assert got == want
    assert f"{dtype.itemsize} bytes" in section.splitlines()[0]
