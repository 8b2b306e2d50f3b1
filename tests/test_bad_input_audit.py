"""An audit of bad input, as a demanding user and an attacker would give it.

The standard under test (docs/SECURITY.md, the CLI's own help): bad input
(a malformed record, a corrupt ring header or proof, a wrong parameter, a
malformed file) gets a clear error naming where it was found, never a
traceback, and loses nothing; anything read from shared memory or a file
is untrusted, its claimed sizes included.

Honest artifacts are made with the tool itself (`zksidecar prove`, a short
`zksidecar demo --zk`, a proof store written through ProofStore), then
corrupted copies are given to every command that reads them.  A probe that
found a defect is marked xfail(strict=True) with what it found; the rest
pass and guard what is already handled.  Commands run in this process
(cli.main) where a traceback is an exception escaping main; those whose
defect is a memory blow-up run as subprocesses under a 1 GiB address-space
limit, so the blow-up is a fast MemoryError rather than the host's RAM.
"""
from __future__ import annotations

import contextlib
import dataclasses
import glob
import hashlib
import io
import json
import os
import random
import resource
import shutil
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import traceback
import zlib

import pytest

from zksidecar.daemon import frames
from zksidecar.daemon import snapshot as snapshot_file
from zksidecar.daemon.store import ProofStore
from zksidecar.prover.orderbook import proof_file
from zksidecar.prover.orderbook.batch import check_alone
from zksidecar.prover.orderbook.params import MAX_TRACE_LENGTH
from zksidecar.prover.proof import ProofFormatError
from zksidecar.prover.verify import VerificationError
from zksidecar.ringbuf import ring
from zksidecar.tools import proofs
from zksidecar.tools.cli import main

from sample_ops import CSV

#: zk mode at capacity 2^8 reaches 16 bits: small, fast proofs to corrupt
ZK_BITS = "16"
GIB = 1 << 30


@dataclasses.dataclass
class Run:
    code: int | None
    out: str
    err: str
    traceback: str | None

    @property
    def text(self) -> str:
        return self.out + self.err


def cli(*argv: str) -> Run:
    """`zksidecar ARGV` in this process: its exit status and output, and the
    traceback of any exception that escaped main (what a user would see)."""
    out, err = io.StringIO(), io.StringIO()
    code, tb = None, None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code
        except BaseException as exc:        # noqa: BLE001 - a traceback is the finding
            tb = "".join(traceback.format_exception(exc))[-1500:]
    return Run(code, out.getvalue(), err.getvalue(), tb)


def cli_process(*argv: str, stdin: bytes | None = None, memory: int = GIB, timeout: float = 60):
    """`zksidecar ARGV` as a subprocess under an address-space limit of
    `memory` bytes (a reader that trusts a size, or reads a device whole,
    then fails fast with MemoryError instead of taking the host's RAM)."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    return subprocess.run([sys.executable, "-m", "zksidecar.tools.cli", *argv], input=stdin,
                          capture_output=True, timeout=timeout, preexec_fn=limit)


def refused(r: Run, *where: str, code: int | tuple[int, ...] = 2) -> None:
    """A clean refusal: the exit status, no traceback, and every `where`
    (a path, a field) named in the message."""
    assert r.traceback is None, r.traceback
    assert "Traceback" not in r.err
    codes = code if isinstance(code, tuple) else (code,)
    assert r.code in codes, (r.code, r.text[-800:])
    for w in where:
        assert w in r.text, (w, r.text[-800:])


def _copy_with(src: str, d: str, file: str, data: bytes | None) -> str:
    """A fresh copy `d` of the directory `src` with `file` in it replaced by
    `data`, or by a directory when `data` is None."""
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(src, d)
    target = os.path.join(d, file)
    os.remove(target)
    if data is None:
        os.mkdir(target)
    else:
        open(target, "wb").write(data)
    return d


def put(data: bytes, offset: int, fmt: str, value) -> bytes:
    b = bytearray(data)
    struct.pack_into("<" + fmt, b, offset, value)
    return bytes(b)


def tree_digest(directory: str) -> dict[str, str]:
    return {os.path.relpath(os.path.join(root, f), directory):
            hashlib.sha256(open(os.path.join(root, f), "rb").read()).hexdigest()
            for root, _, files in os.walk(directory) for f in files}


# ---- honest artifacts, made once ----

@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """ops.csv, its transparent chain p/ (capacity 16, batches of 4: three
    proofs) and its zk chain pz/ (capacity 256, 16 bits) with its key."""
    d = tmp_path_factory.mktemp("audit")
    (d / "ops.csv").write_text(CSV)
    assert proofs.prove_main(str(d / "ops.csv"), "auto", 16, 4, str(d / "p"), 100, out=io.StringIO()) == 0
    assert proofs.prove_main(str(d / "ops.csv"), "auto", 256, 4, str(d / "pz"), int(ZK_BITS),
                             out=io.StringIO(), zk=True, key=str(d / "key"), new_key=True) == 0
    return d


@pytest.fixture(scope="module")
def chain(work) -> list[str]:
    return sorted(glob.glob(str(work / "p" / "batch-*.zkb")))


@pytest.fixture(scope="module")
def zk_chain(work) -> list[str]:
    return sorted(glob.glob(str(work / "pz" / "batch-*.zkb")))


@pytest.fixture(scope="module")
def zk_demo(tmp_path_factory):
    """A short `zksidecar demo --zk`: a zk proof store (private files, key,
    zk-chain.json), its journal, an exported chain and receipts."""
    d = tmp_path_factory.mktemp("zkdemo") / "demo"
    done = subprocess.run([sys.executable, "-m", "zksidecar.tools.cli", "demo", "--zk", "--seconds", "1",
                           "--rate", "50", "--dir", str(d)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return d


def store_of(files: list[str], directory: str) -> str:
    """A proof store holding `files` as symbol 0's batches 0, 1, ..."""
    with ProofStore(directory) as s:
        for bid, f in enumerate(files):
            s.put(0, bid, open(f, "rb").read())
    return directory


# ==== batch proof files (docs/PROOF_FORMAT.md) ====

@pytest.mark.parametrize("length", [0, 1, 4, 5, 6, 20, 40, 100, 200, 1000, -1])
def test_a_truncated_proof_file_is_refused_naming_file_and_offset(chain, tmp_path, length):
    raw = open(chain[0], "rb").read()
    bad = tmp_path / "cut.zkb"
    bad.write_bytes(raw[:length] if length >= 0 else raw[:-1])
    refused(cli("verify", str(bad), "--jobs", "1"), str(bad), "truncated", "offset")


