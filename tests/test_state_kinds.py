"""A state path of the wrong kind (daemon/state_dirs.py, docs/DEPLOY.md
"What the daemon checks before it starts"; docs/ADMIN.md): the daemon and
`--check-config` refuse a [journal] dir holding a store's or an exported
chain's files and a [store] dir holding a journal's or a chain's, naming
the files and a swap; a new, empty directory is still a first start.  The
commands that work on an existing store never make one: a directory
without a store's files is exit 2, naming it, and left as it was."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from daemon_helpers import Daemon
from test_cli import run
from test_config import host, problems, state  # noqa: F401  (fixtures)
from test_store import chain, store_of
from zksidecar.daemon.config import load
from zksidecar.daemon.journal import Journal
from zksidecar.daemon.store import ProofStore


def journal_at(d) -> None:
    Journal(str(d), segment_bytes=256).close()


def store_at(d) -> None:
    ProofStore(str(d), fsync=False).close()


def chain_at(tmp_path, d) -> None:
    """An exported chain in `d`, as `zksidecar export` writes it."""
    store_of(tmp_path / "source", {0: list(enumerate(chain(0, 1)))})
    assert subprocess.run([sys.executable, "-m", "zksidecar.tools.cli", "export", "--store",
                           str(tmp_path / "source"), "--symbol", "0", "--out", str(d)],
                          capture_output=True).returncode == 0


def dirs(state) -> tuple[str, str]:
    return state["journal"]["dir"], state["store"]["dir"]


def test_new_and_own_kind_directories_pass(tmp_path, state, host):
    load(None, state, host=host)                      # missing: the daemon's first start
    j, s = dirs(state)
    os.makedirs(j, mode=0o700)
    os.makedirs(s, mode=0o700)
    load(None, state, host=host)                      # new and empty
    journal_at(j)
    store_at(s)
    load(None, state, host=host)                      # each holding its own kind's files


def test_swapped_directories_are_named_as_a_swap(tmp_path, state, host):
    j, s = dirs(state)
    journal_at(s)                                     # the journal where the store should be
    store_at(j)
    before = {d: sorted(os.listdir(d)) for d in (j, s)}
    ps = problems(state, host)
    assert len(ps) == 1, ps
    assert ps[0].startswith(f"[journal] dir: {j} holds a proof store's files (index.zki, store-000000.zkd) "
                            f"and the [store] dir {s} a journal's (journal-000000.zkj): [journal] dir and "
                            "[store] dir look swapped")
    assert {d: sorted(os.listdir(d)) for d in (j, s)} == before


@pytest.mark.parametrize("role, other, found, hint", [
    ("journal", store_at, "a proof store's files (index.zki, store-000000.zkd), not a journal's",
     "is it the [store] dir?"),
    ("store", journal_at, "a journal's files (journal-000000.zkj), not a proof store's", "is it the [journal] dir?"),
])
def test_a_directory_holding_the_others_files_is_refused(tmp_path, state, host, role, other, found, hint):
    d = state[role]["dir"]
    other(d)
    ps = problems(state, host)
    assert len(ps) == 1 and ps[0].startswith(f"[{role}] dir: {d} holds {found}: {hint}"), ps


def test_stray_files_beside_a_directorys_own_are_refused(tmp_path, state, host):
    """What a start with swapped directories left (an index beside a journal)."""
    j, _ = dirs(state)
    journal_at(j)
    store_at(j + "-tmp")
    os.rename(os.path.join(j + "-tmp", "index.zki"), os.path.join(j, "index.zki"))
    ps = problems(state, host)
    assert len(ps) == 1 and "holds a proof store's files (index.zki)" in ps[0], ps


@pytest.mark.parametrize("role", ["journal", "store"])
def test_an_exported_chain_is_no_state_directory(tmp_path, state, host, role):
    d = state[role]["dir"]
    chain_at(tmp_path, d)
    ps = problems(state, host)
    assert len(ps) == 1 and ps[0].startswith(
        f"[{role}] dir: {d} holds an exported chain's files (batch-000000.zkb, manifest.json)"), ps
    assert "not a state directory" in ps[0]


#: a wrong-kind layout of the daemon's state directories -> what its refusal says
WRONG_KINDS = {
    "swapped": (lambda tmp: (journal_at(tmp / "proofs"), store_at(tmp / "journal")),
                "look swapped"),
    "a store as the journal": (lambda tmp: store_at(tmp / "journal"),
                               "holds a proof store's files (index.zki, store-000000.zkd), not a journal's"),
    "a journal as the store": (lambda tmp: journal_at(tmp / "proofs"),
                               "holds a journal's files (journal-000000.zkj), not a proof store's"),
    "a chain as the store": (lambda tmp: chain_at(tmp, tmp / "proofs"),
                             "holds an exported chain's files (batch-000000.zkb, manifest.json)"),
}


@pytest.mark.parametrize("layout", sorted(WRONG_KINDS))
def test_the_daemon_refuses_wrong_kind_directories_and_writes_nothing(tmp_path, layout):
    """Exit 2 from the start as from --check-config: no retry changes what
    the directories hold, so the units' RestartPreventExitStatus=2 leaves it
    to the operator instead of restarting the daemon in a loop."""
    daemon = Daemon(tmp_path)
    make, said = WRONG_KINDS[layout]
    make(tmp_path)
    before = {d: sorted(os.listdir(tmp_path / d)) for d in ("journal", "proofs") if (tmp_path / d).exists()}
    for flags in (["--check-config"], []):
        r = subprocess.run([sys.executable, "-m", "zksidecar.tools.cli", "daemon", *flags, "--config",
                            str(daemon.config)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert said in r.stderr, r.stderr
    assert {d: sorted(os.listdir(tmp_path / d)) for d in ("journal", "proofs")
            if (tmp_path / d).exists()} == before


# -- the commands on an existing store ------------------------------------------

STORE_COMMANDS = {
    "store prune": lambda d, tmp: ["store", "prune", d, "--keep", "5"],
    "store archive": lambda d, tmp: ["store", "archive", d, "--keep", "5", "--to", str(tmp / "arch")],
    "verify --store": lambda d, tmp: ["verify", "--store", d],
    "export": lambda d, tmp: ["export", "--store", d, "--symbol", "0", "--out", str(tmp / "out")],
    "receipt --store": lambda d, tmp: ["receipt", "--store", d, "--symbol", "0", "--seq", "1", "--out",
                                       str(tmp / "r.bin")],
}


@pytest.mark.parametrize("command", sorted(STORE_COMMANDS))
@pytest.mark.parametrize("kind", ["empty", "journal", "chain"])
def test_commands_on_a_store_never_make_one(tmp_path, capsys, command, kind):
    d = tmp_path / "d"
    if kind == "empty":
        d.mkdir()
    elif kind == "journal":
        journal_at(d)
    else:
        chain_at(tmp_path, d)
    before = sorted(os.listdir(d))
    code, _, err = run(STORE_COMMANDS[command](str(d), tmp_path), capsys)
    # receipt also reads an archive, which is a chain: this one's batch has no private data
    assert code == (1 if (command, kind) == ("receipt --store", "chain") else 2) and str(d) in err, err
    if command != "receipt --store":           # receipt looks for a zk store or an archive
        assert "no proof store here (no index.zki, no store-NNNNNN.zkd)" in err, err
        assert ("it is empty" if kind == "empty" else f"it holds {', '.join(before)}") in err, err
    assert sorted(os.listdir(d)) == before
    assert not any((tmp_path / n).exists() for n in ("arch", "out", "r.bin"))


def test_a_store_that_exists_is_still_opened(tmp_path, capsys):
    store_of(tmp_path / "s", {0: list(enumerate(chain(0, 2)))})
    code, out, err = run(["store", "prune", str(tmp_path / "s"), "--keep", "5"], capsys)
    assert code == 0 and "nothing to prune" in out, err
    with ProofStore(str(tmp_path / "s"), create=False) as s:
        assert len(s) == 2
