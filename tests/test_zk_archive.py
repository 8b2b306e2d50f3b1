"""`zksidecar store archive` of a zk store (tools/retention.py,
daemon/zk_archive.py): the archived batches' private files move with their
proofs, each with its batch key (0700 / 0600 whatever the umask), and
`zksidecar receipt` makes from the archive the receipt the store made;
`verify --store --report/--since` across the archive; an archive stopped at
each of its steps loses nothing and a second run completes it.

A store of four zk batches (the smallest zk shape of test_zk_daemon), one
proof a segment, built once and copied for each test."""
from __future__ import annotations

import io
import json
import os
import shutil
import stat

import pytest

from test_zk_daemon import BITS, cut, zk_store_at
from zksidecar.daemon import zk_store as ZS
from zksidecar.daemon.jobs import ProofJob, prove_job
from zksidecar.daemon.store import ProofStore
from zksidecar.daemon.zk_archive import ZkArchive, key_name
from zksidecar.prover.orderbook import proof_file
from zksidecar.tools import cli, retention
from zksidecar.tools.proofs import verify_exported, verify_store
from zksidecar.tools.receipts import receipt_main, verify_receipt_main


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    d = tmp_path_factory.mktemp("zk-archive") / "store"
    zs = zk_store_at(d)
    with ProofStore(str(d), fsync=False, segment_bytes=256) as store:      # one proof a segment
        batches = cut(1200, size=300)
        for b in batches:
            zs.write_private(b)
            store.put(0, b.batch_id, proof_file.encode(prove_job(ProofJob.of(b, BITS, zs.chain))))
    firsts = [int(b.ops["seq"][0]) for b in batches]
    return d, firsts, {b: receipt_of_store(d, firsts[b]) for b in (0, 1)}


def receipt_of_store(d, seq: int) -> bytes:
    with ProofStore(str(d), fsync=False, readonly=True) as store:
        return ZS.open_for_receipts(str(d)).receipt(store, 0, seqs=[seq])


def fresh(template, tmp_path):
    d, firsts, receipts = template
    store = tmp_path / "store"
    shutil.copytree(d, store)
    return store, tmp_path / "archive", firsts, receipts


def archive(store, arch) -> tuple[int, str]:
    out = io.StringIO()
    code = retention.main("archive", str(store), None, 2, None, False, to=str(arch), progress=False, out=out)
    return code, out.getvalue()


def test_archived_batches_keep_their_receipts(template, tmp_path, capsys):
    store, arch, firsts, before = fresh(template, tmp_path)
    report = str(tmp_path / "r.json")
    assert verify_store(str(store), BITS, out=io.StringIO(), report=report) == 0
    old = os.umask(0)                   # whatever the umask: private data is the owner's alone
    try:
        code, text = archive(store, arch)
    finally:
        os.umask(old)
    assert code == 0, text + capsys.readouterr().err
    assert "batches 0..1 (2 proofs) archived" in text and "2 private file(s) moved to" in text
    d = arch / "symbol-0"
    private = d / "private"
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o700
    names = sorted(os.listdir(private))
    assert names == sorted([ZS.private_name(0, b) for b in (0, 1)] + [key_name(0, b) for b in (0, 1)])
    assert all(stat.S_IMODE(os.stat(private / n).st_mode) == 0o600 for n in names)
    assert all(len((private / key_name(0, b)).read_bytes()) == 32 for b in (0, 1))
    # the store key stays in the store; its private files of archived batches are gone
    assert not any(n == ZS.KEY_NAME for n in names)
    assert sorted(os.listdir(store / "private")) == sorted([ZS.KEY_NAME] + [ZS.private_name(0, b) for b in (2, 3)])
    # the archive verifies; its receipts are the ones the store made, by seq or by account
    assert verify_exported(str(d), BITS, out=io.StringIO()) == 0
    path = str(tmp_path / "a.zkr")
    assert receipt_main(str(arch), 0, path, seqs=[firsts[0]], out=io.StringIO()) == 0
    assert open(path, "rb").read() == before[0]
    text = io.StringIO()
    assert verify_receipt_main(path, str(d / "batch-000000.zkb"), str(d), min_security=BITS, out=text) == 0
    assert "OK: the receipt checks" in text.getvalue()
    zk = ZkArchive(str(d), 0)                                   # DIR/symbol-S serves too
    assert zk.receipt(0, seqs=[firsts[1] + 3]) == receipt_of_store(template[0], firsts[1] + 3)
    account = int(ZS.open_for_receipts(str(template[0])).read_private(0, 1).ops["account"][0])
    assert cli.main(["receipt", "--store", str(d), "--symbol", "0", "--account", str(account), "--batch", "1",
                     "--out", str(tmp_path / "acct.zkr")]) == 0
    # the live store says where an archived batch's receipts are made
    assert receipt_main(str(store), 0, str(tmp_path / "x.zkr"), seqs=[firsts[0]]) == 1
    assert "zksidecar receipt --store DIR ..." in capsys.readouterr().err
    # refusals name what is missing
    assert receipt_main(str(arch), 0, str(tmp_path / "y.zkr"), seqs=[firsts[3]]) == 1
    assert "is in no batch of the archive" in capsys.readouterr().err
    os.rename(private / key_name(0, 1), tmp_path / "k")
    assert receipt_main(str(arch), 0, str(tmp_path / "z.zkr"), seqs=[firsts[1]]) == 1
    assert "batch 1's batch key" in capsys.readouterr().err
    assert receipt_main(str(tmp_path), 0, str(tmp_path / "w.zkr"), seqs=[1]) == 2
    assert "neither a zk store" in capsys.readouterr().err
    # the report written before the archive anchors what the store keeps; one of the other mode is refused
    out = io.StringIO()
    assert verify_store(str(store), BITS, out=out, since=report) == 0, out.getvalue()
    assert "UNANCHORED" not in out.getvalue() and "by the report" in out.getvalue()
    doc = json.loads(open(report).read())
    assert doc["symbols"][0]["mode"] == "zk"
    doc["symbols"][0].update(mode="transparent", zk_chain=None)
    other = tmp_path / "other.json"
    other.write_text(json.dumps(doc))
    assert verify_store(str(store), BITS, out=io.StringIO(), since=str(other)) == 2
    assert "symbol 0 is a transparent chain in the report" in capsys.readouterr().err