def _proof_header_cases(raw: bytes):
    n_ops = struct.unpack_from("<I", raw, 209)[0]
    trades = 213 + 64 * n_ops
    n_trades = struct.unpack_from("<I", raw, trades)[0]
    length = trades + 4 + 48 * n_trades
    stark = length + 8
    return {
        "version 5 (old)": (put(raw, 4, "H", 5), "version 5"),
        "version 3 (old)": (put(raw, 4, "H", 3), "version 3"),
        "version 65535": (put(raw, 4, "H", 0xFFFF), "version 65535"),
        "magic": (b"XXXX" + raw[4:], "magic"),
        "log2 capacity 255": (put(raw, 18, "B", 255), "capacity"),
        "log2 ops 255": (put(raw, 20, "B", 255), "ops domain"),
        "link count 2^32-1": (put(raw, 61, "I", 0xFFFFFFFF), "needs 68719476736 bytes"),
        "op count 2^32-1": (put(raw, 209, "I", 0xFFFFFFFF), "operations needs"),
        "trade count 2^32-1": (put(raw, trades, "I", 0xFFFFFFFF), "trades needs"),
        "proof length 2^64-1": (put(raw, length, "Q", 2**64 - 1), "proof needs"),
        "proof length short": (put(raw, length, "Q", 100), "unexpected bytes"),
        "trailing byte": (raw + b"\0", "unexpected bytes"),
        "stark magic": (put(raw, stark, "4s", b"ABCD"), "magic"),
        "stark log2 N 30": (put(raw, stark + 6, "B", 30), "2^30"),
        "stark blowup 0": (put(raw, stark + 8, "B", 0), "log_blowup"),
        "stark queries 65535": (put(raw, stark + 9, "H", 0xFFFF), "num_queries"),
        "stark folding 3": (put(raw, stark + 12, "B", 3), "fri_folding_factor"),
        "stark final degree 2^32-1": (put(raw, stark + 13, "I", 0xFFFFFFFF), "fri_max_final_degree"),
    }


def test_each_proof_header_field_corrupted_is_refused_by_name(chain, tmp_path):
    raw = open(chain[0], "rb").read()
    for name, (data, words) in _proof_header_cases(raw).items():
        bad = tmp_path / f"{name.replace(' ', '-')}.zkb"
        bad.write_bytes(data)
        refused(cli("verify", str(bad), "--jobs", "1"), str(bad), words)


@pytest.mark.parametrize("which", ["transparent", "zk"])
def test_flipped_bits_anywhere_give_only_format_or_verification_errors(chain, zk_chain, which):
    """Every single-bit flip (a sample, dense in the header) decodes to
    ProofFormatError or verifies to a VerificationError: no other exception."""
    path, bits = (chain[0], 100) if which == "transparent" else (zk_chain[0], int(ZK_BITS))
    raw = open(path, "rb").read()
    rnd = random.Random(11)
    for k in range(300 if which == "transparent" else 150):
        b = bytearray(raw)
        pos = rnd.randrange(len(b)) if k % 2 else rnd.randrange(min(len(b), 800))
        b[pos] ^= 1 << rnd.randrange(8)
        try:
            bp, air = proof_file.decode_with_air(bytes(b))
            result = check_alone(bp, bits, MAX_TRACE_LENGTH, b"", air)
        except (ProofFormatError, VerificationError):
            continue
        assert not isinstance(result, Exception) or isinstance(result, (ProofFormatError, VerificationError)), \
            (pos, repr(result))


@pytest.mark.parametrize("case", ["missing", "empty", "directory", "non-utf8 name"])
def test_missing_empty_or_odd_proof_paths_are_refused(chain, tmp_path, case):
    if case == "missing":
        path = str(tmp_path / "nope.zkb")
    elif case == "empty":
        path = str(tmp_path / "empty.zkb")
        open(path, "wb").close()
    elif case == "directory":
        path = str(tmp_path / "adir")
        os.mkdir(path)
    else:
        path = os.fsdecode(os.fsencode(str(tmp_path)) + b"/\xff\xfe.zkb")
        open(path, "wb").write(open(chain[0], "rb").read()[:50])
    r = cli("verify", path, "--jobs", "1")
    refused(r, path if case != "non-utf8 name" else "truncated")


def test_a_report_path_that_is_an_input_proof_is_refused_and_the_proof_kept(chain, tmp_path):
    victim = tmp_path / "batch-000000.zkb"
    shutil.copy(chain[0], victim)
    before = victim.read_bytes()
    r = cli("verify", str(victim), "--jobs", "1", "--report", str(victim))
    assert victim.read_bytes() == before
    refused(r, str(victim))


