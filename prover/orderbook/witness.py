"""The trace columns of a batch statement (air.py: the `book` and `ops`
domains) from the engine's tracing mode.

`build(pre_table, ops, steps, trace_length, capacity)` lays out the steps
Book.process_traced recorded (engine/trace.py) one per `ops` row
(trace_length: T'), and on the `book` domain (S = air.book_length(capacity)
rows) the state tables before and after (zero rows from the capacity on)
and each address's last write time, and every helper column the
constraints name: in C (csrc/orderbook/witness.c), one pass over the steps
into the row-major matrix the prover commits, which also checks the steps'
ranges and writes the table they leave (so a batch's steps are read once,
not once per check).  The engine
brackets each operation with BEGIN and END steps; the trace folds them into
the flags `first` and `last` of the operation's own first and last rows
(`fold`), and an operation with no other step (a rejection on its public
fields) is one sN row.  `build_reference` is the readable definition, row
by row in Python, following tests/trace_check.py's replay (it keeps the
memory's last-write timestamps, so each access's `old_ts` is the row of the
write it reads); a test holds the two equal on every column.

`Witness.columns` holds canonical int64 values by column name, so tests can
edit a witness the way a lying engine would, `Witness.rethread()` makes the
memory consistent with the edited writes again, and `traces()` encodes.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ...engine import trace
from ...engine.records import Reason
from ...engine.trace import StepKind
from .. import field as F
from ..native import ffi, lib, u32p
from ..params import MAX_LOG_TRACE
from .air import (GEN_LIMIT, HCELLS, KIND_CODE, KINDS, LINEAR, MAX_LOG_OPS, MIN_ROWS, WORD, book_length,
                  classify, classify_all, exec_columns, limbs_for, linear_values, written)

P = F.P


def _inv(x: int) -> int:
    x %= P
    return pow(x, P - 2, P) if x else 0


class Witness:
    """The trace of a batch: on the `book` domain the state tables before
    and after it (`pre`, `post`: (S, 8) canonical) and each address's last
    write time (`pts`: (S,)), on the `ops` domain the exec columns (T'
    rows, `trace_length`), held one of two ways.

    `build` leaves them as `exec_rows`, the (T, k) row-major matrix the C
    builder wrote, in Montgomery form (the layout and form the prover
    commits: `traces` hands out that matrix as it is).
    `columns` (int64 by name) is made from it on first use, and from then on
    the columns are the witness: tests edit them the way a lying engine
    would, and `traces` reads them."""

    def __init__(self, pre: np.ndarray, post: np.ndarray, pts: np.ndarray, trace_length: int,
                 columns: dict[str, np.ndarray] | None = None, exec_rows: np.ndarray | None = None,
                 post_written: np.ndarray | None = None):
        assert (columns is None) != (exec_rows is None), "columns or exec rows, not both"
        self.pre, self.post, self.pts, self.trace_length = pre, post, pts, trace_length
        #: the (capacity, 8) uint32 table the steps leave, as they wrote it
        #: (trace.written: not reduced mod p; the engine's cells after it)
        self.post_written = post_written
        self._columns, self._rows = columns, exec_rows

    @property
    def columns(self) -> dict[str, np.ndarray]:
        if self._columns is None:
            names = exec_columns(self.trace_length)
            rows = F.decode(self._rows)
            self._columns = {n: rows[:, j].astype(np.int64) for j, n in enumerate(names)}
            for n, value in linear_values(self.trace_length).items():   # no column of their own
                self._columns[n] = value(self._columns.__getitem__) % P
            self._rows = None
        return self._columns

    def column(self, name: str) -> np.ndarray:
        """One column's canonical values (int64), decoded alone while the
        rows are still the builder's matrix (columns decodes all of them)."""
        if self._columns is None:
            names = exec_columns(self.trace_length)
            if name in names:
                return F.decode(np.ascontiguousarray(self._rows[:, names.index(name)])).astype(np.int64)
        return self.columns[name]

    @columns.setter
    def columns(self, columns: dict[str, np.ndarray]) -> None:
        self._columns, self._rows = columns, None

    def finish(self) -> None:
        """Recompute the derived columns a lying engine would also fix up:
        helpers, limbs, post timestamps are left alone; range multiplicities
        are recounted from the lookups (the only column that follows from all
        the others)."""
        c = self.columns
        t = self.trace_length
        L, k = limbs_for(t)
        looks = []
        for x in "HABC":
            d = (c["row"] - c[f"t{x}"]) % P
            looks.append(d[c[f"m{x}"] == 1])
        top = 1 << (k * L - 30)
        for cm in ("c1", "c2"):
            for i in range(k):
                looks.append(c[f"{cm}_{i}"] % P)
            if top > 1:
                looks.append(c[f"{cm}_{k - 1}"] * top % P)
        allv = np.concatenate(looks)
        ok = allv[allv < t]
        c["rm"] = np.bincount(ok, minlength=t)[:t].astype(np.int64)

    def rethread(self) -> None:
        """Make the memory consistent with the rows' addresses and new words:
        every old word and old timestamp is re-read from a replay starting at
        `pre`, the post table and post timestamps are the replay's end, and
        the derived columns are recomputed.  A lying engine does exactly this
        to satisfy the memory argument; what it cannot fix is a step rule."""
        c, T, S = self.columns, self.trace_length, len(self.pre)
        # addresses past the book (a lie's) get words and times of their own:
        # no `book` row supplies them, which the memory argument refuses
        reach = max([S] + [int(c[f"a{x}"].max()) + 1 for x in "ABC"])
        mem = np.zeros((reach, WORD), dtype=np.int64)
        mem[:S] = self.pre
        last = np.zeros(reach, dtype=np.int64)
        for r in range(T):
            writes = []
            for x in "HABC":
                if not c[f"m{x}"][r]:
                    continue
                a = 0 if x == "H" else int(c[f"a{x}"][r])
                width = HCELLS if x == "H" else WORD
                for j in range(width):
                    c[f"o{x}{j}"][r] = mem[a, j]
                c[f"t{x}"][r] = last[a]
                writes.append((a, [int(c[written(x, j)][r]) for j in range(width)]))
            for a, word in writes:
                mem[a, :len(word)] = word
                last[a] = r + 1
        self.post = mem[:S] % P
        self.pts = last[:S]
        derive_columns(c, T)
        self.finish()

    def book_traces(self) -> dict[str, np.ndarray]:
        """The `book` domain's matrices, encoded, by the statement's names."""
        stamp = np.column_stack([np.arange(len(self.pre), dtype=np.int64), self.pts])
        return {"book.pre": F.encode(self.pre), "book.post": F.encode(self.post),
                "book.stamp": F.encode(stamp)}

    def traces(self) -> dict[str, np.ndarray]:
        """Every segment's matrix, encoded, by the statement's names:
        "book.pre", "book.post", "book.stamp" and "ops.exec"."""
        return {**self.book_traces(), "ops.exec": self._exec()}

    def _exec(self) -> np.ndarray:
        if self._rows is not None:
            return self._rows
        # the columns (an edited witness): each reduced mod p, stacked as rows
        names = exec_columns(self.trace_length)
        rows = np.empty((self.trace_length, len(names)), dtype=np.uint32)
        for j, name in enumerate(names):
            c = self.columns[name]
            rows[:, j] = c if _canonical(c) else c % P
        return F.encode(rows)


