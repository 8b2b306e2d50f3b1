"""The verification report: what `zksidecar verify --report FILE` checked, per
symbol, so that `zksidecar verify --since FILE` continues from there instead
of from the empty book (docs/FORMATS.md, "Verification report").  This
module is its one definition.

    {"format": "zksidecar-verify-report", "version": 4, "min_security": 100,
     "store": null,
     "symbols": [{"symbol": 7, "mode": "transparent", "zk_chain": null,
                  "first_batch": 0, "last_batch": 63, "batches": 64,
                  "operations": 1048576, "segments": 1, "security_bits": 100,
                  "log2_capacity": 14, "book_length": 16384, "log_blowup": 1,
                  "post_root": "<64 hex>", "post_link": "<hex of Link.to_bytes>",
                  "next_seq": 1048577, "last_ts": 1048575,
                  "proofs_sha256": "<64 hex>",
                  "files": ["/abs/batch-000000.zkb", ...]}]}

`mode` is the chain's ("transparent" or "zk": a chain is all one mode, and
a report is continued only by proofs of its mode).  `zk_chain` is null in
transparent mode; in zk mode what a zk chain keeps fixed beyond `config`
and which its next batch must match (ChainPoint.ops_length, .options):
{"ops_length": 2048, "num_queries": 118, "grinding_bits": 11,
"fri_folding_factor": 8, "fri_max_final_degree": 256}, and `last_ts` is 0
(a zk chain's times are private).

`store` is the proof store's directory for `verify --store` (each symbol's
proofs are its batches first_batch..last_batch there; `files` is null), null
for proof files (`files` names them, absolute, in chain order).
`proofs_sha256` chains the SHA-256 of each proof's bytes in chain order
(chain_digest), so a resumed run re-hashes what the report covers, cheaply,
and trusts the checkpoint only if every byte is the same; it extends the
chain for the batches it adds.  `min_security` is the threshold every proof
covered was verified at: a run demanding more does not trust the report (its
proofs were not checked to that standard), and a run demanding less does not
continue it (the report it writes would claim the higher threshold for
batches it checked at the lower).

The report is not trusted: read() checks its shape (every field present and
of its type) and names the field that is wrong.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from ..params import MAX_SECURITY_BITS, ProofOptions
from ..proof import ProofFormatError
from . import json_file, proof_file
from .batch import ChainPoint

FORMAT = "zksidecar-verify-report"
#: 2: the chain's book height (`book_length`, S: batch proof files of
#: version 4) where version 1 had the trace length of a chain of version-3
#: proofs, which this build does not continue (docs/PROOF_FORMAT.md, "Migration").
#: 3: each symbol's `mode` and `zk_chain`.  4: version 3's keys, the
#: chain's `post_root` a root of proof format 8 or 9 (a Merkle node one
#: SHA-256 compression, docs/MERKLE.md); a version-2 or 3 report's root was
#: of nodes SHA-256(left || right), which no batch of this build continues
VERSION = 4
#: what this build says of each earlier version it refuses
_OLD = {v: "its chain's roots are of Merkle nodes SHA-256(left || right), which no batch of this build "
           "continues: verify those proofs with the release that wrote them" for v in (2, 3)}
#: the ProofOptions fields a zk chain's record names (log_blowup is `config`'s)
_ZK_OPTIONS = ("num_queries", "grinding_bits", "fri_folding_factor", "fri_max_final_degree")
#: the largest count or number a report carries (batches, operations, sequence
#: numbers, timestamps: u64s where the chain keeps them)
U64_MAX = (1 << 64) - 1
#: the digest of no proofs, which the first proof's extends
NO_PROOFS = bytes(32)


class ReportError(ValueError):
    """A report that cannot be read or is not well formed."""


def chain_digest(prev: bytes, proof_sha256: bytes) -> bytes:
    """`prev` extended by one proof's SHA-256: SHA-256(prev || sha256)."""
    return hashlib.sha256(prev + proof_sha256).digest()