def _kill_after_the_second_proof_file(self):
    """A test double for the archive's progress: the process dies after the
    second proof file is written (no manifest yet)."""
    self.done += 1
    if self.done == 2:
        raise KeyboardInterrupt


def _raise_interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("step", ["proof files", "manifest", "index", "private files"])
def test_an_archive_stopped_anywhere_loses_nothing_and_runs_again(template, tmp_path, monkeypatch, step):
    store, arch, firsts, before = fresh(template, tmp_path)
    real_prune = retention.prune_private
    calls = []

    def prune_one_then_die(directory, st):
        """A test double for prune_private: its first call (completing an
        earlier run) is the real one; the second removes one file and dies."""
        calls.append(1)
        if len(calls) == 1:
            return real_prune(directory, st)
        os.unlink(os.path.join(directory, "private", ZS.private_name(0, 0)))
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        if step == "proof files":
            m.setattr(retention._Progress, "__call__", _kill_after_the_second_proof_file)
        elif step == "manifest":          # the archive written whole, the store not touched yet
            m.setattr(ProofStore, "remove_segments", _raise_interrupt)
        elif step == "index":             # the index marks them archived; the segments are still there
            m.setattr(ProofStore, "_unlink_segments", _raise_interrupt)
        else:
            m.setattr(retention, "prune_private", prune_one_then_die)
        with pytest.raises(KeyboardInterrupt):
            archive(store, arch)
    # nothing lost: each batch's receipt, from the store or else from the archive, is the one made before
    for b in (0, 1):
        try:
            got = receipt_of_store(store, firsts[b])
        except ZS.ReceiptUnavailable:
            got = ZkArchive(str(arch), 0).receipt(0, seqs=[firsts[b]])
        assert got == before[b], (step, b)
    # a second run completes it
    code, text = archive(store, arch)
    assert code == 0, text
    d = arch / "symbol-0"
    assert verify_exported(str(d), BITS, out=io.StringIO()) == 0
    assert [ZkArchive(str(arch), 0).receipt(0, seqs=[firsts[b]]) for b in (0, 1)] == [before[0], before[1]]
    assert sorted(os.listdir(store / "private")) == sorted([ZS.KEY_NAME] + [ZS.private_name(0, b) for b in (2, 3)])
    out = io.StringIO()
    assert verify_store(str(store), BITS, out=out) == 0 and "batches 0..1 are archived" in out.getvalue()


def test_prune_removes_the_private_files_with_their_proofs(template, tmp_path, capsys):
    store, _, firsts, _ = fresh(template, tmp_path)
    out = io.StringIO()
    assert retention.main("prune", str(store), None, 2, None, False, out=out) == 0
    assert "2 private file(s) removed with their proofs" in out.getvalue()
    assert sorted(os.listdir(store / "private")) == sorted([ZS.KEY_NAME] + [ZS.private_name(0, b) for b in (2, 3)])
    with pytest.raises(ZS.ReceiptUnavailable, match="in a batch retention archived .* `zksidecar store archive --to DIR`"):
        receipt_of_store(store, firsts[1] + 1)
    assert receipt_of_store(store, firsts[2]) == receipt_of_store(template[0], firsts[2])


def test_a_zk_store_without_its_chain_record_is_not_archived_without_its_private_files(template, tmp_path,
                                                                                      capsys):
    """zk-chain.json lost: the store is still a zk store by its proofs (and
    private/), so `store archive` refuses (exit 2, naming the record), as
    the daemon's start does, nothing removed.  Before, it archived the
    proofs without their private files, and the next prune (the daemon's
    retention, `store prune`) removed those from the store: the archived
    batches' receipts lost for good."""
    store, arch, firsts, before = fresh(template, tmp_path)
    os.rename(store / ZS.CHAIN_NAME, tmp_path / ZS.CHAIN_NAME)
    listed = sorted(os.listdir(store))
    code, _ = archive(store, arch)
    assert code == 2
    assert ZS.CHAIN_NAME in capsys.readouterr().err
    assert sorted(os.listdir(store)) == listed and not (arch / "symbol-0" / "manifest.json").exists()
    os.rename(tmp_path / ZS.CHAIN_NAME, store / ZS.CHAIN_NAME)     # put back: it archives as ever
    code, text = archive(store, arch)
    assert code == 0 and "2 private file(s) moved to" in text
