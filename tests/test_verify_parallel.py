"""`zksidecar verify --jobs N`, `--report FILE` and `--since REPORT` (issue
17): the same verdicts and messages on one process and on two, over whole
chains and each kind of broken one; a verification report written, resumed
from, and refused when what it covers changed or it is malformed.

Small chains (capacity 16, 10 operations a batch, 64-row traces, the
insecure test parameters of test_store: verified with --min-security 0)."""
from __future__ import annotations

import functools
import json
import os
import pathlib
import re

import pytest
from test_cli import run
from test_store import OPTS, store_of

from zksidecar.engine import flow
from zksidecar.engine.book import Book
from zksidecar.prover.orderbook import proof_file, prove_batch, verify_report
from zksidecar.tools import verify_jobs

N = 6


@functools.lru_cache(maxsize=None)
def proofs(symbol: int = 0, seed: int = 0, n: int = N, break_at: int | None = None) -> tuple[bytes, ...]:
    """n batch proofs of `symbol`, a chain from the empty book; with
    `break_at`, the stream loses 5 operations before that batch and resumes
    (a recorded break: the chain verifies in two segments)."""
    ops = flow.generate(10 * n + 5, seed=100 + seed, capacity=16, symbol=symbol,
                        params=flow.FlowParams(depth=8))
    book, out, at = Book(16, symbol), [], 0
    for b in range(n):
        if b == break_at:
            at += 5
            book.resume(int(ops["seq"][at]), int(ops["ts_ns"][at]))
        chunk = ops[at:at + 10].copy()
        at += 10
        bp, _, _ = prove_batch(book, chunk, OPTS, ops_length=64, batch_id=b)
        book.process(chunk)
        out.append(proof_file.encode(bp))
    return tuple(out)


def write(d: pathlib.Path, raws, names=None) -> list[str]:
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, raw in enumerate(raws):
        p = d / (names[k] if names else f"batch-{k:06d}.zkb")
        p.write_bytes(raw)
        paths.append(str(p))
    return paths


def tampered(raw: bytes) -> bytes:
    b = bytearray(raw)
    b[-200] ^= 0x01                  # inside the STARK proof: decodes, does not verify
    return bytes(b)


def both(argv: list[str], capsys) -> tuple[int, str, str]:
    """`zksidecar verify ARGV` on one process and on two: the same exit
    status, stdout and stderr, byte for byte; returns them."""
    one = run(["verify", *argv, "--min-security", "0", "--jobs", "1"], capsys)
    two = run(["verify", *argv, "--min-security", "0", "--jobs", "2"], capsys)
    assert one == two
    return one


CHAINS = {
    # name: (the chain's proofs, exit status, what the message says)
    "whole": (lambda: proofs(), 0, "verified 6 batches (60 operations) root to root"),
    "tampered": (lambda: proofs()[:3] + (tampered(proofs()[3]),) + proofs()[4:], 1,
                 "REJECTED: batch 3: "),
    "tampered first": (lambda: (tampered(proofs()[0]),) + proofs()[1:], 1, "REJECTED: batch 0: "),
    "tampered last": (lambda: proofs()[:-1] + (tampered(proofs()[-1]),), 1, "REJECTED: batch 5: "),
    "gap": (lambda: proofs()[:2] + proofs()[3:], 1, "REJECTED: batch 3 follows batch 1: batches are missing"),
    "reordered": (lambda: proofs()[:2] + (proofs()[3], proofs()[2]) + proofs()[4:], 1,
                  "REJECTED: batch 3 follows batch 1"),
    "repeated": (lambda: proofs()[:3] + (proofs()[2],) + proofs()[3:], 1,
                 "REJECTED: batch 2 follows batch 2: batch ids count up by one"),
    "wrong link": (lambda: proofs()[:3] + (proofs(seed=1)[3],) + proofs()[4:], 1,
                   "REJECTED: batch 3: its pre-state is not the previous post-state"),
    "wrong symbol": (lambda: proofs()[:3] + (proofs(symbol=5)[3],) + proofs()[4:], 1,
                     "REJECTED: batch 3: capacity, book height, blowup or symbol changed"),
    "unreadable": (lambda: proofs()[:4] + (proofs()[4][:100],) + proofs()[5:], 2, "truncated"),
    "tampered before unreadable": (lambda: proofs()[:1] + (tampered(proofs()[1]),)
                                   + (proofs()[2][:100],) + proofs()[3:], 1, "REJECTED: batch 1: "),
    "broken stream": (lambda: proofs(break_at=3), 3, "BROKEN: 6 batches, 60 operations verified "
                      "root to root in 2 segments"),
}