def test_a_report_path_that_is_no_regular_file_is_refused_and_left_in_place(chain, tmp_path):
    """--report naming a FIFO (as /dev/null or /dev/stdout would be a
    device) or a directory: refused, exit 2 naming it, each left as it was
    (the report's rename put a regular file in its place: run as root,
    `--report /dev/null` replaced the machine's /dev/null)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    refused(cli("verify", chain[0], "--jobs", "1", "--report", str(fifo)), str(fifo), "FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    folder = tmp_path / "folder"
    folder.mkdir()
    refused(cli("verify", chain[0], "--jobs", "1", "--report", str(folder)), str(folder))
    assert folder.is_dir() and not os.listdir(folder)
    assert sorted(os.listdir(tmp_path)) == ["fifo", "folder"]         # no temporary file left


@pytest.mark.parametrize("given", ["files", "store"])
def test_a_report_path_that_is_no_regular_file_is_refused_before_anything_is_verified(
        chain, zk_demo, tmp_path, given):
    """A store's verification may take hours: --report naming a FIFO is
    refused at once, not after every proof was verified (it was: the verdict
    printed, then exit 2 at the report's write)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    inputs = [*chain, "--jobs", "1"] if given == "files" else ["--store", str(zk_demo / "proofs"), "--jobs", "1"]
    r = cli("verify", *inputs, "--report", str(fifo))
    refused(r, str(fifo), "FIFO")
    assert "verified" not in r.out, r.out
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.parametrize("aim", ["a file", "a device", "itself"])
def test_a_report_at_a_symlink_replaces_the_link_never_what_it_leads_to(chain, tmp_path, aim):
    """A link at the report's path is replaced, as a rename replaces it: a
    link planted in a shared directory cannot aim a report (written as root)
    at another file or a device, and the file it led to keeps its bytes."""
    (tmp_path / "real.json").write_text("old")
    link = tmp_path / "link.json"
    os.symlink({"a file": "real.json", "a device": "/dev/null", "itself": "link.json"}[aim], link)
    assert cli("verify", chain[0], "--jobs", "1", "--report", str(link)).code == 0
    assert not os.path.islink(link)
    assert json.loads(link.read_text())["format"] == "zksidecar-verify-report"
    assert (tmp_path / "real.json").read_text() == "old"
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.parametrize("there", ["a link someone planted", "a file a crash left"])
def test_a_temporary_file_already_there_is_left_alone(tmp_path, there):
    """The report's temporary file is made new, under a name no one can
    foresee: one already at the process's old name (a link someone planted
    to aim the write elsewhere, or the file a crashed run of the same pid
    left: in a container every run may be pid 1) is neither written through
    nor removed, and the report is written all the same."""
    from zksidecar.prover.orderbook import json_file

    (tmp_path / "other").write_text("theirs")
    stale = tmp_path / f"r.json.tmp{os.getpid()}"
    if there == "a link someone planted":
        os.symlink("other", stale)
    else:
        stale.write_text("half a report")
    json_file.write(str(tmp_path / "r.json"), {"format": "x"})
    assert json.loads((tmp_path / "r.json").read_text()) == {"format": "x"}
    assert (tmp_path / "other").read_text() == "theirs"
    assert os.path.islink(stale) if there == "a link someone planted" else stale.read_text() == "half a report"
    assert sorted(os.listdir(tmp_path)) == ["other", "r.json", stale.name]


@pytest.mark.parametrize("fmt", ["auto", "csv", "lobster"])
@pytest.mark.parametrize("command", ["replay", "prove"])
def test_an_empty_file_of_operations_is_refused(tmp_path, command, fmt):
    """A file of no bytes is no file of operations (a CSV file has its
    header): replay ran it as the empty book, exit 0 and a digest."""
    empty = tmp_path / "ops.csv"
    empty.write_bytes(b"")
    extra = ["--capacity", "16", "--out", str(tmp_path / "p")] if command == "prove" else []
    refused(cli(command, str(empty), "--format", fmt, *extra), f"{empty}:1:", "empty")


@pytest.mark.parametrize("fmt", ["auto", "csv", "lobster"])
@pytest.mark.parametrize("data", [b"\n", b"\xef\xbb\xbf", b"\n\r\n\n"], ids=["newline", "bom", "blank lines"])
def test_a_file_of_blank_lines_is_refused_as_empty(tmp_path, fmt, data):
    """`echo > ops.csv` leaves one newline: no CSV header and no LOBSTER
    message either, refused as the empty file is (auto and lobster ran it as
    the empty book, exit 0 and a digest)."""
    blank = tmp_path / "ops.csv"
    blank.write_bytes(data)
    refused(cli("replay", str(blank), "--format", fmt), f"{blank}:1:")


def test_a_file_of_one_overlong_line_is_named_for_it_not_called_empty(tmp_path):
    from zksidecar.engine.replay import MAX_LINE_BYTES

    long = tmp_path / "ops.csv"
    long.write_bytes(b"1" * (MAX_LINE_BYTES + 10) + b"\n")
    r = cli("replay", str(long), "--format", "lobster")
    refused(r, f"{long}:1:", "more than")
    assert "empty" not in r.text, r.text


# ==== reading what is not a regular file, or is endless (claimed sizes of the OS) ====

DEVICE_READERS = {
    "verify PROOF": lambda w: ["verify", "/dev/zero", "--jobs", "1"],
    "verify --after PREV": lambda w: ["verify", str(w / "p" / "batch-000001.zkb"), "--after", "/dev/zero",
                                      "--jobs", "1"],
    "verify --since REPORT": lambda w: ["verify", str(w / "p" / "batch-000000.zkb"), "--since", "/dev/zero",
                                        "--jobs", "1"],
    "verify-receipt RECEIPT": lambda w: ["verify-receipt", "/dev/zero", str(w / "pz" / "batch-000000.zkb")],
    "daemon --check-config": lambda w: ["daemon", "--check-config", "--config", "/dev/zero"],
    "replay FILE": lambda w: ["replay", "/dev/zero"],
}


@pytest.mark.parametrize("command", list(DEVICE_READERS))
def test_an_endless_file_is_refused_without_reading_it_whole(work, command):
    done = cli_process(*DEVICE_READERS[command](work))
    err = done.stderr.decode(errors="replace")
    assert "Traceback" not in err, err[-600:]
    assert done.returncode == 2, (done.returncode, err[-600:])
    assert "/dev/zero" in err, err[-600:]


# ==== receipts (docs/FORMATS.md "Receipt") ====

def _receipt_cases(raw: bytes):
    return {
        "empty": (b"", "176 bytes, got 0"),
        "header cut": (raw[:100], "176 bytes, got 100"),
        "header only": (raw[:176], "at byte 176"),
        "last byte cut": (raw[:-1], "remain"),
        "trailing": (raw + b"\0" * 8, "trailing bytes"),
        "magic": (b"ZKSX" + raw[4:], "magic"),
        "version 2": (put(raw, 4, "H", 2), "version 2"),
        "op_count 2^32-1": (put(raw, 68, "I", 0xFFFFFFFF), "op_count"),
        "trade_count 2^32-1": (put(raw, 72, "I", 0xFFFFFFFF), "trade_count"),
        "handle_count 2^32-1": (put(raw, 76, "I", 0xFFFFFFFF), "handle_count"),
    }


def test_a_corrupt_receipt_is_refused_naming_file_and_field(zk_demo, tmp_path):
    raw = (zk_demo / "receipt-0.zkr").read_bytes()
    proof = str(zk_demo / "chain-0" / "batch-000000.zkb")
    assert cli("verify-receipt", str(zk_demo / "receipt-0.zkr"), proof).code == 0
    for name, (data, words) in _receipt_cases(raw).items():
        bad = tmp_path / "bad.zkr"
        bad.write_bytes(data)
        refused(cli("verify-receipt", str(bad), proof), str(bad), words, "REFUSED", code=1)
    # decoded, then checked against the proof's statement: the field is named
    bad.write_bytes(put(raw, 64, "I", 1 << 31))
    refused(cli("verify-receipt", str(bad), proof), "trace_length", "REFUSED", code=1)


def test_random_receipt_flips_never_check_and_never_crash(zk_demo, tmp_path):
    raw = (zk_demo / "receipt-0.zkr").read_bytes()
    proof = str(zk_demo / "chain-0" / "batch-000000.zkb")
    rnd = random.Random(12)
    for _ in range(60):
        b = bytearray(raw)
        b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
        bad = tmp_path / "flip.zkr"
        bad.write_bytes(bytes(b))
        refused(cli("verify-receipt", str(bad), proof), "REFUSED", code=1)


def test_verify_receipt_caps_the_heights_a_proof_claims(zk_demo):
    """verify-receipt takes verify's --max-trace-length (it had the default
    cap only): a proof claiming more rows is refused before anything is
    allocated for it."""
    receipt = str(zk_demo / "receipt-0.zkr")
    proof = str(zk_demo / "chain-0" / "batch-000000.zkb")
    assert cli("verify-receipt", receipt, proof, "--max-trace-length", "65536").code == 0
    refused(cli("verify-receipt", receipt, proof, "--max-trace-length", "16"), "REFUSED", "over the 16", code=1)
    refused(cli("verify-receipt", receipt, proof, "--max-trace-length", "100"), "--max-trace-length")


def test_verify_receipt_an_unreadable_chain_is_an_input_error(zk_demo, tmp_path):
    """--chain DIR that is missing, not a directory or cannot be listed:
    exit 2 naming it (as a file that cannot be read), not a REFUSED
    verdict on the receipt (a directory that is not a chain is refused:
    test_a_receipt_refused_for_its_chain_says_why)."""
    receipt = str(zk_demo / "receipt-0.zkr")
    proof = str(zk_demo / "chain-0" / "batch-000000.zkb")
    assert cli("verify-receipt", receipt, proof, "--chain", str(zk_demo / "chain-0")).code == 0
    missing = str(tmp_path / "nonexist")
    r = cli("verify-receipt", receipt, proof, "--chain", missing)
    refused(r, f"{missing}: No such file or directory")
    assert "REFUSED" not in r.text
    refused(cli("verify-receipt", receipt, proof, "--chain", receipt), f"{receipt}: Not a directory")
    refused(cli("verify", missing), missing)


def test_a_receipt_against_the_wrong_proof_is_refused(zk_demo, zk_chain, chain):
    receipt = str(zk_demo / "receipt-0.zkr")
    refused(cli("verify-receipt", receipt, chain[0]), "transparent proof", code=1)
    refused(cli("verify-receipt", receipt, zk_chain[0]), "REFUSED", code=1)
    refused(cli("verify-receipt", receipt, "/nonexistent.zkb"), "/nonexistent.zkb")


# 0 is a threshold (any proof: toy parameters, as the tests' own chains use);
# below it, or above the most any proof reaches (params.MAX_SECURITY_BITS), is not
@pytest.mark.parametrize("bits", ["-5", "128"])
def test_a_meaningless_security_threshold_is_a_usage_error(chain, bits):
    refused(cli("verify", chain[0], "--jobs", "1", "--min-security", bits), "--min-security")


# ==== the chain manifest (docs/FORMATS.md "Chain manifest") ====

MANIFEST_EDITS = {
    "version as a string": (lambda m: m.update(version="1"), "version"),
    "version 2": (lambda m: m.update(version=2), "version 2"),
    "symbol a float": (lambda m: m.update(symbol=0.0), '"symbol"'),
    "symbol null": (lambda m: m.update(symbol=None), '"symbol"'),
    "batches a dict": (lambda m: m.update(batches={}), '"batches"'),
    "file ..": (lambda m: m["batches"][0].update(file=".."), "batches[0]"),
    "file null": (lambda m: m["batches"][0].update(file=None), "batches[0]"),
    "sha256 upper case": (lambda m: m["batches"][0].update(sha256=m["batches"][0]["sha256"].upper()), "sha256"),
    "extra key": (lambda m: m["batches"][0].update(extra=1), "batches[0]"),
    "batch_id -1": (lambda m: m["batches"][0].update(batch_id=-1), "batch_id"),
}


def _exported(zk_demo, tmp_path, name: str) -> str:
    d = str(tmp_path / name)
    shutil.copytree(zk_demo / "chain-0", d)
    return d


@pytest.mark.parametrize("edit", list(MANIFEST_EDITS))
def test_a_malformed_manifest_is_refused_naming_the_key(zk_demo, tmp_path, edit):
    d = _exported(zk_demo, tmp_path, "chain")
    path = os.path.join(d, "manifest.json")
    m = json.load(open(path))
    change, words = MANIFEST_EDITS[edit]
    change(m)
    json.dump(m, open(path, "w"))
    refused(cli("verify", d, "--jobs", "1"), path, words)


@pytest.mark.parametrize("text,words", [("", "not JSON"), ("\"x\"", "not a zksidecar chain manifest"),
                                        ('{"format":"zksidecar-chain","version":1,"symbol":NaN,"batches":[1]}',
                                         '"symbol"'),
                                        ('{"format":"zksidecar-chain","version":1,"symbol":' + "9" * 5000
                                         + ',"batches":[1]}', "not JSON")])
def test_a_manifest_that_is_not_a_manifest_is_refused(zk_demo, tmp_path, text, words):
    d = _exported(zk_demo, tmp_path, "chain")
    open(os.path.join(d, "manifest.json"), "w").write(text)
    refused(cli("verify", d, "--jobs", "1"), "manifest.json", words)


def test_a_manifest_naming_a_directory_or_a_missing_file_is_rejected(zk_demo, tmp_path):
    d = _exported(zk_demo, tmp_path, "chain")
    os.remove(os.path.join(d, "batch-000000.zkb"))
    refused(cli("verify", d, "--jobs", "1"), "batch-000000.zkb", code=1)
    os.mkdir(os.path.join(d, "batch-000000.zkb"))
    refused(cli("verify", d, "--jobs", "1"), "batch-000000.zkb", code=1)


DEEP_JSON = "[" * 100_000 + "]" * 100_000


def test_a_deeply_nested_manifest_is_refused(zk_demo, tmp_path):
    d = _exported(zk_demo, tmp_path, "chain")
    open(os.path.join(d, "manifest.json"), "w").write(DEEP_JSON)
    refused(cli("verify", d, "--jobs", "1"), "manifest.json")


# ==== the verification report (docs/FORMATS.md "Verification report") ====

@pytest.fixture(scope="module")
def report(chain, tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("report") / "rep.json")
    assert cli("verify", chain[0], chain[1], "--jobs", "1", "--report", path).code == 0
    return path


REPORT_VALUES = [None, "x", -1, 1.5, [], {}, True, "zz"]


def test_every_report_field_of_a_wrong_type_is_refused_without_a_traceback(chain, report, tmp_path):
    base = json.load(open(report))
    argv = ["verify", *chain, "--jobs", "1", "--since"]
    edited = tmp_path / "rep.json"
    for where, key in [("top", k) for k in base] + [("symbol", k) for k in base["symbols"][0]]:
        for value in REPORT_VALUES:
            doc = json.loads(json.dumps(base))
            (doc if where == "top" else doc["symbols"][0])[key] = value
            if doc == base:
                continue
            edited.write_text(json.dumps(doc))
            r = cli(*argv, str(edited))
            assert r.traceback is None, (key, value, r.traceback)
            # refused, but for what this run does not read: the file list (the
            # files given are hashed instead) and the empty forms of zk_chain and store
            tolerated = key == "files" or (key in ("zk_chain", "store") and value in (None, []))
            assert r.code != 0 or tolerated, (key, value, r.text[-400:])


@pytest.mark.parametrize("key", ["operations", "security_bits"])
def test_a_report_count_past_u64_is_refused(chain, report, tmp_path, key):
    doc = json.load(open(report))
    doc["symbols"][0][key] = 2**70
    edited = tmp_path / "rep.json"
    edited.write_text(json.dumps(doc))
    refused(cli("verify", *chain, "--jobs", "1", "--since", str(edited)), str(edited), key)


def test_a_deeply_nested_report_is_refused(chain, tmp_path):
    edited = tmp_path / "rep.json"
    edited.write_text(DEEP_JSON)
    refused(cli("verify", *chain, "--jobs", "1", "--since", str(edited)), str(edited))


# ==== the proof store (docs/STORE.md "Proof store") ====

def _index_cases(idx: bytes, dat: bytes) -> dict[str, tuple[str, bytes | None]]:
    cases: dict[str, tuple[str, bytes | None]] = {}
    for n in (0, 1, 39, 41, len(idx) - 1):
        cases[f"index cut to {n}"] = ("index.zki", idx[:n])
    last = len(idx) // 40 - 1
    for k in (0, last):
        for name, off, fmt, value in [("segment", 4, "I", 0xFFFFFFFF), ("batch_id", 8, "Q", 2**64 - 1),
                                      ("offset", 16, "Q", 2**63), ("length", 24, "I", 0xFFFFFFFF),
                                      ("state", 36, "I", 1)]:
            b = bytearray(put(idx, 40 * k + off, fmt, value))
            struct.pack_into("<I", b, 40 * k + 32, zlib.crc32(bytes(b[40 * k:40 * k + 32])))
            cases[f"entry {k} {name}"] = ("index.zki", bytes(b))
    for n in (0, 31, 33, 1000):
        cases[f"data cut to {n}"] = ("store-000000.zkd", dat[:n])
    cases["data magic"] = ("store-000000.zkd", put(dat, 0, "I", 0))
    cases["data length 2^32-1"] = ("store-000000.zkd", put(dat, 12, "I", 0xFFFFFFFF))
    cases["index a directory"] = ("index.zki", None)
    return cases


def test_a_damaged_store_index_or_data_never_crashes_a_reader_nor_is_changed(chain, tmp_path):
    honest = store_of(chain, str(tmp_path / "honest"))
    idx = open(os.path.join(honest, "index.zki"), "rb").read()
    dat = open(os.path.join(honest, "store-000000.zkd"), "rb").read()
    for name, (file, data) in _index_cases(idx, dat).items():
        d = _copy_with(honest, str(tmp_path / "s"), file, data)
        before = tree_digest(d)
        out = str(tmp_path / "export")
        shutil.rmtree(out, ignore_errors=True)
        for argv in (["verify", "--store", d, "--jobs", "1"], ["export", "--store", d, "--symbol", "0",
                                                                "--out", out],
                     ["store", "prune", d, "--keep", "1", "--dry-run"]):
            r = cli(*argv)
            assert r.traceback is None, (name, argv[0], r.traceback)
            assert tree_digest(d) == before, (name, argv[0], "a read-only command changed the store")


def _newest_flipped(chain, tmp_path) -> str:
    """A store of the chain whose newest proof has one bit flipped mid-proof:
    damage the index vouches against (its entry's CRC of the proof is
    intact), not a torn write."""
    d = store_of(chain, str(tmp_path / "store"))
    seg = os.path.join(d, "store-000000.zkd")
    b = bytearray(open(seg, "rb").read())
    b[len(b) - 5000] ^= 0x40
    open(seg, "wb").write(bytes(b))
    return d


def test_a_damaged_newest_proof_fails_verify_store(chain, tmp_path):
    d = _newest_flipped(chain, tmp_path)
    r = cli("verify", "--store", d, "--jobs", "1")
    assert r.traceback is None
    assert r.code == 1 and "batch 2" in r.text, r.text


def test_a_damaged_newest_proof_fails_export(chain, tmp_path):
    d = _newest_flipped(chain, tmp_path)
    r = cli("export", "--store", d, "--symbol", "0", "--out", str(tmp_path / "out"))
    assert r.traceback is None
    assert r.code == 1 and "batch 2" in r.text, r.text


def test_store_prune_never_destroys_a_damaged_proof(chain, tmp_path):
    d = _newest_flipped(chain, tmp_path)
    before = tree_digest(d)
    r = cli("store", "prune", d, "--keep", "1")
    assert r.traceback is None
    after = tree_digest(d)
    assert after["store-000000.zkd"] == before["store-000000.zkd"], r.text


@pytest.mark.parametrize("argv", [["verify", "--store", "{f}", "--jobs", "1"],
                                  ["export", "--store", "{f}", "--symbol", "0", "--out", "{t}/o"],
                                  ["store", "prune", "{f}", "--keep", "1"],
                                  ["receipt", "--store", "{f}", "--symbol", "0", "--seq", "1", "--out", "{t}/r"]])
def test_a_store_path_that_is_a_file_is_refused(work, tmp_path, argv):
    f = str(work / "ops.csv")
    r = cli(*[a.format(f=f, t=tmp_path) for a in argv])
    refused(r, f)


@pytest.mark.parametrize("argv", [["verify", "--store", "{d}", "--jobs", "1"],
                                  ["export", "--store", "{d}", "--symbol", "0", "--out", "{t}/o"],
                                  ["store", "prune", "{d}", "--keep", "1"],
                                  ["store", "archive", "{d}", "--keep", "1", "--to", "{t}/a"],
                                  ["receipt", "--store", "{d}", "--symbol", "0", "--seq", "1", "--out", "{t}/r"]])
@pytest.mark.parametrize("kind", ["symlink loop", "name too long"])
def test_a_store_path_that_cannot_be_listed_is_refused(tmp_path, argv, kind):
    """A store directory whose listing fails for a reason other than absence
    (ELOOP, ENAMETOOLONG; EACCES, EIO alike): exit 2 naming the path and the
    reason (it escaped not_a_store as an OSError traceback)."""
    if kind == "symlink loop":
        d = str(tmp_path / "loop")
        os.symlink("loop", d)
    else:
        d = str(tmp_path / ("a" * 300))
    r = cli(*[a.format(d=d, t=tmp_path) for a in argv])
    refused(r, d)
    assert "symbolic links" in r.text or "too long" in r.text, r.text


# ==== zk store: private files, key, chain record (docs/STORE.md, docs/FORMATS.md) ====

def _zk_store_cases(src: str) -> dict[str, tuple[str, bytes | None]]:
    zkp = open(os.path.join(src, "private", "S0-B0.zkp"), "rb").read()
    cases: dict[str, tuple[str, bytes | None]] = {
        f"private cut to {n}": ("private/S0-B0.zkp", zkp[:n]) for n in (0, 79, 80, 144, len(zkp) - 1)}
    cases["private trailing"] = ("private/S0-B0.zkp", zkp + b"\0" * 64)
    cases["private magic"] = ("private/S0-B0.zkp", put(zkp, 0, "I", 0))
    cases["private n_ops 2^32-1"] = ("private/S0-B0.zkp", put(zkp, 12, "I", 0xFFFFFFFF))
    cases["private n_trades 2^32-1"] = ("private/S0-B0.zkp", put(zkp, 32, "I", 0xFFFFFFFF))
    cases["private a directory"] = ("private/S0-B0.zkp", None)
    cases["key of 31 bytes"] = ("private/key", b"\0" * 31)
    cases["another key"] = ("private/key", b"\1" * 32)
    cases["key a directory"] = ("private/key", None)
    cases["chain record deep"] = ("zk-chain.json", DEEP_JSON.encode())
    cases["chain record empty"] = ("zk-chain.json", b"")
    cases["chain record not UTF-8"] = ("zk-chain.json", b"\xff\xfe")
    return cases


def test_a_damaged_zk_store_gives_a_receipt_refusal_naming_the_file(zk_demo, tmp_path):
    src = str(zk_demo / "proofs")
    for name, (file, data) in _zk_store_cases(src).items():
        d = _copy_with(src, str(tmp_path / "zs"), file, data)
        out = tmp_path / "r.zkr"
        if out.exists():
            out.unlink()
        r = cli("receipt", "--store", d, "--symbol", "0", "--seq", "3", "--out", str(out))
        refused(r, code=(1, 2))
        assert os.path.basename(file) in r.text or "leaves differ" in r.text, (name, r.text)
        assert not out.exists()


@pytest.mark.parametrize("symbol", ["71", "-1"])
def test_reprove_of_a_symbol_the_store_does_not_hold_is_refused(zk_demo, symbol):
    """reprove --symbol S, S not in the store (a typo): exit 2 naming the
    symbols it holds, as export and store prune say it; it said "no
    damaged proof", exit 0, as if S's proofs had been checked."""
    r = cli("reprove", "--config", str(zk_demo / "zksidecar.toml"), "--symbol", symbol)
    refused(r, f"no proofs of symbol {symbol}", "symbols stored: 0")
    assert cli("reprove", "--config", str(zk_demo / "zksidecar.toml"), "--symbol", "0").code == 0


def test_reprove_leaves_a_torn_journal_tail_in_place(zk_demo, tmp_path):
    """reprove reads the journal: a torn tail (here the segment cut mid-entry)
    is named and left for the daemon's start, its bytes kept (reprove's open
    of the journal truncated it, up to the whole segment)."""
    d = tmp_path / "demo"
    shutil.copytree(zk_demo, d)
    config = d / "c.toml"
    config.write_text((zk_demo / "zksidecar.toml").read_text().replace(str(zk_demo), str(d)))
    seg = d / "proofs" / "store-000000.zkd"
    b = bytearray(seg.read_bytes())
    b[len(b) - 5000] ^= 0x40            # a proof damaged at rest: reprove reads the journal for it
    seg.write_bytes(bytes(b))
    journal = d / "journal" / "journal-000000.zkj"
    cut = journal.read_bytes()[:1000]
    journal.write_bytes(cut)
    r = cli("reprove", "--config", str(config))
    refused(r, "journal-000000.zkj", "left in place", code=1)
    assert journal.read_bytes() == cut


# ==== the journal (docs/STORE.md "Journal") and snapshots ====

def test_journal_repair_of_any_damage_sets_bytes_aside_and_loses_none(zk_demo, tmp_path):
    src = str(zk_demo / "journal")
    seg = open(os.path.join(src, "journal-000000.zkj"), "rb").read()
    cases = {f"cut to {n}": seg[:n] for n in (0, 1, 31, 33, 100, len(seg) - 1)}
    for name, off, fmt in [("magic", 0, "I"), ("type", 5, "B"), ("length", 8, "I"), ("count", 12, "I")]:
        cases[name] = put(seg, off, fmt, 2 ** (8 * struct.calcsize(fmt)) - 1)
    rnd = random.Random(13)
    for _ in range(15):
        b = bytearray(seg)
        b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
        cases[f"flip {_}"] = bytes(b)
    for name, data in cases.items():
        d = str(tmp_path / "j")
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(src, d)
        open(os.path.join(d, "journal-000000.zkj"), "wb").write(data)
        size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        r = cli("journal", "repair", d)
        assert r.traceback is None and r.code == 0, (name, r.text)
        assert sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)) == size, name
        assert "intact" in cli("journal", "repair", d).out, name


