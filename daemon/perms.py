"""The permissions of the daemon's state: the journal, the proof store and the
admin socket, and the directories that hold them (docs/DEPLOY.md,
"Permissions of the state").

The journal and the proofs are the engine's order flow (a proof file carries
its batch's operation and trade records), so nothing of the state is ever
readable by other users:

    what                         no [state] group     [state] group = G
    directories the daemon makes 0700                 0750, group G
    files the daemon makes       0600                 0640, group G
    the admin socket             0600                 0660, group G (connect needs write)

The modes are set with fchmod/chmod after creation, so the umask cannot widen
them (os.open's and os.mkdir's mode only ever lose bits to the umask; with
umask 0 they would keep 0644/0755 as given).  Every file is created with
O_EXCL under mode 0600 first, so it never exists, even for an instant, with
more access than the daemon's user's.

The daemon changes the mode of nothing it did not create: a directory it is
pointed at may be shared (a typo of /tmp), and chmod-ing it would break
whatever else uses it.  What exists already is checked instead, at start-up,
before anything is opened (daemon/config.py): `mode_problem` says what is
too wide, and the daemon refuses to start naming the path, its mode and the
command that fixes it.

The admin commands that make files in a state directory, or copies out of
one (`journal repair`'s set-aside tail, `store prune`'s new index, `store
archive`'s and `export`'s chains), are not given [state] group: they take
the directory's own sharing (`group_of_dir`), so a private state yields
0600/0700 and a state shared with a group 0640/0750 for that group.
"""
from __future__ import annotations

import errno
import grp
import os
import stat

PRIVATE_DIR, GROUP_DIR = 0o700, 0o750
PRIVATE_FILE, GROUP_FILE = 0o600, 0o640
PRIVATE_SOCKET, GROUP_SOCKET = 0o600, 0o660


def gid_of(group: str | int | None) -> int | None:
    """The gid of `group` (a name, a gid, or None/"" for no group)."""
    if group is None or group == "":
        return None
    if isinstance(group, int):
        return group
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise OSError(errno.EINVAL, f"no such group: {group!r}") from None


def dir_mode(gid: int | None) -> int:
    return PRIVATE_DIR if gid is None else GROUP_DIR


def file_mode(gid: int | None) -> int:
    return PRIVATE_FILE if gid is None else GROUP_FILE


def socket_mode(gid: int | None) -> int:
    return PRIVATE_SOCKET if gid is None else GROUP_SOCKET


def make_dirs(path: str, group: str | int | None = None) -> list[str]:
    """Create `path` and its missing parents, each 0700 (0750 owned by
    `group`) whatever the umask; directories that exist are left as they are.
    Returns the directories created, outermost first."""
    gid = gid_of(group)
    path = os.path.abspath(path)
    missing = []
    p = path
    while not os.path.isdir(p):
        missing.append(p)
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    made = []
    for d in reversed(missing):
        try:
            os.mkdir(d, PRIVATE_DIR)       # at most 0700 from the first instant
        except FileExistsError:
            if os.path.isdir(d):
                continue                   # made meanwhile by someone else: not ours to change
            raise
        if gid is not None:
            os.chown(d, -1, gid)
        os.chmod(d, dir_mode(gid))
        made.append(d)
    return made


def create_file(path: str, flags: int, group: str | int | None = None) -> int:
    """A new file at `path` (O_CREAT | O_EXCL added to `flags`), 0600 (0640
    owned by `group`) whatever the umask: the descriptor."""
    gid = gid_of(group)
    fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        if gid is not None:
            os.fchown(fd, -1, gid)
        os.fchmod(fd, file_mode(gid))
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    return fd


def open_or_create(path: str, flags: int, group: str | int | None = None) -> int:
    """`path` opened with `flags`, created as create_file does if it does not
    exist (an existing file keeps its mode: see the module's docstring)."""
    try:
        return create_file(path, flags, group)
    except FileExistsError:
        return os.open(path, flags)


def group_of_dir(path: str) -> int | None:
    """The group an existing state directory is shared with: its gid when
    its group has any access to it, None when only its owner has.  A
    command that makes files in the state, or out of it (an archive, an
    export), passes it as `group`, so what it makes is never wider than the
    state it comes from, whatever the umask."""
    st = os.stat(path)
    return st.st_gid if stat.S_IMODE(st.st_mode) & 0o070 else None


def mode_problem(st: os.stat_result, gid: int | None) -> str | None:
    """Why an existing state directory or file with this stat is more open
    than the state's permissions allow (None if it is not): nothing for
    others, and for the group read (and search) only, only when a state group
    `gid` is configured and is the one the path belongs to."""
    perm = stat.S_IMODE(st.st_mode)
    is_dir = stat.S_ISDIR(st.st_mode)
    what = "directory" if is_dir else "file"
    if perm & 0o007:
        return f"{what} is mode {perm:04o}: other users have access"
    group = perm & 0o070
    if not group:
        return None
    if gid is None:
        return f"{what} is mode {perm:04o}: its group has access and no [state] group is set"
    if st.st_gid != gid:
        return (f"{what} is mode {perm:04o} for group {_group_name(st.st_gid)}, not the "
                f"[state] group {_group_name(gid)}")
    if group & 0o020:
        return f"{what} is mode {perm:04o}: its group may write"
    return None


def fix_command(path: str, is_dir: bool, gid: int | None) -> str:
    """The command that gives `path` the state's permissions."""
    r = "-R " if is_dir else ""
    if gid is None:
        return f"chmod {r}go-rwx {path}"
    return f"chgrp {r}{_group_name(gid)} {path} && chmod {r}g-w,o-rwx {path}"


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