@pytest.mark.parametrize("name", list(CHAINS))
def test_one_process_or_two_give_the_same_verdict(name, tmp_path, capsys):
    raws, status, says = CHAINS[name]
    files = write(tmp_path / "p", raws())
    code, out, err = both(files, capsys)
    assert code == status and says in out + err, (out, err)


def test_a_store_verified_on_two_processes(tmp_path, capsys):
    """Every symbol's chain; a failure is named by symbol and batch id, the
    others still verified; the same output on one process and two."""
    store = tmp_path / "store"
    good, bad = proofs(symbol=1), proofs(symbol=2)
    store_of(store, {1: list(enumerate(good)),
                     2: list(enumerate(bad[:4] + (tampered(bad[4]),) + bad[5:])),
                     3: [(0, proofs(symbol=3)[0]), (1, proofs(symbol=4)[1])],    # stored as 3, is 4
                     6: list(enumerate(proofs(symbol=6, break_at=2)))})
    code, out, err = both(["--store", str(store)], capsys)
    assert code == 1, err
    assert "symbol 1: 6 batches, 60 operations verified from the empty book" in out
    assert "symbol 2: FAILED: batch 4: " in out
    assert "symbol 3: FAILED: stored as symbol 3 batch 1, the proof is symbol 4 batch 1" in out
    assert "symbol 6: BROKEN: 6 batches" in out
    assert "1 of 4 symbols FAILED" not in out and "2 of 4 symbols FAILED" in out


def test_a_report_is_continued_in_place(tmp_path, capsys):
    """--since R --report R: the nightly run's form.  R is read whole before
    anything is verified and replaced at the end by one rename, so it ends
    as the report a run from the start writes (the report is refused only
    over a proof or a manifest, tests/test_bad_input_audit.py)."""
    files = write(tmp_path / "p", proofs())
    rep, whole = tmp_path / "rep.json", tmp_path / "whole.json"
    assert run(["verify", *files[:3], "--min-security", "0", "--report", str(rep)], capsys)[0] == 0
    code, out, err = run(["verify", *files[3:], "--min-security", "0", "--since", str(rep), "--report", str(rep)],
                         capsys)
    assert code == 0, err
    assert run(["verify", *files, "--min-security", "0", "--report", str(whole)], capsys)[0] == 0
    assert json.loads(rep.read_text()) == json.loads(whole.read_text())


def test_a_report_resumed_covers_what_a_run_from_the_start_does(tmp_path, capsys):
    files = write(tmp_path / "p", proofs())
    first = tmp_path / "first.json"
    code, out, _ = run(["verify", *files[:3], "--min-security", "0", "--report", str(first)], capsys)
    assert code == 0 and f"report written to {first}" in out
    rep = verify_report.read(str(first))
    rec = rep.symbols[0]
    assert (rep.min_security, rep.store, rec.first_batch, rec.last_batch, rec.batches) == \
        (0, None, 0, 2, 3)
    assert rec.files == tuple(files[:3]) and rec.operations == 30
    # every file again (those the report covers are skipped) or only the new ones
    for given in (files, files[3:]):
        code, out, err = both([*given, "--since", str(first), "--report", str(tmp_path / "r.json")],
                              capsys)
        assert code == 0, err
        assert "6 batches, 60 operations verified from the empty book: batches 0..2 by the " \
               "report (their proofs unchanged), batches 3..5 continuing batch 2" in out
    whole = tmp_path / "whole.json"
    code, out, _ = run(["verify", *files, "--min-security", "0", "--report", str(whole)], capsys)
    assert code == 0
    root = re.search(r"final state root ([0-9a-f]{64})", out).group(1)
    assert json.loads(whole.read_text()) == json.loads((tmp_path / "r.json").read_text())
    assert verify_report.read(str(whole)).symbols[0].point.root.hex() == root
    doc = json.loads(first.read_text())
    assert doc["version"] == 4 and doc["symbols"][0]["mode"] == "transparent" and \
        doc["symbols"][0]["zk_chain"] is None
    # a version-3 report (its roots of nodes SHA-256(left || right)) is not continued, by name
    old = tmp_path / "v3.json"
    old.write_text(json.dumps({**doc, "version": 3}))
    code, out, err = run(["verify", *files[3:], "--since", str(old), "--min-security", "0"], capsys)
    assert code == 2 and "report version 3 is not supported (this build reads 4): its chain's roots are of " \
        "Merkle nodes SHA-256(left || right)" in err, err
    # nothing new: the digest checked, nothing verified
    code, out, _ = run(["verify", "--since", str(whole), "--min-security", "0"], capsys)
    assert code == 0 and "nothing after batch 5" in out and root in out
    # a resumed chain must still link: a batch of another chain after the report is refused
    other = write(tmp_path / "q", proofs(seed=1))
    code, _, err = both([other[3], "--since", str(first)], capsys)
    assert code == 1 and "batch 3: its pre-state is not the previous post-state" in err


