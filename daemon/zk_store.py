"""A proof store in zk mode (docs/ZK.md sections 6 and 9; docs/STORE.md,
"zk mode"): its store key, its chain's recorded parameters, and the
private files beside its proofs.

    STORE/zk-chain.json          the chain's parameters and their digest
                                 Delta (public: what a change is named by)
    STORE/private/               0700 whatever [state] group says: the
                                 operators' group reads proofs, not secrets
    STORE/private/key            the store key K, 32 bytes, 0600
    STORE/private/S{s}-B{b}.zkp  batch b of symbol s's private file
                                 (daemon/private_file.py), 0600

A store is all one mode.  `open_store_mode` is what the daemon's start (and
`zksidecar reprove`) runs before anything else touches the store: it judges
the store's mode and the journal's (`start_mode_problem`, which makes
nothing), then a zk configuration makes a new store a zk store (K drawn,
the parameters recorded) and opens an existing one only if it is a zk
store with its key under the same parameters; a transparent configuration
refuses a zk store.  Each refusal is a ZkStoreError saying what and what
to do.

The journal holds a zk chain's records too, and a transparent daemon given
it with a new, empty store would find no proof to refuse and prove its
unproven batches in the clear: its entries say their mode themselves, and
a start of the other mode refuses it (daemon/journal.py, mode_problem).

What mode a store is in is judged from what it holds (`store_mode_problem`,
which `daemon --check-config` runs too), not from zk-chain.json alone, a
file an operator can lose or copy: first its proofs, whose file version
says their mode, then its zk files (zk-chain.json, private/).  The start
reads each symbol's first kept and newest proof, a few bytes of each
(ProofStore.head), not every proof: every start of this release checks, so
a store never becomes mixed under it, and any one proof says the store's
mode; the first and the newest also catch the store an earlier release
mixed by taking a zk store without its record (zk proofs, then transparent
ones).  `verify --store` and `export`, which read every proof anyway, check
every one (`every_proof`).

Private files are written (and fsynced, with their directory) before a
proof is stored and its completion goes out, so a receipt can be made of
every batch whose completion an engine has seen, after the journal's
retention removed its records; they go when retention removes their proofs
(`prune_private`), or move with them to an archive (`zksidecar store
archive`, daemon/zk_archive.py), from which receipts are then made.  A
restart proves a batch again with the same content, so a private file
written twice is the same bytes.
"""
from __future__ import annotations

import bisect
import json
import os
import re
import threading

from ..prover import zk_keys
from ..prover.orderbook import batch_receipts, proof_file
from ..prover.orderbook.params import LOG_BLOWUP, ZK_FRI_FOLDING, ZK_FRI_MAX_FINAL_DEGREE, zk_proof_options
from ..prover.orderbook.receipt import ReceiptError
from ..prover.orderbook.zk_chain import ZK_FILE_VERSION, ZkChain
from ..prover.params import ProofOptions
from ..prover.proof import ProofFormatError
from . import formats as fm
from . import perms
from . import private_file as pf
from .batches import Batch
from .journal import mode_problem as journal_mode_problem
from .refusal import StartRefusal
from .store import ProofStore, StoreArchived, StoreChanged, StoreError, StoreFull, not_a_store

CHAIN_NAME = "zk-chain.json"
PRIVATE_DIR = "private"
KEY_NAME = "key"
CHAIN_FORMAT = "zksidecar-zk-chain"
CHAIN_VERSION = 1
_PRIVATE_NAME = re.compile(r"S(\d+)-B(\d+)\.zkp$")
#: a chain record's size a reader accepts (it is a few hundred bytes)
_CHAIN_MAX = 1 << 16
#: which configuration key sets each parameter of a chain (for the refusal's hint)
_SET_BY = {"ops_rows": "[book] trace_length (or its automatic value)", "capacity": "[book] capacity",
           "queries": "[workers] security_bits", "grinding_bits": "[workers] security_bits",
           "h": "[workers] security_bits", "h_q": "[workers] security_bits"}
#: parameters the release fixes, not the configuration: a store that differs
#: in one of these was made by another release
_RELEASE = ("proof_version", "batch_file_version", "air_version", "key_stream_version")