def _canonical(col: np.ndarray) -> bool:
    """Every value of a non-empty column in [0, p): for int64, one pass (as
    uint64 a negative value is >= p), not a min and a max."""
    if col.dtype == np.int64:
        return bool(col.view(np.uint64).max() < P)
    if col.dtype.kind == "u":
        return bool(col.max() < P)
    return bool(col.min() >= 0 and col.max() < P)


#: `ops` rows per operation when a batch's cap is sized (trace_length_for):
#: the synthetic flow takes ~1.8; a batch that takes more is cut where its
#: cap is full (daemon/shadow.py)
ROWS_PER_OP = 2
MIN_TRACE_LENGTH = MIN_ROWS


def _power_of_two_at_least(n: int) -> int:
    return 1 << (max(n, MIN_TRACE_LENGTH) - 1).bit_length()


def max_rows(capacity: int) -> int:
    """The most trace rows one operation can take on a book of `capacity`
    slots, which holds at most capacity - 1 orders (slot 0 is the null
    slot).  A FOK takes the most: a look-ahead PEEK per maker it walks and a
    MATCH per maker it then takes, 2 (capacity - 1) when it sweeps a full
    side (a walk that stops reads one non-crossing maker more, but then
    matches nothing).  Any other taker: a MATCH per maker, the stop PEEK and
    REST or the book-full PEEK, at most capacity + 1; a cancel, a reduce or a
    rejection, one.  (The engine's own bound, engine/trace.py max_steps,
    also counts BEGIN and END and rounds up: it sizes a buffer.)"""
    return max(2 * (capacity - 1), capacity + 1)


