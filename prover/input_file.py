"""The one way a file named by a user is opened for reading: a proof, a
chain's JSON, a receipt, the daemon's configuration, a file of operations.

A path may name anything: a directory, a FIFO that blocks until a writer
comes, a device such as /dev/zero that never ends.  `open_regular` refuses
all but a regular file, naming it, before a byte is read; `read` also
refuses a file larger than its format can legally be (each format states its
cap where it is defined) and never reads past that cap, so a file that
grows while it is read is refused too.  A stream that is legitimately long
(a file of operations) is opened with `open_regular` and read in bounded
pieces by its reader.

Both raise OSError (InputRefused for what they refuse themselves): every
reader already reports an OSError as "PATH: why", which is the message.
"""
from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

#: what each kind of file that is not a regular one is called in a refusal
_KINDS = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))


class InputRefused(OSError):
    """A file refused before it is read: not a regular file, or over its
    format's cap.  `strerror` says why, `filename` names it."""


def open_regular(path: str, buffering: int = -1) -> BinaryIO:
    """`path` opened for binary reading (`buffering` as open's) if it is a
    regular file; otherwise IsADirectoryError, or InputRefused saying what
    it is.  Opened without blocking (a FIFO with no writer would wait
    forever in open) and checked by fstat of what was opened, not by a stat
    of the name before it."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        problem = not_regular(path, os.fstat(fd).st_mode)
        if problem is not None:
            raise problem
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=buffering)
    except BaseException:
        os.close(fd)
        raise


def not_regular(path: str, mode: int) -> OSError | None:
    """None if `mode` (a stat's st_mode of `path`) is a regular file's;
    otherwise IsADirectoryError, or InputRefused saying what it is."""
    if stat.S_ISDIR(mode):
        return IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a file")
        return InputRefused(errno.EINVAL, f"not a regular file ({kind})", path)
    return None


def too_large(path: str, size: int, cap: int, kind: str) -> InputRefused:
    """The refusal of a `kind` file of `size` bytes, over `cap`."""
    return InputRefused(errno.EFBIG, f"{size:,} bytes, over the {cap:,} a {kind} may have", path)


#: the most one read asks for (read: a file's cap is no measure of its size)
READ_CHUNK = 1 << 20


def read(path: str, cap: int, kind: str) -> bytes:
    """The bytes of the regular file `path`, a `kind` (e.g. "batch proof
    file") of at most `cap` bytes: refused by open_regular, or as too large
    (InputRefused) when it has more, without reading more than cap + 1."""
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size > cap:
            raise too_large(path, size, cap, kind)
        # in pieces: read(n) reserves n bytes before it reads one, and cap is
        # the largest file of the kind (a proof's is 100+ MB), not this one's size
        parts, got = [], 0
        while got <= cap and (part := f.read(min(cap + 1 - got, READ_CHUNK))):
            parts.append(part)
            got += len(part)
        data = b"".join(parts)
    if len(data) > cap:
        raise InputRefused(errno.EFBIG, f"grew past the {cap:,} bytes a {kind} may have while it "
                           "was read", path)
    return data
