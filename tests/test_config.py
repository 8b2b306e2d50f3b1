"""daemon/config.py: every rule a configuration must pass before the daemon
opens anything, each with its message naming the key.

The machine is a `Host` described by each test (cores, groups, memory,
/dev/shm's free space and contents), so no test depends on the box it runs
on, fills /dev/shm, or needs 200 cores.  The state paths are real paths
under tmp_path."""
from __future__ import annotations

import dataclasses
import io
import os
import re
import struct
import subprocess
import sys
from types import SimpleNamespace

import pytest

from zksidecar import ringbuf
from zksidecar.daemon.config import (RING_NAME_MAX, Config, ConfigError, Host, check_main, load,
                                     memory_estimate)
from zksidecar.daemon import formats as fm
from zksidecar.daemon import snapshot
from zksidecar.ringbuf import layout

GiB = 1 << 30
GROUPS = {"ops": 901, "engine": 902}


def getgrnam(name):
    if name not in GROUPS:
        raise KeyError(name)
    return SimpleNamespace(gr_name=name, gr_gid=GROUPS[name])


def statvfs_free(free: int):
    """A statvfs of a file system with `free` bytes available."""
    return lambda path: SimpleNamespace(f_bavail=free // 4096, f_frsize=4096)


@pytest.fixture
def host(tmp_path):
    """A 2-core box with 64 GiB, 1 GiB of /dev/shm (empty, under tmp_path),
    groups `ops` and `engine` of which this process (uid 1000) is a member."""
    shm = tmp_path / "shm"
    shm.mkdir()
    return Host(cpus=lambda: {0, 1}, statvfs=statvfs_free(GiB), memory=lambda: (64 * GiB, "test memory"),
                getgrnam=getgrnam, groups=lambda: set(GROUPS.values()), euid=lambda: 1000,
                unprivileged_port_start=lambda: 1024, shm_dir=str(shm))


@pytest.fixture
def state(tmp_path):
    """Settings putting the state under tmp_path (0700, as pytest makes it)."""
    return {"journal": {"dir": str(tmp_path / "var" / "journal")},
            "store": {"dir": str(tmp_path / "var" / "proofs")},
            "admin": {"socket": str(tmp_path / "var" / "admin.sock")}}


def settings(base: dict, /, **sections) -> dict:
    out = {k: dict(v) for k, v in base.items()}
    for name, values in sections.items():
        out.setdefault(name, {}).update(values)
    return out


def problems(base, host, /, **sections) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(None, settings(base, **sections), host=host)
    for p in info.value.problems:         # every message: "[section] key: why, got X"
        assert re.match(r"^\[[a-z]+\] [a-z_]+: .+, got .+$", p), p
    return info.value.problems


def one_problem(base, host, key: str, /, **sections) -> str:
    ps = problems(base, host, **sections)
    assert len(ps) == 1 and ps[0].startswith(key + ": "), ps
    return ps[0]


def test_defaults_pass_every_rule(state, host):
    assert load(None, state, host=host) == load(None, state, machine=False) == \
        dataclasses.replace(Config(), **{k: getattr(load(None, state, machine=False), k)
                                         for k in ("journal", "store", "admin")})


# -- cores -------------------------------------------------------------------

def test_ingest_core_outside_the_affinity_is_refused(state, host):
    msg = one_problem(state, host, "[ingest] core", ingest={"core": 99})
    assert "core 99 is not one this process may run on" in msg and "0-1" in msg
    assert msg.endswith("got 99")
    assert load(None, settings(state, ingest={"core": 1}), host=host).ingest.core == 1


def test_producer_heartbeat_limit_is_a_key_with_the_old_default(state, host):
    from zksidecar.daemon.ingest import PRODUCER_STALE_S
    assert load(None, state, host=host).ingest.producer_stale_s == PRODUCER_STALE_S == 5.0
    assert load(None, settings(state, ingest={"producer_stale_s": 2}),
                host=host).ingest.producer_stale_s == 2
    for bad in (0, 0.1, 4000):
        msg = one_problem(state, host, "[ingest] producer_stale_s",
                          ingest={"producer_stale_s": bad})
        assert "from 0.5 to 3600 seconds" in msg


def test_worker_cores_outside_the_affinity_are_refused(state, host):
    msg = one_problem(state, host, "[workers] cores", workers={"cores": [1, 99, 100]})
    assert "99-100 not among the cores" in msg and msg.endswith("got [1, 99, 100]")


def test_the_real_affinity_is_the_default(state):
    usable = os.sched_getaffinity(0)
    outside = max(usable) + 1
    with pytest.raises(ConfigError, match=rf"\[ingest\] core: core {outside} is not one"):
        load(None, settings(state, ingest={"core": outside}))


# -- the rings ----------------------------------------------------------------

def test_ring_capacity_beyond_the_rings_limit_is_refused(state, host):
    msg = one_problem(state, host, "[ring] capacity", ring={"capacity": 1 << 40})
    assert "from 16 to 2^30" in msg and msg.endswith("got 1099511627776 (2^40)")
    for bad in (8, 1000, 0, -16):
        one_problem(state, host, "[ring] capacity", ring={"capacity": bad})


@pytest.mark.parametrize("name, why", [
    ("", "must be a name"),
    ("/", "must be a name"),
    ("/a/b", 'no other'),
    ("a/", "no other"),
    ("//a", "no other"),
    ("/..", "is a directory"),
    ("a\0b", "NUL"),
    ("/" + "x" * (RING_NAME_MAX + 1), f"over the {RING_NAME_MAX}"),
])
def test_ring_names_that_shm_open_cannot_take_are_refused(state, host, name, why):
    msg = one_problem(state, host, "[ring] ops", ring={"ops": name})
    assert why in msg and msg.endswith(f"got {name!r}")


def test_ring_name_limit_is_the_rings_own(state, host):
    """RING_NAME_MAX is what csrc/ring/zkring.h takes: a name that long is
    created, one byte more is refused by the C as well."""
    tag = f"zkcfg{os.getpid()}-"
    longest = tag + "x" * (RING_NAME_MAX - len(tag))
    load(None, settings(state, ring={"ops": longest}), host=host)
    ringbuf.create(longest, 16)
    try:
        assert os.path.exists("/dev/shm/" + longest)
    finally:
        ringbuf.unlink(longest)
    with pytest.raises(ringbuf.RingError):
        ringbuf.create(longest + "x", 16)
    assert not os.path.exists("/dev/shm/" + longest + "x")


def test_one_ring_under_two_spellings_is_refused(state, host):
    msg = one_problem(state, host, "[ring] completions", ring={"ops": "/zk-a", "completions": "zk-a"})
    assert "another ring than [ring] ops" in msg


def test_rings_larger_than_dev_shm_free_space_are_refused(state, host):
    small = dataclasses.replace(host, statvfs=statvfs_free(100 << 20))       # 100 MiB free
    cap = 1 << 20                                                             # 64 MiB a ring
    msg = one_problem(state, small, "[ring] capacity", ring={"capacity": cap})
    assert "2 ring(s) to create need 128 MiB" in msg and "100 MiB free" in msg
    # one ring already there (the daemon restarting): only the other needs room
    ring_file(small, "zk-ops", cap)
    load(None, settings(state, ring={"capacity": cap, "ops": "/zk-ops"}),
         host=dataclasses.replace(small, euid=os.geteuid))


def ring_file(host: Host, name: str, capacity: int, magic: int = layout.MAGIC,
              mode: int = 0o600) -> str:
    """A ring segment's header in the host's /dev/shm (this user's, `mode`)."""
    head = bytearray(layout.RECORDS_OFFSET)
    for field, value in (("magic", magic), ("version", layout.VERSION),
                         ("record_size", layout.RECORD_SIZE), ("capacity", capacity)):
        offset, fmt = layout.FIELDS[field]
        struct.pack_into(fmt, head, offset, value)
    path = os.path.join(host.shm_dir, name)
    with open(path, "wb") as f:
        f.write(head)
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize("mode", [0o666, 0o640, 0o604])
def test_an_existing_ring_others_may_open_is_refused(state, host, mode):
    """A segment the daemon's open would refuse as someone else's
    (RingForeign) is a problem of --check-config too, by the open's own
    check: wider than 0600 without [ring] group."""
    mine = dataclasses.replace(host, euid=os.geteuid)
    ring_file(host, "zk-ops", 1 << 16, mode=mode)
    msg = one_problem(state, mine, "[ring] ops", ring={"ops": "/zk-ops"})
    assert f"mode {mode:04o}; expected owner uid {os.geteuid()}" in msg and "within 0600" in msg
    os.chmod(os.path.join(host.shm_dir, "zk-ops"), 0o600)
    load(None, settings(state, ring={"ops": "/zk-ops"}), host=mine)


def test_an_existing_ring_of_another_owner_or_group_is_refused(state, host):
    path = ring_file(host, "zk-ops", 1 << 16)
    other = dataclasses.replace(host, euid=lambda: os.geteuid() + 1)
    msg = one_problem(state, other, "[ring] ops", ring={"ops": "/zk-ops"})
    assert f"expected owner uid {os.geteuid() + 1}" in msg
    # [ring] group: the segment must be that group's, within 0660
    os.chmod(path, 0o660)
    msg = one_problem(state, host, "[ring] ops", ring={"ops": "/zk-ops", "group": "ops"})
    assert f"group gid {GROUPS['ops']}" in msg and "within 0660" in msg


def test_an_existing_ring_of_another_capacity_or_not_a_ring_is_refused(state, host):
    ring_file(host, "zk-ops", 1 << 12)
    msg = one_problem(state, host, "[ring] ops", ring={"ops": "/zk-ops"})
    assert "holds 4096 records, not [ring] capacity 65536" in msg
    ring_file(host, "zk-ops", 1 << 16, magic=0)
    assert "is not a ring" in one_problem(state, host, "[ring] ops", ring={"ops": "/zk-ops"})


def test_missing_rings_with_create_off_are_refused(state, host):
    msg = problems(state, host, ring={"create": False, "ops": "/zk-o", "completions": "/zk-c"})
    assert [m.split(":")[0] for m in msg] == ["[ring] ops", "[ring] completions"]
    assert "does not exist and [ring] create is false" in msg[0]


# -- groups ------------------------------------------------------------------

@pytest.mark.parametrize("section", ["ring", "state"])
def test_unknown_group_is_refused(state, host, section):
    msg = one_problem(state, host, f"[{section}] group", **{section: {"group": "nosuch"}})
    assert "no such group" in msg and msg.endswith("got 'nosuch'")


def test_unknown_group_is_refused_on_this_machine(state):
    with pytest.raises(ConfigError, match=r"\[ring\] group: no such group"):
        load(None, settings(state, ring={"group": "zksidecar-no-such-group-x9"}))


@pytest.mark.parametrize("section", ["ring", "state"])
def test_a_group_this_process_is_not_in_is_refused(state, host, section):
    outsider = dataclasses.replace(host, groups=lambda: {GROUPS["engine"]})
    msg = one_problem(state, outsider, f"[{section}] group", **{section: {"group": "ops"}})
    assert "not a member of group ops" in msg and "EPERM" in msg
    # root may chown to any group
    load(None, settings(state, **{section: {"group": "ops"}}),
         host=dataclasses.replace(outsider, euid=lambda: 0))


# -- workers and memory ------------------------------------------------------

def test_worker_count_beyond_the_cores_is_refused(state, host):
    msg = one_problem(state, host, "[workers] count", workers={"count": 200})
    assert "at most 4, 2 per core" in msg and msg.endswith("got 200")
    load(None, settings(state, workers={"count": 4}), host=host)
    one_problem(state, host, "[workers] count", workers={"count": 3, "cores": [1]})


def test_memory_estimate_over_the_limit_is_refused(state, host):
    big = dataclasses.replace(host, cpus=lambda: set(range(64)), memory=lambda: (2 * GiB, "2 GiB box"))
    cfg = load(None, settings(state, workers={"count": 8}), host=big)   # 8 x 89 MiB fits
    est = memory_estimate(cfg)
    assert est["workers.count"] == 8 * ((45 << 20) + (11 << 10) * 2048)
    msg = one_problem(state, big, "[workers] count", workers={"count": 32})
    assert "over the 2.0 GiB of 2 GiB box" in msg and msg.endswith("got 32")
    # the shadow books: 2^16 symbols of 2^15 slots cannot fit (2^15, the
    # largest capacity whose one-operation trace, 2^16 rows, reaches 100 bits)
    msg = one_problem(state, big, "[book] max_symbols",
                      book={"capacity": 1 << 15, "max_symbols": 1 << 16}, batch={"max_batch_size": 1})


def test_memory_estimate_counts_a_zk_worker_at_its_own_peak(state, host):
    # benchmarks/worker_memory.py: a zk worker peaks ~2.5x a transparent one at 2^15 rows
    big = dataclasses.replace(host, cpus=lambda: set(range(64)), memory=lambda: (2 * GiB, "2 GiB box"))
    book = {"trace_length": 1 << 13, "max_symbols": 4}
    transparent = memory_estimate(load(None, settings(state, workers={"count": 4}, book=book), host=big))
    est = memory_estimate(load(None, settings(state, workers={"count": 4}, book=book, proofs={"mode": "zk"}),
                               host=big))
    assert est["workers.count"] == 4 * ((90 << 20) + (16 << 10) * (1 << 13))
    assert est["workers.count"] > 1.6 * transparent["workers.count"]
    assert {k: v for k, v in est.items() if k != "workers.count"} == \
        {k: v for k, v in transparent.items() if k != "workers.count"}
    # 8 workers at 2^13 rows: transparent ones fit 2 GiB, zk ones (8 x 218 MiB) do not
    load(None, settings(state, workers={"count": 8}, book=book), host=big)
    msg = one_problem(state, big, "[workers] count", workers={"count": 8}, book=book, proofs={"mode": "zk"})
    assert "8 zk worker(s) x (90 MiB + 16 KiB x 8192 trace rows)" in msg and msg.endswith("got 8")


def test_memory_limit_reads_this_machine():
    from zksidecar.daemon.config import _memory_limit

    limit, source = _memory_limit()
    import psutil

    assert 0 < limit <= psutil.virtual_memory().total and source


# -- trace and security --------------------------------------------------------

def test_trace_that_cannot_hold_one_operation_is_refused(state, host):
    msg = one_problem(state, host, "[book] trace_length", book={"capacity": 1024, "trace_length": 1024})
    assert "cannot hold one operation at capacity 1024" in msg and msg.endswith("got 1024 (2^10)")
    one_problem(state, host, "[book] trace_length", book={"trace_length": 100})
    load(None, settings(state, book={"capacity": 1024, "trace_length": 4096}), host=host)


def test_batch_size_whose_trace_outgrows_the_prover_is_refused(state, host):
    msg = one_problem(state, host, "[batch] max_batch_size", batch={"max_batch_size": 1 << 24})
    assert "over the ops domain's 2^20" in msg


def test_security_out_of_reach_at_the_trace_is_refused(state, host):
    # 2^18 operations of typical size need a 2^19-row ops cap beside a
    # 2^17-row book: under 100 bits at any query count (the LogUp sum's
    # algebraic degree, docs/SECURITY.md)
    msg = one_problem(state, host, "[workers] security_bits", book={"capacity": 1 << 17},
                      batch={"max_batch_size": 1 << 18})
    assert "out of reach" in msg
    assert "a smaller [book] capacity or [batch] max_batch_size makes the trace shorter" in msg
    msg = one_problem(state, host, "[workers] security_bits", workers={"security_bits": 122})
    assert "out of reach" in msg and "no heights reach it (the shortest leave 111)" in msg and "shorter" not in msg
    load(None, settings(state, workers={"security_bits": 105}), host=host)


# -- the other keys -------------------------------------------------------------

def test_busy_spin_needs_an_ingest_core_of_its_own(state, host):
    assert "needs [ingest] core" in one_problem(state, host, "[ring] idle", ring={"idle": "busy_spin"})
    msg = one_problem(state, host, "[ring] idle", ring={"idle": "busy_spin"}, ingest={"core": 1},
                      workers={"cores": [0, 1]})
    assert "also gives a worker" in msg
    load(None, settings(state, ring={"idle": "busy_spin"}, ingest={"core": 1},
                        workers={"cores": [0]}), host=host)


def test_one_directory_for_journal_and_store_is_refused(state, host, tmp_path):
    same = str(tmp_path / "var" / "journal")
    assert "must differ from [journal] dir" in one_problem(state, host, "[store] dir",
                                                            store={"dir": same + "/"})


@pytest.mark.parametrize("key, value, why", [
    ("journal.segment_mib", 0, "from 1 to 65,536"),
    ("journal.fsync", "sometimes", "must be one of"),
    ("book.max_symbols", 0, "from 1 to 2^32"),
    ("batch.critical_qty", 1 << 32, "quantities are u32"),
    ("workers.security_bits", 79, "from 80 to 122"),
    ("admin.tcp_port", 70000, "a port"),
    ("journal.dir", "", "must be a path"),
])
def test_values_out_of_range_name_their_key(state, host, key, value, why):
    section, name = key.split(".")
    msg = one_problem(state, host, f"[{section}] {name}", **{section: {name: value}})
    assert why in msg


def test_unknown_keys_and_wrong_types_name_the_key(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[ring]\ncapacty = 16\n")
    with pytest.raises(ConfigError, match=r"^\[ring\] capacty: unknown key"):
        load(str(path))
    path.write_text('[workers]\ncount = "2"\n')
    with pytest.raises(ConfigError, match=r"^\[workers\] count: must be int, got str '2'"):
        load(str(path))


def test_privileged_tcp_port_is_refused_without_privilege(state, host):
    msg = one_problem(state, host, "[admin] tcp_port", admin={"tcp_port": 80})
    assert "ip_unprivileged_port_start" in msg
    load(None, settings(state, admin={"tcp_port": 8080}), host=host)


def test_admin_socket_path_too_long_for_sun_path_is_refused(state, host, tmp_path):
    long_dir = tmp_path / ("d" * 90)
    long_dir.mkdir(mode=0o700)
    msg = one_problem(state, host, "[admin] socket", admin={"socket": str(long_dir / "admin.sock")})
    assert "over the 107 of a Unix socket address" in msg


def test_admin_socket_directory_must_exist_or_be_made_by_the_daemon(state, host, tmp_path):
    msg = one_problem(state, host, "[admin] socket", admin={"socket": str(tmp_path / "no" / "a.sock")})
    assert "does not exist" in msg
    # tmp_path/var does not exist either, but the journal's creation makes it
    load(None, state, host=host)


def test_admin_socket_in_a_directory_others_may_write_is_refused(state, host, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    msg = one_problem(state, host, "[admin] socket", admin={"socket": str(shared / "a.sock")})
    assert "mode 0777" in msg
    shared.chmod(0o1777)                       # sticky, like /tmp: others cannot replace ours
    load(None, settings(state, admin={"socket": str(shared / "a.sock")}), host=host)


def test_state_directory_that_cannot_be_created_is_refused(state, host, tmp_path):
    (tmp_path / "file").write_text("x")
    msg = one_problem(state, host, "[journal] dir", journal={"dir": str(tmp_path / "file" / "j")})
    assert "is not a directory" in msg


def test_settings_the_journals_chain_fixes_are_refused_naming_the_recorded_value(state, host):
    """A snapshot records the book capacity and the ops-row cap its journal's
    batches were cut under (daemon/snapshot.py unfit): the capacity cannot
    change, the cap may grow, never shrink; the snapshot is left as it is."""
    journal = state["journal"]["dir"]
    os.makedirs(journal, mode=0o700)
    # written by a run with [batch] max_batch_size = 2048: a cap of 4096 rows
    path = snapshot.write(journal, snapshot.Snapshot(3, 64, 1024, 4096, zk=False))
    written = open(path, "rb").read()
    grown = {"max_batch_size": 2048}
    load(None, settings(state, batch=grown), host=host)                   # as it was written
    load(None, settings(state, batch={"max_batch_size": 4096}), host=host)  # a cap of 8192
    assert "this journal's books have 1024 slots" in one_problem(
        state, host, "[book] capacity", book={"capacity": 2048}, batch=grown)
    msg = one_problem(state, host, "[batch] max_batch_size")             # the default: 2048 rows
    assert "ops rows 2048, below the 4096" in msg and "never shrink" in msg
    assert "below the 4096" in one_problem(state, host, "[book] trace_length",
                                           book={"trace_length": 2048})
    assert open(path, "rb").read() == written and snapshot.listed(journal)[0][2] == path
    # another release's snapshot (a version this build does not read, its header sound) is no
    # damage: the start is refused naming it, and it is left as it is
    other = bytearray(written)
    other[4] = 3
    at = snapshot.HEADER_CRC_AT
    other[at:at + 4] = fm.crc32(bytes(other[:at])).to_bytes(4, "little")
    open(path, "wb").write(other)
    msg = one_problem(state, host, "[journal] dir", batch=grown)
    assert f"{path}: corrupt snapshot at byte 4: format version 3" in msg, msg
    assert "a snapshot another release of zksidecar wrote, not a damaged one" in msg
    assert open(path, "rb").read() == other
    # a snapshot whose header is damaged is recovery's to set aside, not a configuration problem
    with open(path, "r+b") as f:
        f.write(b"garbage!")
    load(None, state, host=host)


# -- the commands: the daemon and --check-config --------------------------------

def bad_config(tmp_path, **ring) -> str:
    path = tmp_path / "bad.toml"
    lines = ["[ring]"] + [f"{k} = {v}" for k, v in ring.items()] + [
        "[journal]", f'dir = "{tmp_path / "journal"}"', "[store]", f'dir = "{tmp_path / "proofs"}"',
        "[admin]", f'socket = "{tmp_path / "admin.sock"}"']
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def zksidecar(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zksidecar.tools.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def test_daemon_with_a_bad_configuration_exits_2_with_one_line_and_opens_nothing(tmp_path):
    tag = f"zkcfg{os.getpid()}"
    path = bad_config(tmp_path, capacity=1 << 40, ops=f'"/{tag}-ops"', completions=f'"/{tag}-c"')
    r = zksidecar("daemon", "--config", path)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = (r.stdout + r.stderr).strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, lines
    assert "configuration: [ring] capacity: must be a power of two from 16 to 2^30" in lines[0]
    # nothing was opened or created: no journal replayed, no ring
    assert not (tmp_path / "journal").exists() and not (tmp_path / "proofs").exists()
    assert not os.path.exists(f"/dev/shm/{tag}-ops")


def test_check_config_says_ok_or_lists_every_problem_and_creates_nothing(tmp_path):
    tag = f"zkcfg{os.getpid()}"
    good = bad_config(tmp_path, ops=f'"/{tag}-ops"', completions=f'"/{tag}-c"')
    r = zksidecar("daemon", "--check-config", "--config", good)
    assert r.returncode == 0 and r.stdout.startswith(f"configuration OK: {good}"), r.stderr
    assert "ops rows at most 2048 a batch" in r.stdout
    bad = bad_config(tmp_path, capacity=1 << 40, ops='"/a/b"', group='"zksidecar-no-such-group-x9"')
    r = zksidecar("daemon", "--check-config", "--config", bad)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert [ln.split(":")[2].strip() for ln in lines] == ["[ring] ops", "[ring] capacity"], lines
    assert not (tmp_path / "journal").exists() and not os.path.exists(f"/dev/shm/{tag}-ops")


def test_check_main_reports_machine_problems_one_per_line(state, host, tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text('[ingest]\ncore = 99\n[workers]\ncount = 100\n[ring]\ngroup = "nosuch"\n'
                    f'[journal]\ndir = "{state["journal"]["dir"]}"\n[store]\ndir = "{state["store"]["dir"]}"\n'
                    f'[admin]\nsocket = "{state["admin"]["socket"]}"\n')
    assert check_main(str(path), host=host) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert [ln.split(": ")[2] for ln in err] == ["[ingest] core", "[workers] count", "[ring] group"]


def test_machine_false_reads_names_without_looking_at_the_machine(state):
    cfg = load(None, settings(state, ingest={"core": 4000}, ring={"group": "nosuch-x9"}),
               machine=False)
    assert cfg.ingest.core == 4000


def test_check_main_reports_a_taken_admin_socket_and_port(state, host, tmp_path, capsys):
    """Another daemon's live admin socket, a TCP port another process
    listens on: --check-config says so (the bind's own checks), exit 2;
    the socket and the listener are left alone."""
    import socket

    sock_path = state["admin"]["socket"]
    os.makedirs(os.path.dirname(sock_path), mode=0o700)
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        live.bind(sock_path)
        live.listen(1)
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        path = tmp_path / "c.toml"
        path.write_text(f'[journal]\ndir = "{state["journal"]["dir"]}"\n[store]\ndir = "{state["store"]["dir"]}"\n'
                        f'[admin]\nsocket = "{sock_path}"\ntcp_port = {port}\n')
        assert check_main(str(path), host=host) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 2, err
        assert err[0].startswith("zksidecar: cannot start now: [admin] socket: admin socket ")
        assert "is in use: another daemon is listening on it" in err[0]
        assert err[1].startswith(f"zksidecar: cannot start now: [admin] tcp_port: cannot listen "
                                 f"on 127.0.0.1:{port}: ")
        assert "another process listens there" in err[1]
        assert os.path.exists(sock_path)
        live.close()
        taken.close()
        os.unlink(sock_path)             # gone, and nothing listening on the port: usable
        assert check_main(str(path), host=host) == 0
    finally:
        live.close()
        taken.close()


@pytest.mark.parametrize("mode", ["transparent", "zk"])
def test_check_main_takes_an_empty_store_dir_made_before_the_first_start(state, host, tmp_path, capsys, mode):
    """A [store] dir made ahead of the first start (systemd's StateDirectory=,
    a mount point, `install -d -m700`) holds no store yet: the daemon makes
    one there, so --check-config must not refuse it ("no proof store
    here"); a transparent configuration still refuses zk files in it."""
    for key in ("journal", "store"):
        os.makedirs(state[key]["dir"], mode=0o700)
    path = tmp_path / "c.toml"
    path.write_text(f'[journal]\ndir = "{state["journal"]["dir"]}"\n[store]\ndir = "{state["store"]["dir"]}"\n'
                    f'[admin]\nsocket = "{state["admin"]["socket"]}"\n[proofs]\nmode = "{mode}"\n'
                    + ('[book]\ntrace_length = 2048\ncapacity = 1024\n[workers]\nsecurity_bits = 80\n'
                       if mode == "zk" else ""))
    assert check_main(str(path), host=host, out=io.StringIO()) == 0, capsys.readouterr().err
    assert os.listdir(state["store"]["dir"]) == []            # nothing made
    if mode == "transparent":
        open(os.path.join(state["store"]["dir"], "zk-chain.json"), "w").close()
        assert check_main(str(path), host=host, out=io.StringIO()) == 2
        err = capsys.readouterr().err
        assert "is a zk store (zk-chain.json)" in err
        # a new store alone would take the zk journal's batches, proven in the clear
        assert "a new [store] dir and a new [journal] dir with it" in err


def test_check_main_names_the_journal_whose_mode_it_cannot_read(state, host, tmp_path, capsys):
    """A journal segment --check-config cannot read for the journal's mode
    (here a directory under a segment's name) is the [journal] dir's
    problem, not the store's: one line naming the file, exit 2."""
    os.makedirs(state["journal"]["dir"], mode=0o700)
    bad = os.path.join(state["journal"]["dir"], "journal-000000.zkj")
    os.mkdir(bad, 0o700)
    path = tmp_path / "c.toml"
    path.write_text(f'[journal]\ndir = "{state["journal"]["dir"]}"\n[store]\ndir = "{state["store"]["dir"]}"\n'
                    f'[admin]\nsocket = "{state["admin"]["socket"]}"\n')
    assert check_main(str(path), host=host, out=io.StringIO()) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("zksidecar: configuration: [journal] dir: "), err
    assert f"{bad}: cannot read" in err[0]
