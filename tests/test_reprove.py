"""`zksidecar reprove` (tools/reprove.py): a stored proof damaged at rest,
before any snapshot recovery replays from, is proven again from the
journal, checked to link with its stored neighbours, and stored superseding
the damaged bytes; the chain verifies and exports again.  A proof that does
not link is refused and nothing is stored; a batch the journal no longer
holds is named with what is left to the operator."""
from __future__ import annotations

import dataclasses
import functools
import grp
import io
import os
import stat

import numpy as np
import pytest

from journal_files import set_all_flags
from test_recovery import BITS, CAP, POLICY, T, check_chain, flow, run_live
from zksidecar.daemon.config import (BatchConfig, BookConfig, Config, JournalConfig, StateConfig, StoreConfig,
                                     WorkersConfig)
from zksidecar.daemon import formats as fm
from zksidecar.daemon import zk_store as ZS
from zksidecar.daemon.journal import Journal
from zksidecar.daemon.metrics import Metrics
from zksidecar.daemon.rebuild import Rebuilder
from zksidecar.daemon.sequencer import Sequencer
from zksidecar.daemon.store import ProofStore
from zksidecar.tools import reprove

#: the test chains' configuration (20-bit proofs: below what a configuration file may ask)
CONFIG = Config(book=BookConfig(capacity=CAP, trace_length=T),
                batch=BatchConfig(max_batch_size=POLICY.max_batch_size),
                workers=WorkersConfig(security_bits=BITS))


def damage(tmp_path, batch_id: int) -> bytes:
    """Flip a byte in the middle of the stored proof of symbol 0 `batch_id`;
    returns its sound bytes."""
    with ProofStore(str(tmp_path / "proofs"), fsync=False, readonly=True) as store:
        sound = store.get(0, batch_id)
    path = tmp_path / "proofs" / "store-000000.zkd"
    raw = bytearray(path.read_bytes())
    at = raw.find(sound) + len(sound) // 2
    raw[at] ^= 0x40
    path.write_bytes(bytes(raw))
    return sound


def run(tmp_path, journal_dir=None) -> int:
    with Journal(str(journal_dir or tmp_path / "journal"), fsync="never") as journal, \
            ProofStore(str(tmp_path / "proofs"), fsync=False) as store:
        return reprove.reprove_all(CONFIG, journal, store, out=io.StringIO())


@pytest.mark.parametrize("batch_id", [0, 1, 2])
def test_a_damaged_proof_is_proven_again_and_links(tmp_path, batch_id):
    """Batches 0 (linked to the empty book), 1 (both neighbours) and 2 (the
    newest): the same bytes as the proof that was damaged (a proof is a
    function of its inputs), and the chain verifies."""
    run_live(tmp_path, flow(72))                      # batches 0, 1, 2
    sound = damage(tmp_path, batch_id)
    with pytest.raises(AssertionError):
        check_chain(tmp_path, 72)
    out = io.StringIO()
    with Journal(str(tmp_path / "journal"), fsync="never") as journal, \
            ProofStore(str(tmp_path / "proofs"), fsync=False) as store:
        assert reprove.reprove_all(CONFIG, journal, store, out=out) == 0
        assert store.check(0, batch_id) is None and store.get(0, batch_id) == sound
    linked = {0: "the empty book and batch 1", 1: "batch 0 and batch 2", 2: "batch 1"}[batch_id]
    assert f"symbol 0 batch {batch_id}: proven again from the journal" in out.getvalue()
    assert f"it links to {linked}" in out.getvalue()
    check_chain(tmp_path, 72)
    assert run(tmp_path) == 0                         # nothing damaged any more


def test_a_proof_that_does_not_link_is_refused_and_nothing_is_stored(tmp_path, monkeypatch, capsys):
    """A rebuild that gives another chain's batch 1 (a test double for a
    journal that disagrees with the store): its proof verifies alone and
    proves its job, but its pre-state is not batch 0's post-state."""
    run_live(tmp_path, flow(72))
    damage(tmp_path, 1)
    other = flow(72)
    other["price"] += 1                               # another stream, another book
    seq = Sequencer(CAP, T, POLICY, Metrics())
    stranger = [b for b in seq.feed(other, np.zeros(len(other), np.int64), 0.0) if b.batch_id == 1][0]
    monkeypatch.setattr(Rebuilder, "batch", lambda self, mark: stranger)
    data = (tmp_path / "proofs" / "store-000000.zkd").read_bytes()
    assert run(tmp_path) == 1
    assert "pre-state is not the previous post-state" in capsys.readouterr().err
    assert (tmp_path / "proofs" / "store-000000.zkd").read_bytes() == data