@dataclass(frozen=True)
class SymbolRecord:
    """One symbol's chain as far as it verified: counts, the point the
    next batch must continue (its post-state root, Link, next sequence
    number, time and batch id) and the digest of the proofs."""

    symbol: int
    first_batch: int
    batches: int
    operations: int
    segments: int
    security_bits: int
    point: ChainPoint
    proofs_sha256: bytes
    files: tuple[str, ...] | None

    @property
    def last_batch(self) -> int:
        return self.point.next_id - 1


@dataclass(frozen=True)
class Report:
    min_security: int
    store: str | None
    symbols: tuple[SymbolRecord, ...]

    def symbol(self, symbol: int) -> SymbolRecord | None:
        return next((r for r in self.symbols if r.symbol == symbol), None)


def _symbol_doc(r: SymbolRecord) -> dict:
    log2_capacity, book_length, _symbol, log_blowup = r.point.config
    p = r.point
    zk_chain = None if p.mode != "zk" else {"ops_length": p.ops_length,
                                             **{k: getattr(p.options, k) for k in _ZK_OPTIONS}}
    return {"symbol": r.symbol, "mode": p.mode, "zk_chain": zk_chain,
            "first_batch": r.first_batch, "last_batch": r.last_batch,
            "batches": r.batches, "operations": r.operations, "segments": r.segments,
            "security_bits": r.security_bits, "log2_capacity": log2_capacity,
            "book_length": book_length, "log_blowup": log_blowup,
            "post_root": r.point.root.hex(), "post_link": r.point.link.to_bytes().hex(),
            "next_seq": r.point.next_seq, "last_ts": r.point.last_ts,
            "proofs_sha256": r.proofs_sha256.hex(),
            "files": None if r.files is None else list(r.files)}


def write(path: str, report: Report) -> None:
    """Write the report to `path` whole or not at all (a temporary file
    renamed over it)."""
    doc = {"format": FORMAT, "version": VERSION, "min_security": report.min_security,
           "store": report.store, "symbols": [_symbol_doc(r) for r in report.symbols]}
    json_file.write(path, doc)


def _int(doc: dict, key: str, where: str, lo: int = 0, hi: int = U64_MAX) -> int:
    """doc[key], an integer from lo to hi (every count and number a report
    carries is a u64 at most: what a chain's batches, operations,
    sequence numbers and timestamps are)."""
    v = doc.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        bounds = "a non-negative integer" if (lo, hi) == (0, U64_MAX) else f"an integer from {lo} to {hi}"
        raise ReportError(f"{where}: \"{key}\" is not {bounds}: {v!r}")
    return v


def _hex(doc: dict, key: str, where: str, size: int | None = None) -> bytes:
    v = doc.get(key)
    try:
        raw = bytes.fromhex(v) if isinstance(v, str) and v == v.lower() else None
    except ValueError:
        raw = None
    if raw is None or (size is not None and len(raw) != size):
        what = f"{2 * size} lowercase hex digits" if size else "lowercase hex"
        raise ReportError(f"{where}: \"{key}\" is not {what}")
    return raw


_KEYS = {"symbol", "mode", "zk_chain", "first_batch", "last_batch", "batches", "operations", "segments",
         "security_bits", "log2_capacity", "book_length", "log_blowup", "post_root",
         "post_link", "next_seq", "last_ts", "proofs_sha256", "files"}


def _mode(e: dict, where: str) -> tuple[str, int, ProofOptions | None]:
    """(mode, ops_length, options) of a symbol's chain as ChainPoint keeps
    them."""
    mode, z = e["mode"], e["zk_chain"]
    if mode == "transparent":
        if z is not None:
            raise ReportError(f"{where}: \"zk_chain\" is null in a transparent chain's entry")
        return mode, 0, None
    if mode != "zk":
        raise ReportError(f"{where}: \"mode\" is \"transparent\" or \"zk\", not {mode!r}")
    keys = {"ops_length", *_ZK_OPTIONS}
    if not isinstance(z, dict) or set(z) != keys:
        raise ReportError(f"{where}: \"zk_chain\" of a zk chain has exactly " + ", ".join(sorted(keys)))
    n = {k: _int(z, k, f"{where}: zk_chain") for k in keys}
    options = ProofOptions(log_blowup=_int(e, "log_blowup", where), zk=True, **{k: n[k] for k in _ZK_OPTIONS})
    try:
        options.validate()
    except ValueError as exc:
        raise ReportError(f"{where}: \"zk_chain\": {exc}") from None
    if n["ops_length"] < 2 or n["ops_length"] & (n["ops_length"] - 1):
        raise ReportError(f"{where}: \"zk_chain\": ops_length {n['ops_length']} is not a power of two")
    return mode, n["ops_length"], options


