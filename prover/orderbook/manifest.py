"""The chain manifest: an exported symbol's chain as a directory of batch
proof files and `manifest.json` naming them in chain order
(docs/FORMATS.md, "Chain manifest").  `zksidecar export` writes it,
`zksidecar verify DIR` reads it.  This module is its one definition.

    {"format": "zksidecar-chain", "version": 1, "symbol": 7,
     "batches": [{"file": "batch-000000.zkb", "batch_id": 0,
                  "first_seq": 1, "last_seq": 1024, "sha256": "<64 hex>"}, ...]}

The manifest is not trusted: read() checks its shape (every field present
and of its type, file names plain names inside the directory), and
check_file() checks a file's bytes against its entry (SHA-256, then the
batch id, symbol and sequence numbers its public inputs state).  The
proofs themselves are then verified as a chain, as any proof files are.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass

from ..proof import ProofFormatError
from . import json_file, proof_file

NAME = "manifest.json"
FORMAT = "zksidecar-chain"
VERSION = 1


class ManifestError(ValueError):
    """A manifest that cannot be read or does not describe its files."""


@dataclass(frozen=True)
class Entry:
    file: str
    batch_id: int
    first_seq: int
    last_seq: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    symbol: int
    batches: tuple[Entry, ...]


def entry(file: str, data: bytes) -> Entry:
    """The manifest entry of batch proof bytes `data` stored as `file`."""
    pub = proof_file.decode_public(data)
    return Entry(file, int(pub.batch_id), int(pub.first_seq),
                 int(pub.first_seq) + pub.n_ops - 1, hashlib.sha256(data).hexdigest())


#: the names of a chain directory's proof files, batch_file_name's (a regular expression)
BATCH_FILE = r"batch-\d{6,}\.zkb"


def batch_file_name(batch_id: int) -> str:
    """The name batch `batch_id`'s proof file has in a chain's directory."""
    return f"batch-{batch_id:06d}.zkb"


def _document(symbol: int, entries: list[Entry]) -> dict:
    return {"format": FORMAT, "version": VERSION, "symbol": symbol, "batches": [asdict(e) for e in entries]}


def encode(symbol: int, entries: list[Entry]) -> bytes:
    """The bytes of the manifest `write` writes (for a writer that makes the
    file with modes of its own: tools/proofs.copy_chain)."""
    return json_file.encode(_document(symbol, entries))


def write(directory: str, symbol: int, entries: list[Entry]) -> str:
    """Write `directory`/manifest.json (whole or not at all: a temporary
    file renamed); returns its path."""
    path = os.path.join(directory, NAME)
    json_file.write(path, _document(symbol, entries))
    return path


def _int(v, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ManifestError(f"{what} is not a non-negative integer: {v!r}")
    return v


def read(directory: str) -> Manifest:
    """The manifest in `directory`, its shape checked.  ManifestError
    naming what is wrong; OSError if it cannot be read."""
    path = os.path.join(directory, NAME)
    doc = json_file.read(path, FORMAT, VERSION, "chain manifest", ManifestError)
    batches = doc.get("batches")
    if not isinstance(batches, list) or not batches:
        raise ManifestError(f"{path}: \"batches\" is not a non-empty list")
    symbol = _int(doc.get("symbol"), f"{path}: \"symbol\"")
    out = []
    for k, e in enumerate(batches):
        where = f"{path}: batches[{k}]"
        if not isinstance(e, dict) or set(e) != {"file", "batch_id", "first_seq", "last_seq",
                                                 "sha256"}:
            raise ManifestError(f"{where}: an entry has exactly file, batch_id, first_seq, "
                                "last_seq and sha256")
        name, digest = e["file"], e["sha256"]
        if not isinstance(name, str) or not name or name in (".", "..") or "/" in name \
                or "\\" in name or name == NAME:
            raise ManifestError(f"{where}: file {name!r} is not a plain file name in the directory")
        if not isinstance(digest, str) or len(digest) != 64 or \
                any(c not in "0123456789abcdef" for c in digest):
            raise ManifestError(f"{where}: sha256 is not 64 lowercase hex digits")
        out.append(Entry(name, _int(e["batch_id"], f"{where}: batch_id"),
                         _int(e["first_seq"], f"{where}: first_seq"),
                         _int(e["last_seq"], f"{where}: last_seq"), digest))
    return Manifest(symbol, tuple(out))


def check_file(directory: str, symbol: int, e: Entry) -> str:
    """The path of entry `e`'s file once its bytes match the entry: its
    SHA-256, and the batch id, symbol and sequence numbers its public
    inputs state.  ManifestError naming the batch otherwise."""
    path = os.path.join(directory, e.file)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ManifestError(f"batch {e.batch_id} ({path}): {exc.strerror or exc}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != e.sha256:
        raise ManifestError(f"batch {e.batch_id} ({path}): its SHA-256 {digest} is not the "
                            f"manifest's {e.sha256}: the file was changed or replaced")
    try:
        pub = proof_file.decode_public(data)
    except ProofFormatError as exc:
        raise ManifestError(f"batch {e.batch_id} ({path}): {exc}") from None
    stated = (int(pub.batch_id), int(pub.symbol), int(pub.first_seq),
              int(pub.first_seq) + pub.n_ops - 1)
    if stated != (e.batch_id, symbol, e.first_seq, e.last_seq):
        raise ManifestError(f"batch {e.batch_id} ({path}): the proof is symbol {stated[1]} batch "
                            f"{stated[0]}, seq {stated[2]}..{stated[3]}; the manifest says symbol "
                            f"{symbol} batch {e.batch_id}, seq {e.first_seq}..{e.last_seq}")
    return path
