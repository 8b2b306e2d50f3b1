"""prover/input_file.py, the one way a user's file is opened: a regular
file is read, anything else is refused by name before a byte is read, and
a file over its format's cap is refused without being read past the cap.
The caps: each format's is at least the largest file it legally has.  And
verify's report is never written over a file the run reads."""
from __future__ import annotations

import io
import os
import threading
import types

import numpy as np
import pytest

from zksidecar.engine import replay
from zksidecar.engine.records import OP_DTYPE, TRADE_DTYPE
from zksidecar.prover import input_file
from zksidecar.prover.input_file import InputRefused
from zksidecar.prover.orderbook import proof_file
from zksidecar.prover.orderbook.air import MAX_LOG_OPS, book_length
from zksidecar.prover.orderbook.batch import BatchPublic, ZkPublic
from zksidecar.prover.orderbook.receipt_format import MAX_FILE_BYTES as MAX_RECEIPT_BYTES, receipt_size
from zksidecar.prover.orderbook.zk_air import ZK_MAX_LOG_OPS
from zksidecar.prover.proof import statement_layouts, statement_trees
from zksidecar.tools import proofs


def test_a_regular_file_is_read_whole(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc" * 100)
    assert input_file.read(str(path), 300, "test file") == b"abc" * 100
    with input_file.open_regular(str(path)) as f:
        assert f.read() == b"abc" * 100


def test_a_directory_is_refused_as_the_os_says(tmp_path):
    with pytest.raises(IsADirectoryError) as exc:
        input_file.read(str(tmp_path), 100, "test file")
    assert exc.value.filename == str(tmp_path)


def test_a_missing_file_is_the_os_error():
    with pytest.raises(FileNotFoundError):
        input_file.read("/nonexistent/f", 100, "test file")


def test_dev_zero_is_refused_unread():
    with pytest.raises(InputRefused) as exc:
        input_file.read("/dev/zero", 1 << 40, "test file")
    assert exc.value.filename == "/dev/zero"
    assert exc.value.strerror == "not a regular file (a character device)"


def test_a_fifo_without_a_writer_is_refused_without_blocking(tmp_path):
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    done = []
    t = threading.Thread(target=lambda: done.append(_refusal(fifo)), daemon=True)
    t.start()
    t.join(30)          # a blocking open would never return: not a timing assertion
    assert done == ["not a regular file (a FIFO)"]


def _refusal(path: str) -> str | None:
    try:
        input_file.open_regular(path).close()
    except InputRefused as exc:
        return exc.strerror
    return None


def test_a_file_over_the_cap_is_refused_naming_its_size(tmp_path):
    path = tmp_path / "big"
    path.write_bytes(b"x" * 1001)
    with pytest.raises(InputRefused) as exc:
        input_file.read(str(path), 1000, "test file")
    assert exc.value.filename == str(path)
    assert exc.value.strerror == "1,001 bytes, over the 1,000 a test file may have"
    assert input_file.read(str(path), 1001, "test file") == b"x" * 1001


def test_a_file_that_grows_past_the_cap_is_refused(tmp_path, monkeypatch):
    """fstat said it fit; more bytes came before the read: at most cap + 1
    are read, and it is refused."""
    path = tmp_path / "grows"
    path.write_bytes(b"x" * 10)
    real = os.fstat

    def fstat_then_grow(fd):
        """The file as it was (10 bytes), then 5,000 bytes more."""
        mode = real(fd).st_mode
        with open(path, "ab") as f:
            f.write(b"y" * 5000)
        return types.SimpleNamespace(st_mode=mode, st_size=10)
    monkeypatch.setattr(input_file.os, "fstat", fstat_then_grow)
    with pytest.raises(InputRefused, match="grew past the 100 bytes"):
        input_file.read(str(path), 100, "test file")


# ---- the caps ----

def _statements(zk: bool):
    """A batch statement at every capacity the mode proves, at the shortest
    and the tallest ops domain it allows there."""
    top = ZK_MAX_LOG_OPS if zk else MAX_LOG_OPS
    for log_c in range(4, top):
        s = book_length(1 << log_c)
        for log_t in (log_c + 1, top):
            t = 1 << log_t
            z = ZkPublic(1, False, np.zeros((t - 1, 8), np.uint32), bytes(32)) if zk else None
            ops, trades = (None, None) if zk else (np.zeros(0, OP_DTYPE), np.zeros(0, TRADE_DTYPE))
            yield BatchPublic(log_c, s, t, 0, 1, ops, trades, bytes(32), None, 0, z).statement()


@pytest.mark.parametrize("zk", [False, True], ids=["transparent", "zk"])
def test_the_proof_file_cap_counts_on_a_shape_every_statement_has(zk):
    for st in _statements(zk):
        mats = [m for lay in statement_layouts(st, zk) for m in lay]
        assert sum(m.width for m in mats) <= proof_file.MAX_OPENED_WORDS
        assert len(mats) <= proof_file.MAX_MATRICES
        assert len(statement_trees(st)) <= proof_file.MAX_TREES


def test_the_proof_file_cap_holds_the_records_of_its_tallest_ops_domain():
    rows = 1 << MAX_LOG_OPS
    records = (rows - 1) * (OP_DTYPE.itemsize + TRADE_DTYPE.itemsize)
    assert proof_file.max_file_bytes(1 << 24) > records
    assert proof_file.max_file_bytes(16) < proof_file.max_file_bytes(1 << 16) < proof_file.max_file_bytes(1 << 24)


@pytest.fixture(scope="module")
def proof(tmp_path_factory) -> str:
    """A one-batch transparent chain's proof file."""
    d = tmp_path_factory.mktemp("chain")
    (d / "ops.csv").write_text("ts_ns,kind,side,price,qty,account,order_id\n0,LIMIT,SELL,101,5,1,1\n"
                               "1,LIMIT,BUY,101,5,2,2\n")
    assert proofs.prove_main(str(d / "ops.csv"), "auto", 16, 4, str(d / "p"), 100, out=io.StringIO()) == 0
    return str(d / "p" / "batch-000000.zkb")


def test_real_proofs_are_far_under_their_cap(proof):
    data = open(proof, "rb").read()
    pub = proof_file.decode_public(data)
    assert len(data) < proof_file.max_file_bytes(max(pub.book_length, pub.ops_length)) // 10


# ---- what verify reads, its report is never written over ----

def test_a_report_over_a_link_to_its_proof_is_refused(proof, tmp_path, capsys):
    """A hard link to an input proof is the proof (the report over it would
    lose it).  The report a run continues (--since R --report R) is not
    refused: tests/test_verify_parallel.py continues one in place."""
    link = str(tmp_path / "link.zkb")
    os.link(proof, link)
    kept = open(proof, "rb").read()
    assert proofs.verify_main([proof], 100, out=io.StringIO(), jobs=1, report=link) == 2
    assert open(proof, "rb").read() == kept
    assert f"--report {link} is {proof}, an input of this run" in capsys.readouterr().err


def test_a_report_inside_the_store_is_refused(tmp_path, capsys):
    store = tmp_path / "store"
    (store / "private").mkdir(parents=True)
    victim = store / "private" / "S0-B0.zkp"
    victim.write_bytes(b"private")
    assert proofs.verify_store(str(store), 100, out=io.StringIO(), jobs=1, report=str(victim)) == 2
    assert victim.read_bytes() == b"private"
    assert "is inside the store" in capsys.readouterr().err


def test_a_report_at_a_link_inside_the_store_is_refused(tmp_path, capsys):
    """A link in the store leading out of it (a segment moved to another
    disk, say) is still a store's file: the report's rename would replace
    it (json_file.write), so it is refused as a path inside the store is."""
    store, elsewhere = tmp_path / "store", tmp_path / "elsewhere"
    store.mkdir()
    elsewhere.mkdir()
    (elsewhere / "store-000001.zkd").write_bytes(b"segment")
    (store / "store-000001.zkd").symlink_to(elsewhere / "store-000001.zkd")
    link = str(store / "store-000001.zkd")
    assert proofs.verify_store(str(store), 100, out=io.StringIO(), jobs=1, report=link) == 2
    assert os.path.islink(link) and open(link, "rb").read() == b"segment"
    assert "is inside the store" in capsys.readouterr().err


def test_the_receipt_cap_holds_the_largest_receipt_of_a_zk_batch():
    t = 1 << ZK_MAX_LOG_OPS
    largest = max(receipt_size(ops, t, ops, t - 1 - ops, t - 1 - ops) for ops in (1, t // 4, t // 2, t - 2))
    assert largest <= MAX_RECEIPT_BYTES


def test_a_replay_line_is_read_in_bounded_pieces():
    """A line past MAX_LINE_BYTES is refused by number and skipped without
    being held whole; the lines around it are still read."""
    long = b"#" + b"x" * (3 * replay.MAX_LINE_BYTES) + b"\n"
    text = (b"ts_ns,kind,side,price,qty,account,order_id\n0,LIMIT,SELL,101,5,1,1\n" + long
            + b"1,LIMIT,SELL,100,5,2,2\n")
    with pytest.raises(replay.FileError) as exc:
        list(replay.read(io.BytesIO(text)))
    assert exc.value.report("f")[0].startswith(f"f:3: a line of more than {replay.MAX_LINE_BYTES:,} bytes")
    exact = b"#" + b"x" * (replay.MAX_LINE_BYTES - 2) + b"\n"        # MAX_LINE_BYTES with its newline
    assert len(list(replay.read(io.BytesIO(text.replace(long, exact))))) == 2