def fold(steps: np.ndarray) -> np.ndarray:
    """Which step records are trace rows: every step but BEGIN and END, and
    the BEGIN of an operation that has no other step (its sN row)."""
    return fold_kinds(step_kinds(steps))


def step_kinds(steps: np.ndarray) -> np.ndarray:
    """The steps' kinds, contiguous uint8: one strided read of the step
    records (280 bytes each), which a caller that reads the kinds twice
    (batch.prepare_run: the rows, the MATCH steps) makes once."""
    return np.ascontiguousarray(steps["kind"])


def fold_kinds(kind: np.ndarray) -> np.ndarray:
    """:func:`fold` of the steps' kinds (step_kinds)."""
    # compared as uint8: a comparison with an IntEnum casts every element to
    # int64 (4x slower)
    begin, end = np.uint8(StepKind.BEGIN), np.uint8(StepKind.END)
    bracket = (kind == begin) | (kind == end)
    if not len(kind):
        return ~bracket
    # an operation's steps are consecutive, BEGIN first: it has no inner step
    # exactly when its BEGIN is followed by its END
    lone = (kind[:-1] == begin) & (kind[1:] == end)
    return ~bracket | np.r_[lone, False]


def op_rows(steps: np.ndarray, n_ops: int) -> np.ndarray:
    """The trace rows each of `n_ops` operations takes (int64 per operation)."""
    return np.bincount(steps["op"][fold(steps)], minlength=n_ops).astype(np.int64)


def ops_length_for(steps: np.ndarray) -> int:
    """T', the `ops` length of the batch the engine ran as `steps`: rows_for
    of the rows they fold into."""
    return rows_for(int(fold(steps).sum()))


def rows_for(rows: int) -> int:
    """T', the `ops` length of a batch of `rows` operation rows: the
    shortest power of two (at least MIN_TRACE_LENGTH) holding them and the
    PAD row after them."""
    return _power_of_two_at_least(rows + 1)


def check_trace_length(trace_length: int, capacity: int) -> int:
    """`trace_length` if it can be the `ops` cap of a chain of books of
    `capacity` slots (a power of two, up to 2^MAX_LOG_OPS, holding any
    one operation and the PAD row); ValueError saying why not otherwise."""
    t, need = trace_length, max(MIN_TRACE_LENGTH, max_rows(capacity) + 1)
    if not isinstance(t, (int, np.integer)) or t < 1 or t & (t - 1) or t > 1 << MAX_LOG_OPS:
        raise ValueError(f"an ops trace length is a power of two up to 2^{MAX_LOG_OPS}, not {t!r}")
    if t < need:
        raise ValueError(f"an ops trace of {t} rows cannot hold one operation at capacity "
                         f"{capacity} (it needs {need} rows: up to {max_rows(capacity)} for an "
                         "operation and the PAD row)")
    return int(t)


def trace_length_for(capacity: int, max_ops: int = 1) -> int:
    """The `ops` cap of a chain: room for any one operation on a book of
    `capacity` slots, and for `max_ops` operations of typical size
    (ROWS_PER_OP).  Each batch is proven at the `ops` length its own rows
    take (rows_for), at most this; padding costs as much to prove as steps,
    so batches cut full are the cheapest per operation."""
    return _power_of_two_at_least(max(max_rows(capacity) + 1, max_ops * ROWS_PER_OP))


def _too_long(rows: int, trace_length: int) -> ValueError | None:
    """Why `rows` operation rows and the PAD row do not fit the trace, or None."""
    if rows + 1 > trace_length:
        return ValueError(f"{rows} rows do not fit a trace of {trace_length} (one PAD row is needed)")
    return None


def _tables(pre_table: np.ndarray, post_table: np.ndarray,
            capacity: int) -> tuple[np.ndarray, np.ndarray]:
    """The two state tables padded to S rows, canonical."""
    S = book_length(capacity)
    out = []
    for table in (pre_table, post_table):
        padded = np.zeros((S, WORD), dtype=np.int64)
        # a proof table is canonical (proof_table checks it); a post table
        # written from steps made elsewhere may not be: reduced only then
        padded[:capacity] = table if _canonical(table) else np.asarray(table, dtype=np.int64) % P
        out.append(padded)
    return out[0], out[1]