#: where an archived batch's receipts are made (daemon/zk_archive.py)
ARCHIVED_HINT = ("the store no longer serves its receipts; if `zksidecar store archive --to DIR` archived it, "
                 "`zksidecar receipt --store DIR ...` makes them from the archive (`store prune` and [store] retain "
                 "removed its private data with the proof)")


class ZkStoreError(StartRefusal, ValueError):
    """A store the daemon refuses to open in this mode, or a private file
    that cannot be written; the message says why and what to do.
    `unusable=True` when the store or journal, as it is, cannot be used
    under this configuration or by this release (daemon/refusal.py); not
    for an I/O error, which a retry may pass."""


class NoZkChain(ZkStoreError):
    """A zk store was to be opened, not made, and the store holds no zk
    chain (open_store_mode's `make=False`)."""


class ReceiptUnavailable(ReceiptError):
    """A receipt that cannot be served: an unknown sequence number or batch,
    a batch not proven yet, a missing or damaged private file.
    `http_status` is what the admin socket answers with."""

    http_status = 404


class NotProven(ReceiptUnavailable):
    """No proven batch holds the sequence number or has the id asked for;
    `pending`: the daemon has it and its proof is on its way (409)."""

    def __init__(self, message: str, pending: bool = False):
        super().__init__(message)
        self.http_status = 409 if pending else 404


class BadReceiptRequest(ReceiptUnavailable):
    """A receipt request that does not say what it asks for (400)."""

    http_status = 400


def private_name(symbol: int, batch_id: int) -> str:
    return f"S{symbol}-B{batch_id}.zkp"


