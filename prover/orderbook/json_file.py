"""The JSON files of a chain (the manifest, the verification report): each
written whole or not at all, and read back refusing anything that is not
JSON, not the format named or not its version (the shape of the rest is
each format's own module's to check)."""
from __future__ import annotations

import errno
import json
import os
import secrets
import stat

from .. import input_file

#: the most bytes a chain's JSON file may have (docs/FORMATS.md): a
#: manifest's entry for a batch is ~130 bytes, a report's record of a file
#: its path (~100), so a million batches (years of a symbol's chain) take
#: ~150 MiB; a larger file is refused unread, before json.loads spends
#: many times its size on it
MAX_BYTES = 256 << 20


def encode(doc: dict) -> bytes:
    """The bytes `write` puts in the file (for a writer with its own file
    creation: daemon/formats.write_whole)."""
    return (json.dumps(doc, indent=1) + "\n").encode()


def write(path: str, doc: dict) -> None:
    """`doc` as JSON at `path`: a new temporary file beside it, synced,
    renamed over it (a crash leaves the old file or the new one, never
    half).  check_target first: a device, a FIFO or a directory at `path`
    is refused before a byte is written."""
    check_target(path)
    tmp, f = _new_temporary(path)
    try:
        with f:
            f.write(encode(doc))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def _new_temporary(path: str):
    """(name, file open for writing) of a file made new beside `path` ("x":
    whatever is already at a name, a link planted or a file a crash left,
    is never written through nor removed), under a name with a random part:
    one no one can plant ahead, and a crashed run of the same pid (pid 1 in
    a container, at every run) cannot block."""
    for _ in range(16):
        tmp = f"{path}.tmp{os.getpid()}.{secrets.token_hex(8)}"
        try:
            return tmp, open(tmp, "xb")
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no new temporary file could be made beside it", path)


def check_target(path: str) -> None:
    """OSError unless `write` may rename a file over `path`: a regular file,
    a symbolic link (the link itself is replaced, as a rename replaces it;
    what it leads to is never written, so a link planted in a shared
    directory cannot aim a report elsewhere) or nothing yet.  Anything else
    (/dev/null, a FIFO, a directory) would be put out of its place by the
    rename.  A caller about to do long work before its write asks first."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISLNK(mode):
        problem = input_file.not_regular(path, mode)
        if problem is not None:
            raise problem


def read(path: str, fmt: str, version: int | tuple[int, ...], kind: str, error: type[Exception],
         old: dict[int, str] | None = None) -> dict:
    """The JSON object at `path`, whose "format" is `fmt` and "version"
    `version` (or one of them); `error` (naming the file and `kind`, e.g.
    "chain manifest") otherwise, saying why an earlier version is refused
    where `old` says it.  OSError if it cannot be read (input_file.read:
    not a regular file, or over MAX_BYTES)."""
    versions = (version,) if isinstance(version, int) else tuple(version)
    raw = input_file.read(path, MAX_BYTES, kind)
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not JSON ({exc})") from None
    except RecursionError:
        raise error(f"{path}: not JSON this reader follows (arrays or objects nested deeper than "
                    "Python's recursion limit)") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise error(f"{path}: not a zksidecar {kind} (no \"format\": \"{fmt}\")")
    v = doc.get("version")
    if isinstance(v, bool) or v not in versions:
        # v is anything JSON holds (a list is unhashable): only an int names an old version
        why = f": {old[v]}" if old and type(v) is int and v in old else ""
        raise error(f"{path}: {kind.split()[-1]} version {v!r} is not supported "
                    f"(this build reads {' and '.join(map(str, versions))}){why}")
    return doc