@pytest.mark.parametrize("case", ["missing", "a file", "a symlink loop"])
def test_journal_repair_of_a_directory_it_cannot_list_says_why_plainly(work, tmp_path, case):
    """Said as `DIR: why`, not Python's `[Errno 2] No such file or directory: 'DIR'`."""
    d = {"missing": str(tmp_path / "nope"), "a file": str(work / "ops.csv"),
         "a symlink loop": str(tmp_path / "loop")}[case]
    if case == "a symlink loop":
        os.symlink("loop", d)
    r = cli("journal", "repair", d)
    refused(r, f"{d}: ")
    assert "[Errno" not in r.text, r.text


def test_a_journal_segment_that_is_a_directory_is_refused(zk_demo, tmp_path):
    d = str(tmp_path / "j")
    shutil.copytree(zk_demo / "journal", d)
    os.mkdir(os.path.join(d, "journal-000001.zkj"))
    refused(cli("journal", "repair", d), "journal-000001.zkj")


def test_a_snapshot_with_any_claimed_count_decodes_or_is_refused_by_offset(zk_demo):
    path = glob.glob(str(zk_demo / "journal" / "snapshot-*.zks"))[0]
    raw = open(path, "rb").read()

    def sealed(b: bytes) -> bytes:      # checksums made good: the counts themselves are the test
        b = bytearray(b)
        struct.pack_into("<I", b, 56, zlib.crc32(bytes(b[64:])))
        struct.pack_into("<I", b, 60, zlib.crc32(bytes(b[:60])))
        return bytes(b)
    cases = [raw[:n] for n in (0, 63, 64, 96, len(raw) - 1)]
    for off, fmt in [(12, "I"), (40, "I"), (48, "Q"), (80, "I"), (84, "I")]:
        for v in (2**31, 2 ** (8 * struct.calcsize(fmt)) - 1):
            cases.append(sealed(put(raw, off, fmt, v)))
    for data in cases:
        try:
            snapshot_file.decode(data, path)
        except snapshot_file.SnapshotError as exc:
            assert path in str(exc) and "byte" in str(exc), str(exc)


