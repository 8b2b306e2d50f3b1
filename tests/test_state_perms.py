"""The permissions of the daemon's state (daemon/perms.py, docs/DEPLOY.md
"Permissions of the state"): the journal, the proof store, their LOCK files
and directories, and the admin socket are created 0600/0700 (0640/0750 and
the group with [state] group) whatever the umask, and a state directory
already more open than that is refused at start, not changed."""
from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import stat
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from daemon_helpers import Daemon
from zksidecar.daemon import perms
from zksidecar.daemon.admin import serve_admin
from zksidecar.daemon.journal import BatchMark, Journal
from zksidecar.daemon.metrics import Metrics
from zksidecar.daemon.store import ProofStore
from zksidecar.engine.records import OP_DTYPE

# a group this process may hand files to: its own (root may use any)
GROUP = grp.getgrgid(os.getegid()).gr_name


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def modes(root) -> dict[str, int]:
    """Every path under `root` (itself included) -> its permission bits."""
    out = {".": stat.S_IMODE(os.lstat(root).st_mode)}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = stat.S_IMODE(os.lstat(p).st_mode)
    return out


def fill(journal: Journal, store: ProofStore) -> None:
    """Enough appends and puts to roll segments (both have 256-byte segments)."""
    for i in range(6):
        journal.append_ops(np.zeros(4, OP_DTYPE), i)
        journal.append_batch(BatchMark(0, i, 4 * i + 1, 4 * i + 4, 2))
        store.put(0, i, b"p" * 200)


@pytest.mark.parametrize("group, d, f", [(None, 0o700, 0o600), (GROUP, 0o750, 0o640)])
def test_journal_and_store_are_private_whatever_the_umask(tmp_path, group, d, f):
    base = tmp_path / "state"                  # missing: created, parents and all
    with umask(0o000):
        with Journal(str(base / "a" / "journal"), segment_bytes=256, group=group) as j, \
                ProofStore(str(base / "proofs"), fsync=False, segment_bytes=256, group=group) as s:
            fill(j, s)
            s.remove_segments(s.plan_retention(keep=4))     # the index rewritten, archived.zka made
    got = modes(base)
    files = {p for p in got if os.path.isfile(base / p)}
    assert {"a/journal/LOCK", "a/journal/journal-000002.zkj", "proofs/LOCK", "proofs/index.zki",
            "proofs/archived.zka", "proofs/store-000002.zkd"} <= files
    assert {p: m for p, m in got.items() if p not in files} == {
        ".": d, "a": d, "a/journal": d, "proofs": d}
    assert {p: got[p] for p in files} == {p: f for p in files}
    if group is not None:
        gid = grp.getgrnam(group).gr_gid
        assert {os.lstat(base / p).st_gid for p in got} == {gid}


def test_a_restrictive_umask_does_not_lock_the_daemon_out(tmp_path):
    """umask 0777 would make 0000 files: the modes are set, not masked."""
    with umask(0o777):
        with Journal(str(tmp_path / "j"), segment_bytes=256) as j, \
                ProofStore(str(tmp_path / "p"), fsync=False, segment_bytes=256) as s:
            fill(j, s)
    got = modes(tmp_path / "j") | {f"p/{k}": v for k, v in modes(tmp_path / "p").items()}
    assert set(got.values()) == {0o700, 0o600}