def test_a_batch_the_journal_no_longer_holds_is_named_with_what_is_left(tmp_path, capsys):
    run_live(tmp_path, flow(72))
    damage(tmp_path, 1)
    data = (tmp_path / "proofs" / "store-000000.zkd").read_bytes()
    assert run(tmp_path, journal_dir=tmp_path / "another-journal") == 1
    err = capsys.readouterr().err
    assert "symbol 0 batch 1: cannot be proven again: the journal no longer holds its mark" in err
    assert "backup's copy of the store segment" in err
    assert (tmp_path / "proofs" / "store-000000.zkd").read_bytes() == data


def test_the_command_refuses_a_running_daemons_state_and_a_zk_configuration_without_a_zk_chain(tmp_path, capsys):
    """Exit 2, one line: the journal's LOCK held (a daemon running), or a zk
    configuration whose store holds no zk chain (nothing is made there: no
    key, no chain record)."""
    conf = tmp_path / "z.toml"
    conf.write_text(f'[journal]\ndir = "{tmp_path / "journal"}"\n[store]\ndir = "{tmp_path / "proofs"}"\n')
    with Journal(str(tmp_path / "journal"), fsync="never"), ProofStore(str(tmp_path / "proofs"), fsync=False):
        assert reprove.main(str(conf)) == 2
    assert "LOCK file is held) (is the daemon running? stop it first)" in capsys.readouterr().err
    assert reprove.main(str(conf), out=io.StringIO()) == 0       # nothing stored, nothing damaged
    conf.write_text(conf.read_text() + '[proofs]\nmode = "zk"\n')
    assert reprove.main(str(conf)) == 2
    assert "holds no zk chain (no zk-chain.json, no zk proof): nothing of a zk chain to prove again" \
        in capsys.readouterr().err
    assert not {"zk-chain.json", "private"} & set(os.listdir(tmp_path / "proofs"))


def at(tmp_path) -> Config:
    """CONFIG with the test's journal and store."""
    return dataclasses.replace(CONFIG, journal=JournalConfig(dir=str(tmp_path / "journal"), fsync="never"),
                               store=StoreConfig(dir=str(tmp_path / "proofs"), fsync=False))