def read_private_file(private_dir: str, symbol: int, batch_id: int) -> pf.PrivateBatchFile:
    """Batch `batch_id` of `symbol`'s private file in `private_dir` (a
    store's, or an archive's: daemon/zk_archive.py), every check made;
    ReceiptUnavailable naming the file and what is wrong."""
    path = os.path.join(private_dir, private_name(symbol, batch_id))
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ReceiptUnavailable(f"the private file {path} of symbol {symbol} batch {batch_id} is missing: "
                                 "that batch's receipts cannot be made (its proof and the chain are "
                                 "unaffected)") from None
    except OSError as exc:
        raise ReceiptUnavailable(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        p = pf.decode(data, path)
    except pf.PrivateFileError as exc:
        raise ReceiptUnavailable(str(exc)) from None
    if (p.symbol, p.batch_id) != (symbol, batch_id):
        raise ReceiptUnavailable(f"{path} says it is symbol {p.symbol} batch {p.batch_id}'s")
    return p


def one_batch(symbol: int, seqs: list[int], batch_of) -> int:
    """The one batch holding every seq of `seqs` (`batch_of(seq)` says
    which); BadReceiptRequest if they are in several."""
    batches = {batch_of(s) for s in seqs}
    if len(batches) > 1:
        raise BadReceiptRequest(f"seqs {', '.join(map(str, seqs))} of symbol {symbol} are in batches "
                                f"{', '.join(map(str, sorted(batches)))}: a receipt is of one batch")
    return batches.pop()


def is_zk_store(directory: str) -> bool:
    return os.path.exists(os.path.join(directory, CHAIN_NAME))


# ------------------------------------------------------ the store's mode --

#: a batch proof file's format version says its mode (prover/orderbook/proof_file.py)
_MODE_OF_VERSION = {proof_file.VERSION: "transparent", ZK_FILE_VERSION: "zk"}
#: the bytes of a proof file that hold its version: the magic and the version
_VERSION_BYTES = 6
#: a transparent daemon's refusal of a zk store: a new store alone is not
#: enough, since recovery proves every batch the journal holds that the store
#: does not (a zk journal refuses it too: journal.mode_problem)
_NEW_JOURNAL_TOO = ("and a new [journal] dir with it (the zk chain's journal holds its records: a transparent "
                    "daemon would prove its batches in the clear into the new store)")
#: what a mixed store's refusal tells its operator
_MIXED_HINT = ("a store, and so a chain, is all one mode: this chain verifies as neither, no daemon "
               "continues it and `zksidecar export` does not write it out; its transparent proofs "
               "publish their batches' records. Start the daemon with a new [store] dir")


def proof_mode(store: ProofStore, symbol: int, batch_id: int) -> str | None:
    """"zk" or "transparent", from the stored proof's file version; None
    for a proof whose bytes retention archived, whose entry is damaged, or
    of neither version (an earlier release's, which recovery refuses by
    name)."""
    try:
        version = proof_file.file_version(store.head(symbol, batch_id, _VERSION_BYTES))
    except StoreError:
        return None
    return _MODE_OF_VERSION.get(version)


def proofs_by_mode(store: ProofStore, batches) -> dict[str, list[tuple[int, int]]]:
    """{mode: [(symbol, batch), ...]} of the (symbol, batch) pairs
    `batches` whose mode can be read."""
    held: dict[str, list[tuple[int, int]]] = {}
    for symbol, batch_id in batches:
        mode = proof_mode(store, symbol, batch_id)
        if mode is not None:
            held.setdefault(mode, []).append((symbol, batch_id))
    return held


def chain_ends(store: ProofStore) -> list[tuple[int, int]]:
    """Each symbol's first kept batch and its newest: the proofs a start
    reads the store's mode from (module docstring)."""
    return [(s, b) for s in store.symbols() for b in sorted({store.first_kept(s), store.batches(s)[-1]})]


def holds_zk(store: ProofStore) -> bool:
    """Is `store` a zk store by what it holds (its zk files, or a zk proof
    among those a start reads: store_mode_problem's judgment), whether its
    zk-chain.json is there or lost?"""
    return bool(_zk_files(store.directory)) or "zk" in proofs_by_mode(store, chain_ends(store))


def every_proof(store: ProofStore, symbols: list[int]) -> list[tuple[int, int]]:
    """Every stored batch of `symbols`."""
    return [(s, b) for s in symbols for b in store.batches(s)]


def _named(batches: list[tuple[int, int]]) -> str:
    """The first of `batches`, for a refusal (a start reads a few proofs,
    so a count would not be the store's)."""
    s, b = batches[0]
    return f"symbol {s} batch {b} among them"


def mixed_problem(directory: str, held: dict[str, list[tuple[int, int]]]) -> str | None:
    """Why a store holding `held` (proofs_by_mode's) is refused by every
    reader: it holds proofs of both modes.  None if it does not."""
    if len(held) < 2:
        return None
    return (f"{directory} holds zk proofs ({_named(held['zk'])}) and transparent proofs "
            f"({_named(held['transparent'])}): {_MIXED_HINT}")


def _zk_files(directory: str) -> list[str]:
    return [name for name in (CHAIN_NAME, PRIVATE_DIR) if os.path.lexists(os.path.join(directory, name))]


def store_mode_problem(store: ProofStore, zk: bool) -> str | None:
    """Why a daemon of this mode (`zk`) must not take `store`, judged from
    what the store holds (module docstring); None if it may."""
    directory = os.path.abspath(store.directory)
    chain_path = os.path.join(directory, CHAIN_NAME)
    held = proofs_by_mode(store, chain_ends(store))
    mixed = mixed_problem(directory, held)
    if mixed:
        return mixed
    if not zk:
        if "zk" in held:
            return (f"{directory} holds zk proofs ({_named(held['zk'])}): a transparent daemon would prove "
                    "this zk chain's next batches, and those its journal holds, with their records in the "
                    "clear; set [proofs] mode = \"zk\""
                    + ("" if os.path.exists(chain_path) else f" and restore {CHAIN_NAME}, which is missing "
                       "(docs/DEPLOY.md, \"Backing up a zk store\")")
                    + f", or give a new [store] dir {_NEW_JOURNAL_TOO}")
        return _zk_files_problem(directory)
    if "transparent" in held:
        return (f"{directory} holds transparent proofs ({_named(held['transparent'])}): a store is all one "
                "mode; give zk mode a new [store] dir (its chain starts from the empty book)")
    if len(store) and not os.path.exists(chain_path):
        return (f"{chain_path} is missing and the store holds {len(store)} proofs: a zk chain's record is "
                "made with its store and never again (a new one could record other parameters than its "
                "proofs were made under); restore it from the store's backup (docs/DEPLOY.md, \"Backing up "
                "a zk store\"). It holds no secret: the record of a zk store made under the same "
                "configuration by the same release is the same file")
    return None


def _zk_files_problem(directory: str) -> str | None:
    """Why a transparent daemon must not take `directory` for its zk files."""
    files = _zk_files(directory)
    if files:
        return (f"{directory} is a zk store ({', '.join(files)}): a store is all one mode; set "
                f"[proofs] mode = \"zk\" or give a new [store] dir {_NEW_JOURNAL_TOO}")
    return None


def check_store_mode(directory: str, zk: bool) -> str | None:
    """store_mode_problem of the store at `directory` opened read-only (no
    lock taken, nothing repaired or made): what `daemon --check-config`
    says of the store the daemon would open; None if there is none yet (no
    directory, or one without a store's index or segments, made ahead of
    the first start: the daemon makes its store there), but for zk files a
    transparent daemon refuses.  OSError (a StoreError) if it cannot be
    opened."""
    if not os.path.isdir(directory):
        return None
    if not_a_store(directory) is not None:
        return None if zk else _zk_files_problem(directory)
    with ProofStore(directory, fsync=False, readonly=True) as store:
        return store_mode_problem(store, zk)


def _read_chain(path: str) -> tuple[bytes, dict]:
    """(Delta, parameters) of a chain record, every check made."""
    try:
        with open(path, "rb") as f:
            raw = f.read(_CHAIN_MAX + 1)
    except OSError as exc:
        raise ZkStoreError(f"{path}: cannot read: {exc.strerror or exc}") from None
    stale = False
    try:
        doc = json.loads(raw) if len(raw) <= _CHAIN_MAX else None
        ok = isinstance(doc, dict) and doc.get("format") == CHAIN_FORMAT and doc.get("version") == CHAIN_VERSION
        digest = bytes.fromhex(doc["digest"]) if ok else b""
        params = doc["parameters"] if ok else None
        if isinstance(params, dict) and "key_stream_version" not in params:
            # a record of a release before key stream versions, if its
            # digest is that release's; else damaged
            stale = ok = zk_keys.chain_digest_before_key_streams(**params) == digest
        elif not isinstance(params, dict) or zk_keys.chain_digest(**params) != digest:
            ok = False
    except (ValueError, KeyError, TypeError, AttributeError):
        ok = False
    if ok and stale:
        raise ZkStoreError(f"{path} records a chain made before zk key streams were versioned: its masks and salts "
                           "were expanded with HMAC-SHA-256 in counter mode, and this release expands them with "
                           f"ChaCha20 (key stream version {zk_keys.KEY_STREAM_VERSION}, docs/ZK_KEYS.md). A chained "
                           "state's mask must be the one its first proof committed, so the chain cannot be "
                           "continued (nor its receipts made) by this release: finish it with the release that "
                           "made it, or give a new [store] dir for a new chain", unusable=True)
    if not ok:
        raise ZkStoreError(f"{path} is not a zk chain record of format {CHAIN_FORMAT} version {CHAIN_VERSION} "
                           "whose digest is its parameters' (damaged, or not this daemon's): restore it from the "
                           "store's backup")
    return digest, params


class ZkStore:
    """An open zk store's secrets and private files: `chain(symbol)` is the
    symbol's ZkChain (holding K, so it stays in the daemon's process).
    Made by open_store_mode."""

    def __init__(self, directory: str, key: bytes, log2_capacity: int, ops_length: int, options,
                 fsync: bool = True):
        self.directory = os.path.abspath(directory)
        self.private_dir = os.path.join(self.directory, PRIVATE_DIR)
        self._key, self.log2_capacity, self.ops_length, self.options = key, log2_capacity, ops_length, options
        self.fsync = fsync
        self._chains: dict[int, ZkChain] = {}
        self._lock = threading.Lock()
        self._index: dict[int, list[tuple[int, int, int]]] | None = None   # symbol: [(first_seq, n_ops, batch)]

    def chain(self, symbol: int) -> ZkChain:
        with self._lock:
            c = self._chains.get(symbol)
            if c is None:
                c = self._chains[symbol] = ZkChain(self._key, symbol, self.log2_capacity, self.ops_length,
                                                   self.options)
            return c

    @property
    def digest(self) -> bytes:
        return self.chain(0).digest

    # ------------------------------------------------------ private files --
    def private_path(self, symbol: int, batch_id: int) -> str:
        return os.path.join(self.private_dir, private_name(symbol, batch_id))

    def write_private(self, batch: Batch) -> str:
        """Write closed `batch`'s private file (durably, 0600) before its
        proof is stored; returns its path.  StoreFull on a full disk."""
        chain = self.chain(batch.symbol)
        data = pf.encode(pf.PrivateBatchFile(batch.symbol, batch.batch_id, batch.first_seq,
                                             chain.pre_state_digest(batch.pre_cells, batch.pre_ts),
                                             batch.ops, batch.trades))
        path = self.private_path(batch.symbol, batch.batch_id)
        fm.write_whole(path, data, self.fsync, StoreFull, StoreError, "a private file")
        with self._lock:
            if self._index is not None:
                self._add(batch.symbol, batch.first_seq, len(batch.ops), batch.batch_id)
        return path

    def read_private(self, symbol: int, batch_id: int) -> pf.PrivateBatchFile:
        return read_private_file(self.private_dir, symbol, batch_id)

    def _add(self, symbol: int, first_seq: int, n_ops: int, batch_id: int) -> None:
        entries = self._index.setdefault(symbol, [])
        item = (first_seq, n_ops, batch_id)
        at = bisect.bisect_left(entries, item)
        if at == len(entries) or entries[at] != item:
            entries.insert(at, item)

    def _load_index(self) -> None:
        """The (first_seq, n_ops, batch) of every private file, from their
        headers (lock held)."""
        self._index = {}
        try:
            names = os.listdir(self.private_dir)
        except OSError:
            return
        for name in names:
            m = _PRIVATE_NAME.match(name)
            if not m:
                continue
            try:
                with open(os.path.join(self.private_dir, name), "rb") as f:
                    head = pf.peek(f.read(pf.HEADER.size))
            except OSError:
                continue
            if head is not None and head[:2] == (int(m.group(1)), int(m.group(2))):
                self._add(head[0], head[2], head[3], head[1])

    def batch_of(self, symbol: int, seq: int, store: ProofStore) -> int:
        """The batch holding operation `seq` of `symbol`: from the private
        files' headers, else (a batch whose private file is missing) from
        the stored proofs' public headers; ReceiptUnavailable if no proven
        batch holds it."""
        with self._lock:
            if self._index is None:
                self._load_index()
            entries = self._index.get(symbol, [])
            at = bisect.bisect_right(entries, (seq, 1 << 64, 1 << 64)) - 1
            if at >= 0 and entries[at][0] <= seq < entries[at][0] + entries[at][1]:
                return entries[at][2]
            known = {b for _, _, b in entries}
        archived = False
        for batch_id in (b for b in store.batches(symbol) if b not in known):
            try:
                pub = proof_file.decode_public(store.get(symbol, batch_id))
            except StoreArchived:
                archived = True
                continue
            except StoreChanged as exc:     # retention beside this reader: not "in no proven batch"
                raise ReceiptUnavailable(f"seq {seq} of symbol {symbol}: {exc}") from None
            except (StoreError, ProofFormatError):
                continue
            if pub.first_seq <= seq < pub.first_seq + pub.n_ops:
                return batch_id
        if archived and seq < self._first_kept_seq(symbol, store):
            raise ReceiptUnavailable(f"seq {seq} of symbol {symbol} is in a batch retention archived (before batch "
                                     f"{store.first_kept(symbol)}, the first this store keeps): "
                                     f"{ARCHIVED_HINT}")
        raise NotProven(f"seq {seq} of symbol {symbol} is in no proven batch")

    def _first_kept_seq(self, symbol: int, store: ProofStore) -> int:
        """The first sequence number of `symbol`'s first kept batch (0 if
        its proof cannot be read: nothing is then said to be archived)."""
        try:
            return int(proof_file.decode_public(store.get(symbol, store.first_kept(symbol))).first_seq)
        except (StoreError, ProofFormatError):
            return 0

    def receipt(self, store: ProofStore, symbol: int, *, seqs: list[int] | None = None,
                account: int | None = None, batch_id: int | None = None) -> bytes:
        """A receipt (receipt.py's format) of batch `batch_id` of `symbol`
        for `account`, or of the batch holding `seqs` (all in one batch);
        ReceiptUnavailable or the receipt API's ReceiptError naming what
        is wrong."""
        if seqs:
            batch_id = one_batch(symbol, seqs, lambda seq: self.batch_of(symbol, seq, store))
        if batch_id is None or not store.has(symbol, batch_id):
            raise NotProven(f"symbol {symbol} has no proven batch {batch_id}")
        try:
            raw = store.get(symbol, batch_id)
        except StoreArchived:
            raise ReceiptUnavailable(f"symbol {symbol} batch {batch_id}'s proof was archived by retention: "
                                     f"{ARCHIVED_HINT}") from None
        except StoreError as exc:
            raise ReceiptUnavailable(f"symbol {symbol} batch {batch_id}: its stored proof cannot be read: "
                                     f"{exc}") from None
        try:
            bp = proof_file.decode(raw)
        except ProofFormatError as exc:
            raise ReceiptUnavailable(f"symbol {symbol} batch {batch_id}: its stored proof is damaged: "
                                     f"{exc}") from None
        p = self.read_private(symbol, batch_id)
        return batch_receipts.make_batch_receipt(self.chain(symbol), bp, p.pre_state, p.ops, p.trades,
                                                 seqs=seqs or None, account=account)


def prune_private(directory: str, store: ProofStore) -> int:
    """Remove the private files of proofs retention archived (they go with
    their proofs); returns how many.  A private file whose proof is not in
    the store yet is left: its proof may be on its way."""
    private = os.path.join(directory, PRIVATE_DIR)
    removed = 0
    try:
        names = os.listdir(private)
    except FileNotFoundError:
        return 0
    for name in names:
        m = _PRIVATE_NAME.match(name)
        if m and store.archived(int(m.group(1)), int(m.group(2))):
            try:
                os.unlink(os.path.join(private, name))
                removed += 1
            except FileNotFoundError:
                pass
    if removed:
        fm.fsync_directory(private)
    return removed


def chain_options(security_bits: int, capacity: int, ops_length: int):
    """A zk chain's proof options for these settings (zk_proof_options)."""
    return zk_proof_options(security_bits, capacity.bit_length() - 1, ops_length, LOG_BLOWUP)


def start_mode_problem(store: ProofStore, journal_dir: str | None, zk: bool) -> str | None:
    """Why a daemon of this mode (`zk`) must not take `store` and the
    journal at `journal_dir` (None: a store alone), judged from what they
    hold, the store first; None if it may take both.  Reads, makes
    nothing.  JournalError if a journal segment cannot be read."""
    if journal_dir is None:
        return store_mode_problem(store, zk)
    return store_mode_problem(store, zk) or journal_mode_problem(journal_dir, zk)


def open_store_mode(store: ProofStore, zk: bool, *, security_bits: int, capacity: int, ops_length: int,
                    journal_dir: str | None, fsync: bool = True, make: bool = True) -> ZkStore | None:
    """The open `store` and the journal at `journal_dir` (None: a store
    without one, as a test's) checked for the configured mode
    (start_mode_problem), then the store opened, or made, in it (module
    docstring): a ZkStore in zk mode, None in transparent mode;
    ZkStoreError naming what is wrong otherwise.  The
    check comes first so that a refused start makes nothing: a new store
    made a zk store for a start its journal refuses would refuse the other
    mode.  `make=False`: a store holding no zk chain is refused (NoZkChain),
    not made one (a tool that works on an existing chain)."""
    problem = start_mode_problem(store, journal_dir, zk)
    if problem:
        raise ZkStoreError(problem, unusable=True)
    if not zk:
        return None
    return _open_zk_store(store, chain_options(security_bits, capacity, ops_length), capacity, ops_length,
                          fsync, make)


def _open_zk_store(store: ProofStore, options: ProofOptions, capacity: int, ops_length: int, fsync: bool,
                   make: bool) -> ZkStore:
    """The ZkStore of `store`, whose mode start_mode_problem has judged:
    its chain record and key made if it holds no chain yet (and `make`),
    else read and checked against this configuration."""
    directory = os.path.abspath(store.directory)
    chain = ZkChain(bytes(zk_keys.KEY_BYTES), 0, capacity.bit_length() - 1, ops_length, options)
    private = os.path.join(directory, PRIVATE_DIR)
    key_path = os.path.join(private, KEY_NAME)
    chain_path = os.path.join(directory, CHAIN_NAME)
    if not os.path.exists(chain_path):          # a new store: it holds no proof (store_mode_problem)
        if not make:
            raise NoZkChain(f"{store.directory} holds no zk chain (no {CHAIN_NAME}, no zk proof)", unusable=True)
        make_private_dir(private)
        # a key left by a start that stopped before the record: nothing was proven under it
        key = zk_keys.read_key_file(key_path) if os.path.exists(key_path) else zk_keys.write_key_file(key_path)
        doc = {"format": CHAIN_FORMAT, "version": CHAIN_VERSION, "digest": chain.digest.hex(),
               "parameters": chain.parameters}
        fm.write_whole(chain_path, (json.dumps(doc, indent=1) + "\n").encode(), True, StoreFull, StoreError,
                       "the chain record")
        return ZkStore(directory, key, chain.log2_capacity, ops_length, options, fsync)
    digest, recorded = _read_chain(chain_path)
    if digest != chain.digest:
        differ = [f"{name} = {recorded.get(name)!r}, "
                  + (f"this release gives {value!r}" if name in _RELEASE else f"the configuration gives {value!r}")
                  + (f" ({_SET_BY[name]})" if name in _SET_BY else "")
                  for name, value in chain.parameters.items() if recorded.get(name) != value]
        by_release = [name for name in _RELEASE if recorded.get(name) != chain.parameters[name]]
        raise ZkStoreError(f"{directory}: this zk store's chain was made under other parameters: "
                           + "; ".join(differ or ["its digest differs"])
                           + ". A zk chain's parameters are fixed (a change would open stored states again under "
                           "new masks): "
                           + (f"{', '.join(by_release)} {'is' if len(by_release) == 1 else 'are'} the release's, "
                              "so finish the chain with the release that made it"
                              if by_release else "restore the configuration")
                           + ", or give a new [store] dir for a new chain", unusable=True)
    if not os.path.exists(key_path):
        raise ZkStoreError(f"{key_path} is missing: this zk store's chain cannot be continued without its store "
                           "key (restore it from the store's backup, docs/DEPLOY.md; without it the chain can only "
                           "restart in a new [store] dir)", unusable=True)
    try:
        key = zk_keys.read_key_file(key_path)
    except zk_keys.KeyFileError as exc:     # exposed: as private/ open to others (check_private_dir)
        raise ZkStoreError(f"the store key: {exc}", unusable=isinstance(exc, zk_keys.KeyFileExposed)) from None
    check_private_dir(private, "the store key")
    return ZkStore(directory, key, chain.log2_capacity, ops_length, options, fsync)


def open_for_receipts(directory: str) -> ZkStore:
    """A zk store's key and chain, for making receipts beside a running
    daemon (`zksidecar receipt`): the chain's options rebuilt from its
    record and checked against its digest.  ZkStoreError naming what is
    missing or wrong."""
    directory = os.path.abspath(directory)
    chain_path = os.path.join(directory, CHAIN_NAME)
    if not os.path.exists(chain_path):
        raise ZkStoreError(f"{directory} is not a zk store (no {CHAIN_NAME}): receipts are zk mode's")
    digest, p = _read_chain(chain_path)
    try:
        key = zk_keys.read_key_file(os.path.join(directory, PRIVATE_DIR, KEY_NAME))
    except zk_keys.KeyFileError as exc:
        raise ZkStoreError(f"the store key: {exc}") from None
    options = ProofOptions(log_blowup=p["log_blowup"], num_queries=p["queries"], grinding_bits=p["grinding_bits"],
                           fri_folding_factor=ZK_FRI_FOLDING, fri_max_final_degree=ZK_FRI_MAX_FINAL_DEGREE, zk=True)
    zs = ZkStore(directory, key, p["capacity"].bit_length() - 1, p["ops_rows"], options, fsync=False)
    if zs.digest != digest:
        raise ZkStoreError(f"{chain_path}: its parameters do not give back its chain's options (a chain of "
                           "another release?)")
    return zs


def make_private_dir(path: str) -> None:
    """STORE/private (or an archive's), 0700 whatever the umask or [state]
    group."""
    try:
        os.mkdir(path, perms.PRIVATE_DIR)
    except FileExistsError:
        return
    except OSError as exc:
        raise ZkStoreError(f"{path}: cannot create: {exc.strerror or exc}") from None
    os.chmod(path, perms.PRIVATE_DIR)


def check_private_dir(path: str, holds: str) -> None:
    """ZkStoreError if the private directory `path` (which holds `holds`)
    is open to anyone but its owner."""
    st = os.stat(path)
    if st.st_mode & 0o077:
        raise ZkStoreError(f"{path} is open to others (mode {st.st_mode & 0o777:o}): it holds {holds}; "
                           f"chmod 700 {path}", unusable=True)