#: what PAD rows repeat of the last row (the constraints carry them)
_CARRIED = ("oi",) + KINDS + ("buy", "lim", "qty", "hslot", "hgen", "alo", "ahi")


def build_reference(pre_table: np.ndarray, ops: np.ndarray, steps: np.ndarray,
                    trace_length: int, capacity: int) -> Witness:
    """The witness row by row, in plain Python: the readable definition that
    `build` (C) is tested against (steps checked by trace.check_steps)."""
    T = trace_length
    keep = fold(steps).tolist()
    if (err := _too_long(sum(keep), T)) is not None:
        raise err
    post_table = trace.written(pre_table, steps)
    pre, post = _tables(pre_table, post_table, capacity)
    cols = {n: np.zeros(T, dtype=np.int64) for n in exec_columns(T) + LINEAR}

    last = np.zeros(len(pre), dtype=np.int64)    # ts of each address's last write
    ctx_of = [classify(op, capacity) for op in ops]
    kind_l = steps["kind"].tolist()
    op_l = steps["op"].tolist()
    mask_l = steps["mask"].tolist()
    addr_l = steps["addr"].tolist()
    old_l = steps["old_word"].tolist()
    new_l = steps["new_word"].tolist()

    state = dict(rem=0, tn=0, acc=0)     # before the row's own step
    peeks_in_op = 0
    ctx = None
    rows = []   # per row: dict of values
    for e in range(len(steps)):
        kind, i, mask = StepKind(kind_l[e]), op_l[e], mask_l[e]
        if kind == StepKind.BEGIN:
            ctx = ctx_of[i]
            state = dict(rem=ctx["qty"], tn=0, acc=0)
            peeks_in_op = 0
            opens = True
        if kind == StepKind.END:
            rows[-1]["last"] = 1
        if not keep[e]:
            continue
        r = len(rows)
        addr, old, new = addr_l[e], old_l[e], new_l[e]
        op = ops[i]
        v: dict[str, int] = {"first": int(opens)}
        opens = False
        name = ctx["kind"] or "k_z"
        for kn in KINDS:
            v[kn] = int(kn == name)
        for f in ("buy", "lim", "qty", "hslot", "hgen", "alo", "ahi"):
            v[f] = ctx[f]
        v["oi"] = i
        v["row"] = r
        v.update(state)
        # memory
        for j, x in enumerate("HABC"):
            if mask >> j & 1:
                a = addr[j]
                v[f"m{x}"] = 1
                v[f"t{x}"] = int(last[a])
                if x != "H":
                    v[f"a{x}"] = a
                for c_ in range(HCELLS if x == "H" else WORD):
                    v[f"o{x}{c_}"] = old[j][c_]
                    v[written(x, c_)] = new[j][c_]
        for j in range(4):
            if mask >> j & 1:
                last[addr[j]] = r + 1
        oA, nA = old[1], new[1]
        # step selector and per-step values
        if kind == StepKind.BEGIN:          # the operation's only row
            step = "sN"
        elif kind == StepKind.MATCH:
            step = "sM"
            v["sel"] = ctx["buy"]
            fill = oA[1] - nA[1]
            v["fl"] = fill
            lv = int(nA[1] == 0)
            v["lv"] = lv
            rem = state["rem"]
            v["cmp1"] = (ctx["lim"] - oA[0]) if ctx["buy"] else (oA[0] - ctx["lim"])
            v["cmp2"] = rem - oA[1] if lv else oA[1] - rem - 1
            v["zv1"] = oA[6]
            state["rem"] = rem - fill
            state["tn"] += 1
        elif kind == StepKind.PEEK:
            peeks_in_op += 1
            kname = ctx["kind"]
            if kname in ("k_can", "k_red"):
                step = "pk_stale"
                v["zv1"] = oA[7] - ctx["hgen"]
            elif kname == "k_fok":
                step = "pk_fok"
                v["sel"] = ctx["buy"]
                has = bool(mask & 2)
                v["zv1"] = addr[1] if has else 0
                v["zv2"] = oA[6] if has else 0
                cx = (ctx["lim"] - oA[0]) if ctx["buy"] else (oA[0] - ctx["lim"])
                cr = int(has and cx >= 0)
                v["cr"] = cr
                if has:
                    v["cmp1"] = cx if cr else -cx - 1
                acc = state["acc"] + (oA[1] if cr else 0)
                state["acc"] = acc
                v["acc"] = acc
                sf = int(acc >= ctx["qty"])
                v["sf"] = sf
                v["cmp2"] = acc - ctx["qty"] if sf else ctx["qty"] - acc - 1
            elif peeks_in_op == 1 and int(op["reason"]) == Reason.WOULD_CROSS:
                step = "pk_cross"
                v["sel"] = ctx["buy"]
                v["zv1"] = addr[1]
                v["cmp1"] = (ctx["lim"] - oA[0]) if ctx["buy"] else (oA[0] - ctx["lim"])
            elif peeks_in_op == 1:
                step = "pk_stop"
                v["sel"] = ctx["buy"]
                has = bool(mask & 2)
                v["zv1"] = addr[1] if has else 0
                if has:
                    v["cmp1"] = (oA[0] - ctx["lim"] - 1) if ctx["buy"] else (ctx["lim"] - oA[0] - 1)
                v["cmp2"] = state["rem"] - 1
            else:
                step = "pk_full"
        elif kind == StepKind.REST:
            step = "sR"
            sel = ctx["buy"]
            v["sel"] = sel
            p, q = addr[2], addr[3]
            v["zv1"], v["zv2"] = p, q
            x = ctx["lim"]
            if p:
                v["cmp1"] = (old[2][0] - x) if sel else (x - old[2][0])
            if q:
                v["cmp2"] = (x - old[3][0] - 1) if sel else (old[3][0] - x - 1)
            v["os"], v["og"] = addr[1], oA[7]
        elif kind == StepKind.CANCEL:
            step = "sC"
            v["sel"] = int(oA[2] == 1)
            v["zv1"], v["zv2"] = addr[2], addr[3]
            v["cmp1"] = oA[1] - 1
            if ctx["kind"] == "k_red":
                v["cmp2"] = ctx["qty"] - oA[1]
        elif kind == StepKind.REDUCE:
            step = "sD"
            v["cmp2"] = oA[1] - ctx["qty"] - 1
        else:
            raise ValueError(f"step {e}: unknown kind {kind}")
        v[step] = 1
        if step == "sC" or (step == "sM" and v["lv"]):
            if oA[7] == GEN_LIMIT - 1:
                v["gw"] = 1
            else:
                v["ginv"] = _inv(oA[7] - (GEN_LIMIT - 1))
        rows.append(v)
    # PAD rows carry the last operation's context and running values
    last_row = dict(rows[-1]) if rows else {}
    for r in range(len(rows), T):
        v = {n: last_row.get(n, 0) for n in _CARRIED}
        v.update(state)
        v["row"], v["sZ"] = r, 1
        rows.append(v)
    for r, v in enumerate(rows):
        for n_, x in v.items():
            cols[n_][r] = x
    c = cols
    derive_columns(c, T)
    w = Witness(pre, post, last, T, columns=cols, post_written=post_table)
    w.finish()
    return w