# ==== the daemon's configuration (docs/DAEMON.md) ====

def _config_base(tmp_path) -> str:
    return (f'[journal]\ndir = "{tmp_path}/j"\n[store]\ndir = "{tmp_path}/s"\n'
            f'[admin]\nsocket = "{tmp_path}/a.sock"\n')


def _config_with(tmp_path, section: str, line: str) -> str:
    """The base configuration with `line` added to [section]."""
    base, head = _config_base(tmp_path), f"[{section}]\n"
    return base.replace(head, head + line + "\n") if head in base else base + head + line + "\n"


def _check_config(tmp_path, text: bytes) -> Run:
    path = tmp_path / "c.toml"
    path.write_bytes(text)
    return cli("daemon", "--check-config", "--config", str(path))


def test_every_config_key_of_a_wrong_type_or_sign_is_refused_without_a_traceback(tmp_path):
    from zksidecar.daemon import config as C
    base = _config_base(tmp_path)
    assert _check_config(tmp_path, base.encode()).code == 0
    for section in dataclasses.fields(C.Config):
        cls = section.default_factory().__class__
        for f in dataclasses.fields(cls):
            for value in ("nan", "-1", '"x"', "[]", "1.5"):
                r = _check_config(tmp_path, _config_with(tmp_path, section.name, f"{f.name} = {value}").encode())
                assert r.traceback is None, (section.name, f.name, value, r.traceback)
                assert r.code in (0, 2), (section.name, f.name, value, r.code)