def test_a_resume_is_refused_when_what_the_report_covers_changed(tmp_path, capsys):
    files = write(tmp_path / "p", proofs())
    rep = tmp_path / "r.json"
    assert run(["verify", *files[:3], "--min-security", "0", "--report", str(rep)], capsys)[0] == 0

    def resume(*extra) -> tuple[int, str]:
        code, out, err = run(["verify", *files[3:], "--since", str(rep), "--min-security", "0",
                              *extra], capsys)
        assert code == 0 or out == ""                # refused: nothing verified, nothing said
        return code, err

    saved = pathlib.Path(files[1]).read_bytes()
    pathlib.Path(files[1]).write_bytes(saved + b"\0")
    code, err = resume()
    assert code == 2 and "the proofs of batches 0..2 are not the ones the report covers" in err
    # the files after the report's are verified while its files are re-hashed:
    # the refusal still comes first, over a verdict on them (batch 3 missing),
    # on one process and on several
    for jobs in ("1", "2"):
        code, out, err = run(["verify", *files[4:], "--since", str(rep), "--min-security", "0",
                              "--jobs", jobs], capsys)
        assert code == 2 and out == "" and "are not the ones the report covers" in err
    pathlib.Path(files[1]).unlink()
    code, err = resume()
    assert code == 2 and f"{files[1]}, which the report covers, cannot be read" in err
    pathlib.Path(files[1]).write_bytes(saved)
    assert resume()[0] == 0
    # a file the report covers given again, out of place
    code, _, err = run(["verify", files[2], *files[3:], "--since", str(rep), "--min-security", "0"],
                       capsys)
    assert code == 2 and f"{files[2]} is covered by {rep}" in err
    # the threshold: stronger than the report's, or weaker
    code, err = resume("--min-security", "100")
    assert code == 2 and "verified at fewer bits than this run demands" in err


def _malformed(doc: dict):
    s = doc["symbols"][0]
    yield "not JSON", "{", "not JSON"
    yield "another format", {**doc, "format": "zksidecar-chain"}, "not a zksidecar verification report"
    yield "another version", {**doc, "version": 9}, "report version 9 is not supported"
    yield "an extra key", {**doc, "extra": 1}, "a report has exactly"
    yield "no symbols", {**doc, "symbols": []}, "\"symbols\" is not a non-empty list"
    yield "a key missing", {**doc, "symbols": [{k: v for k, v in s.items() if k != "next_seq"}]}, \
        "symbols[0]: an entry has exactly"
    yield "a negative count", {**doc, "symbols": [{**s, "operations": -1}]}, \
        "symbols[0]: \"operations\" is not a non-negative integer"
    yield "counts that disagree", {**doc, "symbols": [{**s, "batches": 9}]}, \
        "batches 0..2 are not 9 batches"
    yield "a short root", {**doc, "symbols": [{**s, "post_root": "ab"}]}, \
        "\"post_root\" is not 64 lowercase hex digits"
    yield "a bad link", {**doc, "symbols": [{**s, "post_link": "00"}]}, "\"post_link\""
    yield "relative files", {**doc, "symbols": [{**s, "files": ["a", "b", "c"]}]}, \
        "\"files\" is not a list of 3 absolute paths"
    yield "a string for a number", {**doc, "min_security": "0"}, "\"min_security\" is not"
    yield "another mode", {**doc, "symbols": [{**s, "mode": "zkk"}]}, \
        "\"mode\" is \"transparent\" or \"zk\", not 'zkk'"
    yield "a zk chain's fields in a transparent one", {**doc, "symbols": [{**s, "zk_chain": {}}]}, \
        "\"zk_chain\" is null in a transparent chain's entry"
    yield "a zk chain without its fields", {**doc, "symbols": [{**s, "mode": "zk"}]}, \
        "\"zk_chain\" of a zk chain has exactly fri_folding_factor"
    zk_chain = {"ops_length": 64, "num_queries": 0, "grinding_bits": 0, "fri_folding_factor": 8,
                "fri_max_final_degree": 8}
    yield "a zk chain's invalid options", {**doc, "symbols": [{**s, "mode": "zk", "zk_chain": zk_chain}]}, \
        "\"zk_chain\": num_queries must be in 1.."
    for old in (2, 3):      # roots of nodes SHA-256(left || right)
        yield f"version {old}", {**doc, "version": old}, \
            f"report version {old} is not supported (this build reads 4): its chain's roots are of Merkle nodes"