def _field_inv(x: np.ndarray) -> np.ndarray:
    """Canonical inverses of canonical values, 0 for 0 (one batch inversion)."""
    x = x % P
    nz = x != 0
    out = np.zeros(x.shape, dtype=np.int64)
    if nz.any():
        out[nz] = F.decode(F.inv(F.encode(x[nz]))).astype(np.int64)
    return out


@lru_cache(maxsize=None)
def _layout(trace_length: int) -> tuple[np.ndarray, int, int]:
    """The C builder's column table for traces of `trace_length` rows: the
    position in exec_columns of each value it names (-1 for a limb beyond
    this length's count), and (L, k) of limbs_for."""
    names = exec_columns(trace_length)
    where = {n: j for j, n in enumerate(names)}
    c_names = [ffi.string(lib.zk_witness_column_name(i)).decode()
               for i in range(lib.zk_witness_column_count())]
    missing = set(names) - set(c_names)
    if missing:
        raise AssertionError(f"exec columns the C witness builder does not write: {sorted(missing)}")
    pos = np.array([where.get(n, -1) for n in c_names], dtype=np.int32)
    return pos, *limbs_for(trace_length)


def build(pre_table: np.ndarray, ops: np.ndarray, steps: np.ndarray, trace_length: int,
          capacity: int, classified: dict[str, np.ndarray] | None = None) -> Witness:
    """The witness of `steps` (Book.process_traced) from the book
    `pre_table`: the C builder (csrc/orderbook/witness.c) checks the steps'
    ranges (what trace.check_steps refuses, it refuses by step index: a
    ValueError naming the step) and writes the `ops` rows, each address's
    last write time (`pts`) and the table the steps leave
    (`Witness.post_written`, trace.written's) in one pass over them;
    `build_reference` is the same in Python, row by row.  `classified` is
    classify_all(ops, capacity) when the caller has it (the batch's AIR
    takes the same)."""
    T = trace_length
    pos, L, k = _layout(T)
    ctx = classify_all(ops, capacity) if classified is None else classified
    index_of_code = np.zeros(max(KIND_CODE.values()) + 1, dtype=np.int64)
    for j, name in enumerate(KINDS):
        index_of_code[KIND_CODE[name]] = j
    context = np.empty((lib.ZK_WCTX_COUNT, len(ops)), dtype=np.int64)
    context[lib.ZK_WCTX_KIND] = index_of_code[ctx["code"]]
    for name in ("buy", "lim", "qty", "hslot", "hgen", "alo", "ahi"):
        context[getattr(lib, f"ZK_WCTX_{name.upper()}")] = ctx[name]
    context[lib.ZK_WCTX_CROSS] = ops["reason"] == int(Reason.WOULD_CROSS)
    steps = np.ascontiguousarray(steps)
    out = np.empty((T, len(exec_columns(T))), dtype=np.uint32)    # the builder clears each row it starts
    post_table = np.array(pre_table, dtype=np.uint32)     # the builder writes the steps' words in
    if post_table.shape != (capacity, WORD):
        raise ValueError(f"a table of shape {post_table.shape} for a book of {capacity} words")
    pts = np.empty(book_length(capacity), dtype=np.uint32)
    got = lib.zk_witness_build(u32p(out), out.shape[1], T, ffi.from_buffer("int32_t[]", pos), L, k,
                               ffi.from_buffer(steps), len(steps),
                               ffi.from_buffer("int64_t[]", context), len(ops), u32p(pts), len(pts),
                               u32p(post_table), capacity)
    if got == lib.ZK_WIT_NO_MEMORY:
        raise MemoryError("the witness builder's scratch memory")
    if got == lib.ZK_WIT_TOO_LONG:
        raise _too_long(int(fold(steps).sum()), T)
    if got != -1:
        raise ValueError(f"the witness builder refused step {got} of {len(steps)}"
                         if got >= 0 else f"the witness builder failed ({got})")
    pre, post = _tables(pre_table, post_table, capacity)
    return Witness(pre, post, pts.astype(np.int64), T, exec_rows=out, post_written=post_table)