@pytest.mark.parametrize("text", [b'[ring]\nops = "\xff"\n', b"a = " + b"[" * 100_000 + b"]" * 100_000],
                         ids=["not UTF-8", "deeply nested"])
def test_a_config_that_is_not_toml_is_refused(tmp_path, text):
    refused(_check_config(tmp_path, text), "c.toml")


@pytest.mark.parametrize("section", ["ring", "state"])
def test_a_group_name_with_a_nul_is_refused(tmp_path, section):
    refused(_check_config(tmp_path, _config_with(tmp_path, section, 'group = "a\\u0000b"').encode()), "group")


@pytest.mark.parametrize("key", ["batch.batch_timeout_ms", "batch.max_pending", "book.resync_after",
                                 "journal.fsync_interval_ms", "journal.snapshot_every_ops"])
def test_an_integer_setting_past_u64_is_refused(tmp_path, key):
    section, name = key.split(".")
    refused(_check_config(tmp_path, _config_with(tmp_path, section, f"{name} = {2**70}").encode()), name)


def test_a_config_path_that_is_missing_or_a_directory_is_refused(tmp_path):
    refused(cli("daemon", "--check-config", "--config", str(tmp_path / "nope.toml")), "nope.toml")
    refused(cli("daemon", "--check-config", "--config", str(tmp_path)), str(tmp_path))