def refused_with_nothing_stored(tmp_path, capsys, monkeypatch, forge) -> str:
    """A chain of batch 0 alone, its proof damaged, then `forge()`:
    reprove under the test's configuration exits 2 and leaves the store's
    bytes as they were, before any proof is made.  Returns its stderr."""
    run_live(tmp_path, flow(24))                      # batch 0 alone
    damage(tmp_path, 0)
    forge()
    monkeypatch.setattr(reprove, "load", lambda path, machine: at(tmp_path))
    data = (tmp_path / "proofs" / "store-000000.zkd").read_bytes()
    assert reprove.main("unused.toml", out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert (tmp_path / "proofs" / "store-000000.zkd").read_bytes() == data
    return err


def test_a_zk_store_is_refused_under_a_transparent_configuration(tmp_path, capsys, monkeypatch):
    """A store the daemon's start refuses for its mode (here: a zk store by
    its chain record) is refused by reprove too, exit 2, before any proof is
    made: a transparent re-proof of a zk chain's batch would put its records
    in the clear into that store (batch 0 links to the empty book alone)."""
    err = refused_with_nothing_stored(tmp_path, capsys, monkeypatch,
                                      lambda: (tmp_path / "proofs" / "zk-chain.json").write_text("{}"))
    assert "is a zk store (zk-chain.json)" in err


def test_a_zk_chains_journal_is_refused_under_a_transparent_configuration(tmp_path, capsys, monkeypatch):
    """The journal's mode is checked as the daemon's start checks it: a
    journal whose entries a zk daemon wrote is refused, exit 2, before any
    proof is made (here forged beside a transparent store: the store's
    check alone would let its records be proven in the clear)."""
    err = refused_with_nothing_stored(tmp_path, capsys, monkeypatch,
                                      lambda: set_all_flags(tmp_path / "journal", fm.JOURNAL_ENTRY_ZK))
    assert "is a zk chain's journal (journal-000000.zkj's entries are flagged zk)" in err


def test_the_store_is_read_for_its_mode_once(tmp_path, monkeypatch):
    """reprove judges the store's mode as the start does (open_store_mode,
    the check then the open): each proof it reads the mode from (the
    chain's first and newest) is read for it once, not again by the open."""
    run_live(tmp_path, flow(72))                      # batches 0, 1, 2
    monkeypatch.setattr(reprove, "load", lambda path, machine: at(tmp_path))
    read = counted_mode_reads(monkeypatch)
    assert reprove.main("unused.toml", out=io.StringIO()) == 0
    assert read == {(0, 0): 1, (0, 2): 1}


def counted_mode_reads(monkeypatch) -> dict[tuple[int, int], int]:
    """{(symbol, batch): times its proof was read for its mode}, filled as
    zk_store.proof_mode is called from now on."""
    read: dict[tuple[int, int], int] = {}
    proof_mode = ZS.proof_mode

    def counting(store, symbol, batch_id):
        read[symbol, batch_id] = read.get((symbol, batch_id), 0) + 1
        return proof_mode(store, symbol, batch_id)

    monkeypatch.setattr(ZS, "proof_mode", counting)
    return read


def test_no_store_or_journal_is_made_where_there_is_none(tmp_path, capsys, monkeypatch):
    """Like the other store commands, reprove opens what exists: a
    configuration naming other directories is exit 2, nothing made."""
    monkeypatch.setattr(reprove, "load", lambda path, machine: at(tmp_path))
    assert reprove.main("unused.toml", out=io.StringIO()) == 2
    assert "journal: no such directory" in capsys.readouterr().err
    assert not (tmp_path / "proofs").exists() and not (tmp_path / "journal").exists()
    (tmp_path / "journal").mkdir()
    assert reprove.main("unused.toml", out=io.StringIO()) == 2
    assert "proofs: no such directory" in capsys.readouterr().err
    (tmp_path / "proofs").mkdir()
    assert reprove.main("unused.toml", out=io.StringIO()) == 2
    assert "no proof store here" in capsys.readouterr().err
    assert os.listdir(tmp_path / "proofs") == [] and os.listdir(tmp_path / "journal") == []


def test_what_it_writes_is_shared_with_the_state_group(tmp_path, monkeypatch):
    """[state] group: a segment the re-proof's put starts is 0640 owned by
    the group, as the daemon's are (docs/DEPLOY.md, permissions)."""
    group = grp.getgrgid(os.getegid()).gr_name
    run_live(tmp_path, flow(72))
    damage(tmp_path, 1)
    cfg = dataclasses.replace(at(tmp_path), state=StateConfig(group=group))
    monkeypatch.setattr(reprove, "load", lambda path, machine: cfg)
    small = functools.partial(ProofStore, segment_bytes=256)     # the put starts a segment
    monkeypatch.setattr(reprove, "ProofStore", small)
    assert reprove.main("unused.toml", out=io.StringIO()) == 0
    new = tmp_path / "proofs" / "store-000001.zkd"
    st = new.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o640, grp.getgrnam(group).gr_gid)