def _symbol(e, where: str, store: bool) -> SymbolRecord:
    if not isinstance(e, dict) or set(e) != _KEYS:
        raise ReportError(f"{where}: an entry has exactly " + ", ".join(sorted(_KEYS)))
    mode, ops_length, options = _mode(e, where)
    n = {k: _int(e, k, where) for k in _KEYS - {"mode", "zk_chain", "post_root", "post_link", "proofs_sha256",
                                                "files"}}
    if n["security_bits"] > MAX_SECURITY_BITS:
        raise ReportError(f"{where}: \"security_bits\" is not an integer from 0 to {MAX_SECURITY_BITS} (the most "
                          f"any proof's conjectured security reaches): {n['security_bits']!r}")
    if n["batches"] < 1 or n["last_batch"] - n["first_batch"] + 1 != n["batches"]:
        raise ReportError(f"{where}: batches {n['first_batch']}..{n['last_batch']} are not "
                          f"{n['batches']} batches (at least one)")
    try:
        link = proof_file.decode_link(_hex(e, "post_link", where))
    except ProofFormatError as exc:
        raise ReportError(f"{where}: \"post_link\": {exc}") from None
    files = e["files"]
    if store:
        if files is not None:
            raise ReportError(f"{where}: \"files\" is null in a store's report")
    elif not isinstance(files, list) or len(files) != n["batches"] or \
            not all(isinstance(f, str) and os.path.isabs(f) for f in files):
        raise ReportError(f"{where}: \"files\" is not a list of {n['batches']} absolute paths")
    point = ChainPoint((n["log2_capacity"], n["book_length"], n["symbol"], n["log_blowup"]),
                       _hex(e, "post_root", where, 32), link, n["next_seq"], n["last_ts"],
                       n["last_batch"] + 1, mode, ops_length, options)
    return SymbolRecord(n["symbol"], n["first_batch"], n["batches"], n["operations"],
                        n["segments"], n["security_bits"], point,
                        _hex(e, "proofs_sha256", where, 32), None if store else tuple(files))


def read(path: str) -> Report:
    """The report at `path`, its shape checked: ReportError naming the file
    and the field that is wrong; OSError if it cannot be read."""
    doc = json_file.read(path, FORMAT, VERSION, "verification report", ReportError, _OLD)
    if set(doc) != {"format", "version", "min_security", "store", "symbols"}:
        raise ReportError(f"{path}: a report has exactly format, version, min_security, store "
                          "and symbols")
    min_security = _int(doc, "min_security", path, 0, MAX_SECURITY_BITS)
    store = doc["store"]
    if store is not None and not (isinstance(store, str) and os.path.isabs(store)):
        raise ReportError(f"{path}: \"store\" is neither null nor an absolute path")
    entries = doc["symbols"]
    if not isinstance(entries, list) or not entries or (store is None and len(entries) != 1):
        raise ReportError(f"{path}: \"symbols\" is not a non-empty list"
                          + (" of one symbol (a report on proof files covers one chain)"
                             if store is None and isinstance(entries, list) and entries else ""))
    symbols = tuple(_symbol(e, f"{path}: symbols[{k}]", store is not None)
                    for k, e in enumerate(entries))
    if len({r.symbol for r in symbols}) != len(symbols):
        raise ReportError(f"{path}: a symbol appears twice")
    for k, r in enumerate(symbols):
        if r.security_bits < min_security:      # every proof covered was verified at min_security
            raise ReportError(f"{path}: symbols[{k}]: \"security_bits\" {r.security_bits} is under the report's "
                              f"min_security {min_security}")
    return Report(min_security, store, symbols)