# ==== ring segments in /dev/shm (docs/RING.md) ====

@pytest.fixture
def ring_bytes():
    name = f"/zksidecar-audit-{os.getpid()}"
    ring.create(name, 64)
    path = "/dev/shm" + name
    raw = open(path, "rb").read()
    try:
        yield name, path, raw
    finally:
        if os.path.exists(path):
            os.remove(path)


RING_HEADERS = {
    "empty": lambda r: b"",
    "cut in the header": lambda r: r[:100],
    "cut in the records": lambda r: r[:-1],
    "magic": lambda r: put(r, 0, "Q", 0),
    "version 9": lambda r: put(r, 8, "I", 9),
    "record size 0": lambda r: put(r, 12, "I", 0),
    "capacity 2^63": lambda r: put(r, 16, "Q", 2**63),
    "capacity 3": lambda r: put(r, 16, "Q", 3),
    "mode 0": lambda r: put(r, 24, "I", 0),
    "records offset 2^63": lambda r: put(r, 32, "Q", 2**63),
    "segment size 2^62": lambda r: put(r, 48, "Q", 2**62),
    "producer slots 2^32-1": lambda r: put(r, 64, "I", 0xFFFFFFFF),
}


@pytest.mark.parametrize("case", list(RING_HEADERS))
def test_a_corrupt_ring_header_is_refused_and_left_alone(ring_bytes, case):
    name, path, raw = ring_bytes
    data = RING_HEADERS[case](raw)
    open(path, "wb").write(data)
    for action in ("list", "clean"):
        refused(cli("rings", action, name), name.lstrip("/"), "left alone")
        assert open(path, "rb").read() == data


@pytest.mark.parametrize("head,tail", [(100, 0), (2**64 - 1, 2**63), (0, 2**64 - 1)])
def test_corrupt_ring_indices_are_named_corrupt(ring_bytes, head, tail):
    name, path, raw = ring_bytes
    open(path, "wb").write(put(put(raw, 640, "Q", head), 384, "Q", tail))
    r = cli("rings", "list", name)
    assert r.traceback is None
    assert "corrupt" in r.text and r.code != 0, r.text


def test_ring_indices_across_the_wrap_are_a_fill_level(ring_bytes):
    """The indices are free-running u64s (csrc/ring/zkring.h): head 2^64 - 1
    and tail 0 is one record waiting across the wrap, not a corruption (the
    audit first took it for one) nor a negative count."""
    name, path, raw = ring_bytes
    open(path, "wb").write(put(put(raw, 640, "Q", 2**64 - 1), 384, "Q", 0))
    r = cli("rings", "list", name)
    assert r.code == 0 and r.traceback is None, r.text
    row = next(line for line in r.text.splitlines() if line.startswith(name.lstrip("/")))
    assert row.split()[5] == "1", row


def test_ring_names_that_are_paths_are_refused(tmp_path):
    refused(cli("rings", "list", "../../etc/passwd"), "ring name")
    refused(cli("rings", "clean", f"../..{tmp_path}/x"), "ring name")
    refused(cli("rings", "list", "/zksidecar-audit-none"), "does not exist")


# ==== frames of `zksidecar prover-server` (docs/API.md "External prover protocol") ====

def _request(**fields) -> bytes:
    h = dict(magic=b"ZKPQ", version=3, log_blowup=1, symbol=0, security_bits=100, batch_id=0,
             trace_length=1024, n_cells=0, n_ops=0, n_steps=0, n_trades=0, mode=0)
    h.update(fields)
    return struct.pack("<4sHHIIQIIIIII", *h.values())


def _responses(stdout: bytes) -> list[tuple[int, bytes]]:
    stream, got = io.BytesIO(stdout), []
    while (payload := frames.read_frame(stream)) is not None:
        status, _, _, _, body = frames.decode_response(payload)
        got.append((status, body))
    return got


def test_prover_server_answers_every_malformed_request_and_ends_a_broken_stream():
    requests = [b"", b"x" * 10, _request(magic=b"XXXX"), _request(version=2), _request(mode=7),
                _request(n_cells=2**32 - 1, n_ops=2**32 - 1, n_steps=2**32 - 1, n_trades=2**32 - 1),
                _request(), _request(security_bits=0, log_blowup=0), _request(n_cells=5) + b"\0" * 20]
    stream = b"".join(frames.frame(p) for p in requests) + struct.pack("<I", 100) + b"cut"
    done = cli_process("prover-server", stdin=stream)
    got = _responses(done.stdout)
    assert done.returncode == 2, done.stderr[-500:]
    assert b"Traceback" not in done.stderr
    assert len(got) == len(requests) + 1
    assert all(status == frames.ERROR for status, _ in got)
    assert b"broken frame stream" in got[-1][1] and b"3 of 100 bytes" in got[-1][1]


def test_prover_server_refuses_a_frame_over_the_limit_without_reading_it():
    done = cli_process("prover-server", stdin=struct.pack("<I", (1 << 30) + 1))
    assert done.returncode == 2 and b"Traceback" not in done.stderr
    assert b"over the 1073741824-byte limit" in _responses(done.stdout)[-1][1]


def test_prover_server_does_not_allocate_what_a_frame_header_claims():
    done = cli_process("prover-server", stdin=struct.pack("<I", 1 << 30))
    assert b"Traceback" not in done.stderr, done.stderr[-400:]
    assert done.returncode == 2
    assert b"broken frame stream" in _responses(done.stdout)[-1][1]


