"""`zksidecar export --store DIR --symbol S --out DIR2` and `zksidecar verify
DIR2`: a symbol's chain out of a daemon's proof store with its manifest
(prover/orderbook/manifest.py); a tampered file or manifest is refused with
a clear message, exit non-zero, no traceback (issue 15, item 5)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from test_store import chain, store_of

from zksidecar.prover.orderbook import manifest
from test_cli import run


@pytest.fixture
def exported(tmp_path, capsys):
    store = tmp_path / "store"
    store_of(store, {3: list(enumerate(chain(3, 3))), 5: list(enumerate(chain(5, 2)))})
    out = tmp_path / "chain-3"
    code, text, err = run(["export", "--store", str(store), "--symbol", "3", "--out", str(out)],
                          capsys)
    assert code == 0, err
    assert "exported symbol 3: batches 0..2" in text
    return out


def test_export_then_verify(exported, capsys):
    m = manifest.read(str(exported))
    assert m.symbol == 3 and [e.batch_id for e in m.batches] == [0, 1, 2]
    assert [e.file for e in m.batches] == [f"batch-{b:06d}.zkb" for b in range(3)]
    assert m.batches[0].first_seq == 1 and m.batches[1].first_seq == m.batches[0].last_seq + 1
    assert sorted(p.name for p in exported.iterdir()) == \
        ["batch-000000.zkb", "batch-000001.zkb", "batch-000002.zkb", "manifest.json"]
    code, out, err = run(["verify", str(exported), "--min-security", "0"], capsys)
    assert code == 0, err
    assert "3 proof files match manifest.json" in out and "verified 3 batches" in out
    # the installed command too, as a regulator would run it
    done = subprocess.run([sys.executable, "-m", "zksidecar.tools.cli", "verify", str(exported),
                           "--min-security", "0"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_tampered_file_is_refused(exported, capsys):
    f = exported / "batch-000001.zkb"
    raw = bytearray(f.read_bytes())
    raw[-100] ^= 1
    f.write_bytes(bytes(raw))
    code, _, err = run(["verify", str(exported), "--min-security", "0"], capsys)
    assert code == 1
    assert "REJECTED: batch 1" in err and "SHA-256" in err and "changed or replaced" in err


def test_a_tampered_manifest_is_refused(exported, capsys):
    path = exported / "manifest.json"
    good = json.loads(path.read_text())

    def verify_with(doc) -> tuple[int, str]:
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        code, _, err = run(["verify", str(exported), "--min-security", "0"], capsys)
        return code, err

    doc = json.loads(json.dumps(good))
    doc["batches"][2]["sha256"] = "0" * 64
    code, err = verify_with(doc)
    assert code == 1 and "batch 2" in err and "SHA-256" in err
    doc = json.loads(json.dumps(good))
    doc["batches"][1]["last_seq"] += 1                 # sequence numbers the proof does not state
    code, err = verify_with(doc)
    assert code == 1 and "the manifest says symbol 3 batch 1" in err
    doc = json.loads(json.dumps(good))
    doc["symbol"] = 5
    code, err = verify_with(doc)
    assert code == 1 and "the proof is symbol 3" in err
    doc = json.loads(json.dumps(good))
    doc["batches"] = [doc["batches"][0], doc["batches"][2]]   # a batch left out: the chain breaks
    code, err = verify_with(doc)
    assert code == 1 and "REJECTED: batch 2 follows batch 0" in err
    doc = json.loads(json.dumps(good))
    doc["batches"][0]["file"] = "../../etc/passwd"
    code, err = verify_with(doc)
    assert code == 2 and "not a plain file name" in err
    code, err = verify_with("{not json")
    assert code == 2 and "not JSON" in err
    code, err = verify_with({"format": "other"})
    assert code == 2 and "not a zksidecar chain manifest" in err
    path.unlink()
    code, _, err = run(["verify", str(exported)], capsys)
    assert code == 2 and "without manifest.json" in err


def test_export_refusals(tmp_path, exported, capsys):
    store = tmp_path / "store"
    code, _, err = run(["export", "--store", str(store), "--symbol", "9", "--out",
                        str(tmp_path / "x")], capsys)
    assert code == 2 and "no proofs of symbol 9" in err and "3, 5" in err     # a wrong parameter
    code, _, err = run(["export", "--store", str(store), "--symbol", "3", "--out",
                        str(exported)], capsys)
    assert code == 2 and "not empty" in err
    code, _, err = run(["export", "--store", str(tmp_path / "nope"), "--symbol", "3", "--out",
                        str(tmp_path / "y")], capsys)
    assert code == 2 and "nope" in err
    gappy = tmp_path / "gappy"
    store_of(gappy, {3: [(0, chain(3, 3)[0]), (2, chain(3, 3)[2])]})
    code, _, err = run(["export", "--store", str(gappy), "--symbol", "3", "--out",
                        str(tmp_path / "z")], capsys)
    assert code == 1 and "missing batch 1" in err
    code, _, err = run(["export", "--store", str(store)], capsys)     # usage: exit 2
    assert code == 2


def test_manifest_round_trip(tmp_path):
    data = chain(3, 3)
    entries = []
    for b, raw in enumerate(data):
        (tmp_path / f"b{b}.zkb").write_bytes(raw)
        entries.append(manifest.entry(f"b{b}.zkb", raw))
    manifest.write(str(tmp_path), 3, entries)
    m = manifest.read(str(tmp_path))
    assert m == manifest.Manifest(3, tuple(entries))
    assert [manifest.check_file(str(tmp_path), 3, e) for e in m.batches] == \
        [str(tmp_path / f"b{b}.zkb") for b in range(3)]
    with pytest.raises(manifest.ManifestError, match="batch 0 .*symbol 3 batch 0"):
        manifest.check_file(str(tmp_path), 4, m.batches[0])


def test_export_from_a_daemon_store_then_verify(tmp_path, capsys):
    """A real daemon proves a flow into its store; the symbol's chain is
    exported and verifies at the daemon's own security."""
    from daemon_helpers import Daemon

    from zksidecar.tools import loadgen

    d = Daemon(tmp_path)
    try:
        d.start()
        ops = loadgen.flow(400, seed=3, capacity=d.capacity)
        rep = loadgen.run(d.ops_ring, d.completions_ring, ops, d.capacity, wait_s=120)
        assert rep.proven_ops() == 400
        assert d.stop() == 0
    finally:
        d.cleanup()
    out = tmp_path / "chain-0"
    code, text, err = run(["export", "--store", str(tmp_path / "proofs"), "--symbol", "0",
                           "--out", str(out)], capsys)
    assert code == 0, err
    m = manifest.read(str(out))
    assert m.batches[0].first_seq == 1 and m.batches[-1].last_seq == 400
    code, text, err = run(["verify", str(out)], capsys)
    assert code == 0, err
    assert "(400 operations)" in text


@pytest.mark.parametrize("out_exists", [False, True])
def test_a_failed_export_leaves_nothing_in_out(tmp_path, capsys, out_exists):
    """A damaged proof in the middle of a chain: export refuses it (exit 1)
    and takes back the files of the batches before it, and the directory if
    it made it, so nothing there looks like part of a chain."""
    store = tmp_path / "store"
    store_of(store, {3: list(enumerate(chain(3, 3)))})
    data = store / "store-000000.zkd"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x40                       # inside batch 1's proof
    data.write_bytes(bytes(raw))
    out = tmp_path / "chain-3"
    if out_exists:
        out.mkdir()
    code, _, err = run(["export", "--store", str(store), "--symbol", "3", "--out", str(out)],
                       capsys)
    assert code == 1 and "symbol 3 batch 1" in err and "zksidecar reprove" in err
    assert (out.exists() and list(out.iterdir()) == []) if out_exists else not out.exists()