def test_a_malformed_report_is_refused_naming_where(tmp_path, capsys):
    files = write(tmp_path / "p", proofs()[:3])
    rep = tmp_path / "r.json"
    assert run(["verify", *files, "--min-security", "0", "--report", str(rep)], capsys)[0] == 0
    doc = json.loads(rep.read_text())
    bad = tmp_path / "bad.json"
    for name, content, says in _malformed(doc):
        bad.write_text(content if isinstance(content, str) else json.dumps(content))
        code, out, err = run(["verify", "--since", str(bad), "--min-security", "0"], capsys)
        assert code == 2 and str(bad) in err and says in err, (name, err)
    code, _, err = run(["verify", "--since", str(tmp_path / "none.json")], capsys)
    assert code == 2 and "none.json" in err


def test_a_store_report_resumed(tmp_path, capsys):
    """A store grows: the next check verifies only the batches after the
    report's (and symbols it does not name, from the empty book) and
    writes the report a check from the start would."""
    store = tmp_path / "store"
    a, b, c = proofs(symbol=1), proofs(symbol=2), proofs(symbol=3)
    store_of(store, {1: list(enumerate(a[:3])), 2: list(enumerate(b[:5]))})
    monday, tuesday, whole = (str(tmp_path / f"{d}.json") for d in ("mon", "tue", "whole"))
    code, out, _ = run(["verify", "--store", str(store), "--min-security", "0", "--report", monday],
                       capsys)
    assert code == 0, out
    store_of(store, {1: list(enumerate(a))[3:], 2: [(5, b[5])], 3: list(enumerate(c))})
    code, out, err = both(["--store", str(store), "--since", monday, "--report", tuesday], capsys)
    assert code == 0, err
    assert "symbol 1: 6 batches, 60 operations verified from the empty book: batches 0..2 by " \
           "the report (their proofs unchanged), batches 3..5 continuing batch 2" in out
    assert "symbol 3: 6 batches, 60 operations verified from the empty book (" in out
    assert "verified 3 symbols, 18 batches, 180 operations (8 batches by the report" in out
    assert run(["verify", "--store", str(store), "--min-security", "0", "--report", whole],
               capsys)[0] == 0
    assert json.loads(pathlib.Path(whole).read_text()) == json.loads(pathlib.Path(tuesday).read_text())
    # another store: symbol 2's proofs are another chain's; symbol 3 is not there
    other = tmp_path / "other"
    store_of(other, {1: list(enumerate(a)), 2: list(enumerate(proofs(symbol=2, seed=1)))})
    code, _, err = run(["verify", "--store", str(other), "--since", tuesday, "--min-security", "0"],
                       capsys)
    assert code == 2 and "symbol 2: the proofs of batches 0..5 are not the ones the report covers" in err
    store_of(other := tmp_path / "third", {1: list(enumerate(a)), 2: list(enumerate(b))})
    code, _, err = run(["verify", "--store", str(other), "--since", tuesday, "--min-security", "0"],
                       capsys)
    assert code == 2 and "symbol 3: the store no longer holds batches 0..5" in err
    # a file report for a store, a store report for files
    code, _, err = run(["verify", "--since", tuesday, "--min-security", "0"], capsys)
    assert code == 2 and "is a report on a proof store: give --store DIR" in err