def test_a_backup_of_the_damaged_segment_put_back_after_a_reprove_opens(tmp_path, monkeypatch):
    """The documented remedy for what reprove cannot prove again is a
    backup's copy of the segment; put back after a reprove superseded one of
    its proofs, the segment holds that batch's proof sound again, the same
    bytes as the re-proof (a proof is a function of its inputs).  Every open
    refused the store ("a second proof ... whose first proof is sound"):
    now the later entry stands, and nothing is renumbered."""
    import test_recovery
    small = functools.partial(ProofStore, segment_bytes=256)          # one proof a segment
    monkeypatch.setattr(test_recovery, "ProofStore", small)
    run_live(tmp_path, flow(72))
    seg = tmp_path / "proofs" / "store-000001.zkd"                    # batch 1's
    backup = seg.read_bytes()
    raw = bytearray(backup)
    raw[len(raw) // 2] ^= 0x40
    seg.write_bytes(bytes(raw))
    with Journal(str(tmp_path / "journal"), fsync="never") as journal, \
            small(str(tmp_path / "proofs"), fsync=False) as store:
        assert reprove.reprove_all(CONFIG, journal, store, out=io.StringIO()) == 0
        numbers = {b: store.proof_index(0, b) for b in store.batches(0)}
    assert numbers == {0: 0, 1: 3, 2: 2}
    seg.write_bytes(backup)
    for readonly in (True, False):
        with ProofStore(str(tmp_path / "proofs"), fsync=False, readonly=readonly) as store:
            assert {b: store.proof_index(0, b) for b in store.batches(0)} == numbers
            assert store.check(0, 1) is None
    check_chain(tmp_path, 72)


def test_a_damaged_zk_proof_is_proven_again_with_its_private_file(tmp_path):
    """zk mode: a zk daemon's chain of three batches, batch 1's proof damaged
    at rest and its private file lost.  reprove proves it again from the
    journal under the store key (the keys derived by the symbol's chain, as
    the daemon derives them): the same bytes as the proof it supersedes and
    the same private file, and the chain verifies again."""
    from daemon_helpers import Daemon
    from test_zk_daemon import BITS as ZK_BITS, CAP as ZK_CAP, ZK_SETTINGS
    from zksidecar.daemon import zk_store as ZS
    from zksidecar.engine.book import Book
    from zksidecar.tools import loadgen
    from zksidecar.tools.proofs import verify_store

    d = Daemon(tmp_path, capacity=ZK_CAP, batch=250, timeout_ms=200, settings=ZK_SETTINGS)
    try:
        d.start()
        loadgen.run(d.ops_ring, None, loadgen.flow(600, seed=4, capacity=ZK_CAP), ZK_CAP, book=Book(ZK_CAP))
        # batches of 250, the last closed on its timeout: three, all stored before the stop
        d.wait_for(lambda st: st["symbols"].get("0", {}).get("next_seq") == 601
                   and st["symbols"]["0"]["open_ops"] == 0 and st["counts"]["proven"] >= 3,
                   what="every operation proven")
        assert d.stop() == 0
    finally:
        d.cleanup()
    store_dir = str(tmp_path / "proofs")
    with ProofStore(store_dir, fsync=False, readonly=True) as store:
        assert store.batches(0) == [0, 1, 2]
    private = tmp_path / "proofs" / "private" / ZS.private_name(0, 1)
    kept = private.read_bytes()
    private.unlink()
    sound = damage(tmp_path, 1)
    out = io.StringIO()
    assert verify_store(store_dir, min_security=ZK_BITS, out=out) == 1
    out = io.StringIO()
    assert reprove.main(str(d.config), out=out) == 0, out.getvalue()
    assert "symbol 0 batch 1: proven again from the journal" in out.getvalue()
    assert "it links to batch 0 and batch 2" in out.getvalue()
    with ProofStore(store_dir, fsync=False, readonly=True) as store:
        assert store.check(0, 1) is None and store.get(0, 1) == sound
    assert private.read_bytes() == kept and stat.S_IMODE(private.stat().st_mode) == 0o600
    out = io.StringIO()
    assert verify_store(store_dir, min_security=ZK_BITS, out=out) == 0, out.getvalue()


def test_a_journal_segment_it_cannot_read_is_named_not_a_traceback(tmp_path, capsys, monkeypatch):
    """The journal's mode is read from each segment's first entry: a segment
    that cannot be read (here a directory under a segment's name) is exit 2
    and one line naming it, as any journal reprove cannot open, before any
    proof is made."""
    bad = []

    def directory_as_next_segment():
        names = sorted(os.listdir(tmp_path / "journal"))
        last = max(int(n[len("journal-"):-len(".zkj")]) for n in names if n.endswith(".zkj"))
        bad.append(tmp_path / "journal" / f"journal-{last + 1:06d}.zkj")
        bad[0].mkdir()

    err = refused_with_nothing_stored(tmp_path, capsys, monkeypatch, directory_as_next_segment)
    err = err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("zksidecar reprove: ") and f"{bad[0]}: cannot read" in err[0], err


@pytest.mark.parametrize("which", ["journal", "proofs"])
def test_it_refuses_to_write_another_users_state(tmp_path, capsys, monkeypatch, which):
    """Run by another user than the state's owner (here the test's user,
    the directory given to uid 65534), reprove would leave files the daemon
    cannot read (a zk batch's private file is 0600) or a LOCK it cannot
    open: exit 2 naming the owner, the store's bytes untouched."""
    def give_away():
        os.chown(tmp_path / which, 65534, -1)

    err = refused_with_nothing_stored(tmp_path, capsys, monkeypatch, give_away)
    assert f"{tmp_path / which} is " in err and "run it as " in err and "sudo -u " in err