def derive_columns(c: dict[str, np.ndarray], T: int) -> None:
    """The columns that follow from the others: zero-test inverses and
    flags, the helpers, the limbs of the comparisons (a value outside
    [0, 2^30) gets an oversized top limb, which the range lookup refuses)."""
    L, k = limbs_for(T)
    for z in ("1", "2"):
        zv = c[f"zv{z}"] % P
        c[f"nz{z}"] = (zv != 0).astype(np.int64)
        c[f"zi{z}"] = _field_inv(zv)
    sel, lim = c["sel"], c["lim"]
    sgn = 2 * sel - 1
    c["cx"] = sgn * (lim - c["oA0"]) % P
    c["dB"] = sgn * (c["oB0"] - lim) % P
    c["dC"] = sgn * (lim - c["oC0"]) % P
    c["cxs"] = ((2 * c["cr"] - 1) * c["cx"] + c["cr"] - 1) % P
    c["fg"] = c["cr"] * c["sf"] % P
    c["fc"] = (c["cr"] - c["fg"]) * c["nz2"] % P
    linear = linear_values(T)
    for pre_, w in (("o", ""), ("n", "n")):
        H = [c[f"{pre_}H{j}"] for j in range(4)]
        c[f"{w}ob"] = (sel * H[2] + (1 - sel) * H[0]) % P
        c[f"{w}ow"] = (sel * H[3] + (1 - sel) * H[1]) % P
        for x in (f"{w}sb", f"{w}sw"):
            c[x] = linear[x](c.__getitem__) % P
    for cm in ("1", "2"):
        val = c[f"cmp{cm}"] % P
        for i in range(k - 1):
            c[f"c{cm}_{i}"] = (val >> (i * L)) & ((1 << L) - 1)
        c[f"c{cm}_{k - 1}"] = val >> ((k - 1) * L)
    for n_, col in c.items():
        if col.size and not _canonical(col):   # most are in range: no division, no copy
            c[n_] = col % P