def test_cli_usage_errors_and_progress(tmp_path, capsys):
    files = write(tmp_path / "p", proofs()[:2])
    for argv, says in ((["--jobs", "0", *files], "--jobs: '0' is not a positive whole number"),
                       (["--jobs", "x", *files], "is not a positive whole number"),
                       ([files[1], "--after", files[0], "--report", "r.json"], "--after checks"),
                       ([files[1], "--after", files[0], "--since", "r.json"], "--after checks")):
        code, _, err = run(["verify", *argv], capsys)
        assert code == 2 and says in err, err
    code, out, err = run(["verify", *files, "--min-security", "0", "--progress", "--jobs", "2"],
                         capsys)
    assert code == 0 and "verifying: 2/2 batches (100%)" in err and "ETA" in err
    assert "verifying" not in out
    code, _, err = run(["verify", *files, "--min-security", "0", "--no-progress"], capsys)
    assert code == 0 and err == ""
    # a report that cannot be written: the verdict stands, the failure is named, exit 2
    code, out, err = run(["verify", *files, "--min-security", "0", "--report",
                          str(tmp_path / "no" / "r.json")], capsys)
    assert code == 2 and "verified 2 batches" in out and "no/r.json" in err


def test_the_report_format_page_names_every_field():
    page = (pathlib.Path(__file__).parent.parent / "docs" / "FORMATS.md").read_text()
    section = page.split("## Verification report", 1)[1].split("\n## ", 1)[0]
    for key in sorted(verify_report._KEYS | {"format", "version", "min_security", "store", "symbols"}):
        assert f"`{key}`" in section, key


def _dies(path, **kw):
    """A test double for a worker's check_path: the process ends at once
    (as one the kernel killed)."""
    os._exit(1)


def test_a_worker_that_dies_is_a_clear_error(tmp_path, capsys, monkeypatch):
    files = write(tmp_path / "p", proofs()[:3])
    monkeypatch.setattr(verify_jobs, "check_path", _dies)
    code, out, err = run(["verify", *files, "--min-security", "0", "--jobs", "2"], capsys)
    assert code == 2 and "a verifying process ended without its result" in err and out == ""


def test_the_bench_suite_reports_every_figure(tmp_path):
    """`zksidecar bench verify`'s machinery on a tiny chain (3 batches of 16
    operations at capacity 2^6): every figure there, measured by the real
    commands; no figure is asserted (unit tests never time anything)."""
    from zksidecar.tools.bench import runner, verify

    figures = verify.verify(runner.Stopwatch(quiet=True), batches=3, batch_ops=16, capacity=64,
                            directory=str(tmp_path / "chain"))
    assert figures["batches"] == 3 and figures["operations"] == 48
    for key in ("verify_ops_per_s", "verify_ops_per_s_one_job", "parallel_speedup", "resume_s",
                "batch_verify_ms_one_job", "load_1m_before"):
        assert figures[key] > 0 or key == "load_1m_before", key
    assert set(runner.check_targets("verify", figures)) == set(runner.TARGETS["verify"])
    assert len(list((tmp_path / "chain").glob("batch-*.zkb"))) == 4


@pytest.mark.parametrize("jobs", [1, 2])
def test_report_files_rehashed_in_order_past_the_window(tmp_path, jobs):
    """Checker.sha256s: every file's SHA-256 in order, more files than it
    hashes ahead; a file that cannot be read gives its reason in place."""
    import hashlib
    paths = []
    for k in range(verify_jobs.HASH_AHEAD + 40):
        p = tmp_path / f"f{k:04d}"
        p.write_bytes(bytes([k % 251]) * (k % 97))
        paths.append(str(p))
    missing = str(tmp_path / "gone")
    paths.insert(7, missing)
    with verify_jobs.Checker(jobs, 0, 1 << 10, progress=False) as checker:
        got = list(checker.sha256s(paths, verifying=3))
    assert [p for p, _ in got] == paths
    for p, digest in got:
        if p == missing:
            assert isinstance(digest, str) and digest
        else:
            assert digest == hashlib.sha256(pathlib.Path(p).read_bytes()).digest()