def test_existing_files_and_directories_are_not_changed(tmp_path):
    """The daemon sets the modes of what it creates only; what exists is the
    configuration check's to refuse (tests/test_config.py)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    with umask(0o022):
        Journal(str(shared), segment_bytes=256).close()
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755
    assert stat.S_IMODE((shared / "journal-000000.zkj").stat().st_mode) == 0o600


@pytest.mark.parametrize("group, mode", [(None, 0o600), (GROUP, 0o660)])
def test_admin_socket_mode_whatever_the_umask(group, mode):
    d = tempfile.mkdtemp(prefix="zkperm", dir="/tmp")      # short: sun_path
    path = os.path.join(d, "admin.sock")

    async def main():
        async with await serve_admin(Metrics(), dict, path, group=group):
            st = os.stat(path)
            assert stat.S_IMODE(st.st_mode) == mode
            if group is not None:
                assert st.st_gid == grp.getgrnam(group).gr_gid

    try:
        with umask(0o000):
            asyncio.run(main())
    finally:
        os.rmdir(d)


def test_mode_problem_names_what_is_too_open(tmp_path):
    gid = os.getegid()

    def problem(mode, group=None, is_dir=True):
        p = tmp_path / f"x{mode:o}{group}{is_dir}"
        p.mkdir() if is_dir else p.write_text("")
        p.chmod(mode)
        return perms.mode_problem(p.stat(), group)

    assert problem(0o700) is None and problem(0o600, is_dir=False) is None
    assert "other users have access" in problem(0o777)
    assert "no [state] group is set" in problem(0o750)
    assert problem(0o750, gid) is None and problem(0o2750, gid) is None
    assert problem(0o640, gid, is_dir=False) is None
    assert "its group may write" in problem(0o770, gid)
    assert "not the [state] group" in problem(0o750, gid + 1)
    assert perms.fix_command("/s", True, None) == "chmod -R go-rwx /s"


# -- the daemon ---------------------------------------------------------------

@pytest.fixture
def daemon(tmp_path):
    d = Daemon(tmp_path)
    yield d
    d.cleanup()


def test_daemon_under_umask_0_creates_its_state_private(daemon, tmp_path):
    with umask(0o000):                            # the daemon inherits it
        daemon.start()
    try:
        assert stat.S_IMODE(os.stat(daemon.socket).st_mode) == 0o600
    finally:
        assert daemon.stop() == 0
    for d in ("journal", "proofs"):
        got = modes(tmp_path / d)
        assert got["."] == 0o700 and "LOCK" in got, got
        assert set(v for k, v in got.items() if k != ".") == {0o600}, got


def test_daemon_refuses_a_world_open_state_directory_and_leaves_it(daemon, tmp_path):
    journal = tmp_path / "journal"
    journal.mkdir()
    journal.chmod(0o777)
    r = subprocess.run([sys.executable, "-m", "zksidecar.tools.cli", "daemon", "--config",
                        str(daemon.config)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert (f"configuration: [journal] dir: {journal}: directory is mode 0777: other users have "
            f"access; the daemon changes no mode it did not set: `chmod -R go-rwx {journal}`"
            in lines[0])
    assert stat.S_IMODE(journal.stat().st_mode) == 0o777 and os.listdir(journal) == []


def test_daemon_refuses_world_readable_files_of_an_older_version(daemon, tmp_path):
    """A state directory made before modes were set: 0755 with 0644 files."""
    with umask(0o022):
        journal = tmp_path / "journal"
        journal.mkdir(mode=0o700)
        (journal / "journal-000000.zkj").write_bytes(b"")
    r = subprocess.run([sys.executable, "-m", "zksidecar.tools.cli", "daemon", "--check-config",
                        "--config", str(daemon.config)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert f"{journal}/journal-000000.zkj: file is mode 0644: other users have access" in r.stderr


# -- what the admin commands make: never wider than the state they came from --

def owned(root, gid: int | None, d: int, f: int, skip=()) -> None:
    """Every path under `root` but `skip` has mode `d` (a directory) or `f`
    (a file), and the group `gid` when one is given."""
    for p, m in modes(root).items():
        if p in skip:
            continue
        full = os.path.join(root, p)
        assert m == (d if os.path.isdir(full) else f), (p, oct(m))
        if gid is not None:
            assert os.lstat(full).st_gid == gid, p


@pytest.mark.parametrize("group, d, f", [(None, 0o700, 0o600), (GROUP, 0o750, 0o640)])
def test_archive_and_export_are_shared_as_the_store_whatever_the_umask(tmp_path, group, d, f):
    """`store archive --to` and `export --out` copy proofs, which carry their
    batches' records: under umask 022 they are 0600 in 0700 directories (the
    store's group's 0640/0750 for a store shared with it), as is the index
    the archive rewrites; an --to the operator made keeps its mode."""
    from test_store import chain
    from zksidecar.tools import cli
    store = tmp_path / "store"
    proofs = chain(0, 4)
    with umask(0o022):
        with ProofStore(str(store), fsync=False, segment_bytes=len(proofs[0]) + 64, group=group) as s:
            for b, raw in enumerate(proofs):
                s.put(0, b, raw)
        assert cli.main(["export", "--store", str(store), "--symbol", "0", "--out",
                         str(tmp_path / "out" / "chain")]) == 0
        assert cli.main(["store", "archive", str(store), "--keep", "3", "--to",
                         str(tmp_path / "arch" / "one")]) == 0
        mine = tmp_path / "handed-over"            # made by the operator: the operator's sharing
        mine.mkdir(mode=0o755)
        assert cli.main(["store", "archive", str(store), "--keep", "2", "--to", str(mine)]) == 0
    gid = None if group is None else grp.getgrnam(group).gr_gid
    assert sorted(os.listdir(tmp_path / "out" / "chain")) == [
        "batch-000000.zkb", "batch-000001.zkb", "batch-000002.zkb", "batch-000003.zkb", "manifest.json"]
    assert sorted(os.listdir(tmp_path / "arch" / "one" / "symbol-0")) == ["batch-000000.zkb", "manifest.json"]
    assert sorted(os.listdir(mine / "symbol-0")) == ["batch-000001.zkb", "manifest.json"]
    for root in ("out", "arch", "store"):
        owned(tmp_path / root, gid, d, f)
    assert stat.S_IMODE(mine.stat().st_mode) == 0o755
    owned(mine, gid, d, f, skip={"."})


@pytest.mark.parametrize("group, d, f", [(None, 0o700, 0o600), (GROUP, 0o750, 0o640)])
def test_journal_repair_sets_aside_with_the_journals_modes_whatever_the_umask(tmp_path, group, d, f):
    """The damaged tail `journal repair` copies aside is made as the
    journal's files are (it is order flow too); whole segments set aside
    keep their modes."""
    from zksidecar.daemon.journal import set_aside_corruption
    jdir = tmp_path / "journal"
    with umask(0o022):
        with Journal(str(jdir), segment_bytes=256, group=group) as j, \
                ProofStore(str(tmp_path / "p"), fsync=False, segment_bytes=256) as s:
            fill(j, s)
        first = jdir / "journal-000000.zkj"
        raw = bytearray(first.read_bytes())
        raw[40] ^= 0xFF                           # inside its first entry's records: damaged
        first.write_bytes(bytes(raw))
        notes = set_aside_corruption(str(jdir))
    assert any("journal-000000.zkj.corrupt-0" in n and "bytes from byte" in n for n in notes), notes
    assert any("set aside whole" in n for n in notes), notes
    names = os.listdir(jdir)
    assert "journal-000000.zkj.corrupt-0" in names and "journal-000001.zkj.corrupt-0" in names
    owned(jdir, None if group is None else grp.getgrnam(group).gr_gid, d, f)