def test_prover_server_survives_fuzzed_witnesses(work):
    """An honest request (the chain's first batch as the daemon sends it),
    then copies with bytes of its cells, records, steps and trades changed:
    one response each, no crash (what is proven is the verifier's to judge)."""
    import numpy as np
    from zksidecar.daemon.batches import BatchPolicy, CloseReason
    from zksidecar.daemon.jobs import ProofJob
    from zksidecar.daemon.metrics import Metrics
    from zksidecar.daemon.sequencer import Sequencer
    from zksidecar.prover.orderbook.witness import trace_length_for

    ops = proofs.read_ops(str(work / "ops.csv"), "auto", 16)
    seq = Sequencer(16, trace_length_for(16, 16), BatchPolicy(16, 1.0), Metrics())
    closed = seq.feed(ops, np.zeros(len(ops), np.int64), 0.0) + seq.close_all(CloseReason.FLUSH)
    req = frames.encode_request(ProofJob.of(closed[0], 100))
    n_cells, n_ops, n_steps, n_trades = struct.unpack_from("<IIII", req, 28)
    edges = [48, 48 + 4 * n_cells, 48 + 4 * n_cells + 64 * n_ops,
             48 + 4 * n_cells + 64 * n_ops + 280 * n_steps, len(req)]
    rnd = random.Random(14)
    sent = [req]
    for k in range(80):
        lo, hi = edges[k % 4], edges[k % 4 + 1]
        b = bytearray(req)
        for _ in range(rnd.choice((1, 3))):
            p = rnd.randrange(lo, hi)
            b[p] = rnd.choice((b[p] ^ (1 << rnd.randrange(8)), 0xFF, 0x00))
        sent.append(bytes(b))
    done = cli_process("prover-server", stdin=b"".join(frames.frame(p) for p in sent))
    assert done.returncode == 0, done.stderr[-500:]
    got = _responses(done.stdout)
    assert len(got) == len(sent) and got[0][0] == frames.OK


# ==== numeric parameters and paths on the command line ====

@pytest.mark.parametrize("argv,words", [
    (["verify", "{p0}", "--jobs", "0"], "--jobs"),
    (["verify", "{p0}", "--min-security", "nan"], "--min-security"),
    (["verify", "{p0}", "--max-trace-length", "3"], "--max-trace-length"),
    (["prove", "{csv}", "--capacity", "16", "--out", "{t}/o", "--batch-size", "0"], "batch size"),
    (["prove", "{csv}", "--capacity", "16", "--out", "{t}/o", "--batch-size", "-1"], "batch size"),
    (["prove", "{csv}", "--capacity", "16", "--out", "{t}/o", "--security", "0"], "security_bits"),
    (["prove", "{csv}", "--capacity", "16", "--out", "{t}/o", "--trace-length", str(1 << 40)], "trace length"),
    (["prove", "{csv}", "--capacity", "16", "--out", "{t}/o", "--security", str(10**30)], "out of reach"),
    (["prove", "{csv}", "--zk", "--key", "{t}", "--out", "{t}/o", "--capacity", "256", "--security", "16"],
     "Is a directory"),
    (["prove", "{csv}", "--zk", "--key", "/dev/zero", "--out", "{t}/o", "--capacity", "256", "--security", "16"],
     "not a store key"),
    (["replay", "{csv}", "--capacity", str(1 << 60)], "--capacity"),
    (["replay", "{t}"], "Is a directory"),
    (["receipt", "--store", "{t}", "--symbol", "0", "--out", "{t}/r"], "--seq"),
    (["store", "prune", "{t}", "--older-than", "1.5d"], "not a duration"),
    (["store", "prune", "{t}", "--keep", "0"], "--keep"),
    (["stats", "--once", "--interval", "nan"], "interval"),
    (["stats", "--once", "--socket", "{t}/nosock"], "no such socket"),
    (["bench", "e2e", "--overload-seconds", "nan"], "--overload-seconds"),
    (["bench", "verify", "--batches", "0"], "--batches"),
    (["demo", "--ops", "0", "--dir", "{t}/d"], "--ops"),
    (["demo", "--dir", "{csv}"], "not a directory"),
])
def test_a_wrong_parameter_is_a_clear_refusal(work, chain, tmp_path, argv, words):
    argv = [a.format(p0=chain[0], csv=work / "ops.csv", t=tmp_path) for a in argv]
    if argv[0] == "verify":
        argv += ["--jobs", "1"] if "--jobs" not in argv else []
    r = cli(*argv)
    refused(r, words, code=(1, 2))
    assert r.code != 0


def test_prove_out_naming_a_file_is_refused(work, tmp_path):
    target = tmp_path / "file"
    target.write_text("keep me")
    refused(cli("prove", str(work / "ops.csv"), "--capacity", "16", "--out", str(target)), str(target))
    assert target.read_text() == "keep me"


def test_loadgen_negative_ops_is_a_usage_error():
    refused(cli("loadgen", "--ops", "-1"), "--ops")


@pytest.mark.parametrize("argv", [["--seconds", "nan"], ["--rate", "inf"]])
def test_demo_nan_or_infinite_durations_are_usage_errors(tmp_path, argv):
    refused(cli("demo", *argv, "--dir", str(tmp_path / "d")), argv[0])


def test_demo_negative_seconds_is_a_usage_error(tmp_path):
    refused(cli("demo", "--seconds", "-1", "--dir", str(tmp_path / "d")), "--seconds")


# ==== the admin socket's answers to `zksidecar stats` ====

@contextlib.contextmanager
def fake_daemon(body: bytes):
    """A Unix socket answering one GET with `body` as a 200 response."""
    d = tempfile.mkdtemp(prefix="zks-audit-", dir="/tmp")
    path = os.path.join(d, "admin.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.listen(1)

    def answer():
        c, _ = s.accept()
        c.recv(65536)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        c.close()
    t = threading.Thread(target=answer, daemon=True)
    t.start()
    try:
        yield path
    finally:
        s.close()
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("body", [b'"x"', b'{"a": "\xff"}', json.dumps({"uptime_s": "x", "ring": [], "batches": "x",
                                                                          "proofs": {"pool": []}}).encode()],
                         ids=["a string", "not UTF-8", "wrong types"])
def test_stats_shows_or_refuses_a_strange_status(body):
    with fake_daemon(body) as path:
        r = cli("stats", "--once", "--socket", path)
    assert r.traceback is None, r.traceback
    assert r.code == 0 or path in r.err


@pytest.mark.parametrize("body", [b'{"uptime_s": NaN}', b'{"uptime_s": Infinity}', DEEP_JSON.encode()],
                         ids=["NaN", "Infinity", "deeply nested"])
def test_stats_refuses_a_status_it_cannot_show(body):
    with fake_daemon(body) as path:
        r = cli("stats", "--once", "--socket", path)
    assert r.traceback is None, r.traceback


def test_a_receipt_refused_for_its_chain_says_why(zk_demo, tmp_path):
    """verify-receipt --chain DIR, DIR not a chain `export` wrote: the
    refusal carries the chain's reason (it had an empty one: the reason
    went to stderr ahead of it)."""
    receipt = str(zk_demo / "receipt-0.zkr")
    proof = str(zk_demo / "chain-0" / "batch-000000.zkb")
    r = cli("verify-receipt", receipt, proof, "--chain", str(tmp_path))
    refused(r, "REFUSED", code=1)
    stream = r.out if "REFUSED" in r.out else r.err       # the verdict's own stream
    verdict = stream[stream.index("REFUSED"):]
    assert f"the chain {tmp_path} does not verify" in verdict and "manifest.json" in verdict, r.text
