"""The example engines of docs/INTEGRATION.md (examples/c, examples/cpp,
examples/rust), built by `make examples`, each run against a real daemon:
they match through the provable core (csrc/engine/zk_core.h), publish
operation records with their claims, read completions; the daemon refuses
none of their records, finds no divergence, proves every operation, and the
symbol's chain verifies from the empty book."""
from __future__ import annotations

import io
import re
import shutil
import subprocess

import numpy as np
import pytest

import time

from daemon_helpers import Daemon
from zksidecar import ringbuf
from source_tree import ROOT
from zksidecar.engine.book import Book
from zksidecar.engine.records import OP_DTYPE, Kind, Status
from zksidecar.tools import loadgen
from zksidecar.tools.proofs import verify_store

OPS = 600
CAPACITY = 64
SYMBOL = 7

EXAMPLES = {
    "c": ROOT / "build" / "examples" / "engine_c",
    "cpp": ROOT / "build" / "examples" / "engine_cpp",
    "rust": ROOT / "build" / "examples" / "engine_rust",
}


@pytest.fixture(scope="module")
def built():
    """`make examples`, once: the target the docs name."""
    if shutil.which("make") is None:
        pytest.skip("make is not on this machine")
    done = subprocess.run(["make", "-s", "-C", str(ROOT), "examples"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def summary(text: str) -> dict[str, int]:
    line = [ln for ln in text.splitlines() if ln.startswith("summary ")][-1]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


@pytest.mark.parametrize("language", ["c", "cpp", "rust"])
def test_example_engine_is_attached_and_proven(language, built, tmp_path):
    exe = EXAMPLES[language]
    if language == "rust" and shutil.which("rustc") is None:
        pytest.skip("rustc is not on this machine: `make examples` did not build the Rust example")
    assert exe.exists(), f"`make examples` did not build {exe}"
    # a small ring (16 records), so the burst of operations meets FULL and retries
    d = Daemon(tmp_path, capacity=CAPACITY, batch=128, ring=16)
    try:
        d.start()
        run = subprocess.run([str(exe), d.ops_ring, d.completions_ring, str(OPS), str(CAPACITY),
                              str(SYMBOL), "5", "90"], capture_output=True, text=True, timeout=150)
        out = run.stdout + run.stderr
        assert run.returncode == 0, out + d.logs()[-3000:]
        s = summary(run.stdout)
        assert s["published"] == OPS and s["last_seq"] == OPS, out
        assert s["proven_ops"] == OPS and s["disagrees"] == 0 and s["failed"] == 0, out
        assert s["completions"] >= 1 and s["trades"] > 0, out
        st = d.status()
        assert st["refused"]["total"] == 0 and st["counts"]["rejected"] == 0, st
        assert st["counts"]["divergences"] == 0 and st["divergences"]["total"] == 0, st
        assert st["breaks"]["total"] == 0, st
        assert st["ops"]["ingested"] == OPS and st["symbols"][str(SYMBOL)]["next_seq"] == OPS + 1
        assert d.stop() == 0
        report = io.StringIO()
        assert verify_store(str(tmp_path / "proofs"), out=report) == 0, report.getvalue()
        assert f"symbol {SYMBOL}" in report.getvalue() or str(SYMBOL) in report.getvalue()
    finally:
        d.cleanup()


def test_a_producer_that_stops_heartbeating_is_reported_stale(tmp_path):
    """ingest.producer_stale_s (default 5 s; 1 s here): an engine that has
    not heartbeaten its ops ring for that long shows as "stale", and again
    "alive" once it beats."""
    d = Daemon(tmp_path, settings={"ingest": {"producer_stale_s": 1}})
    try:
        d.start()
        producer = ringbuf.Producer(d.ops_ring)           # opening is a heartbeat
        try:
            d.wait_for(lambda st: st["ring"]["producer"] == "alive", timeout=10, what="alive")
            t0 = time.monotonic()
            d.wait_for(lambda st: st["ring"]["producer"] == "stale", timeout=10, what="stale")
            assert time.monotonic() - t0 > 0.5
            producer.heartbeat()
            d.wait_for(lambda st: st["ring"]["producer"] == "alive", timeout=10, what="alive again")
        finally:
            producer.close()
        assert d.stop() == 0
    finally:
        d.cleanup()


def test_a_dishonest_claim_is_a_divergence_and_the_chain_still_verifies(built, tmp_path):
    """The C example misreporting one outcome (LIE_SEQ): the daemon counts one
    divergence, the batch holding it completes DISAGREES, the proof covers
    what the rules give, and the chain verifies."""
    d = Daemon(tmp_path, capacity=CAPACITY, batch=128)
    try:
        d.start()
        run = subprocess.run([str(EXAMPLES["c"]), d.ops_ring, d.completions_ring, "300",
                              str(CAPACITY), "0", "3", "60", "150"],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 1, run.stdout + run.stderr      # not everything PROVEN
        s = summary(run.stdout)
        assert s["disagrees"] == 1 and s["proven_ops"] + 128 >= 300 and s["failed"] == 0, run.stdout
        assert "disagrees with our claim" in run.stderr or "differs from our claim" in run.stderr
        st = d.status()
        assert st["counts"]["divergences"] == 1 and st["refused"]["total"] == 0, st
        assert d.stop() == 0
        assert "divergence: symbol 0 seq 150: the engine claims" in d.logs()
        report = io.StringIO()
        assert verify_store(str(tmp_path / "proofs"), out=report) == 0, report.getvalue()
    finally:
        d.cleanup()


def test_the_public_core_is_the_engine(built, tmp_path):
    """zk_core.h from C: its promises (tests/clients/zk_core_check.c), then a
    synthetic flow applied through it gives, record for record, what the
    Python engine (the same engine.c through cffi) gives: outcomes, handles."""
    exe = tmp_path / "zk_core_check"
    subprocess.run([shutil.which("cc") or "gcc", "-std=c11", "-O1", "-Wall", "-Wextra", "-Werror",
                    "-pedantic", f"-I{ROOT / 'csrc'}", "-o", str(exe),
                    str(ROOT / "tests" / "clients" / "zk_core_check.c"),
                    str(ROOT / "build" / "libzkcore.a")], check=True)
    ops = loadgen.flow(3000, seed=4, capacity=CAPACITY, symbol=SYMBOL)
    run = subprocess.run([str(exe), str(CAPACITY), str(SYMBOL)], input=ops.tobytes(),
                         capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr.decode()
    through_core = np.frombuffer(run.stdout, dtype=OP_DTYPE)
    expected = ops.copy()
    Book(CAPACITY, SYMBOL).process(expected)
    assert len(through_core) == len(expected)
    assert (through_core == expected).all()
    assert (expected["status"] == Status.RESTED).any() and (expected["kind"] == Kind.CANCEL).any()
