"""The trace columns of OrderBookAir from the engine's tracing mode.

`build(pre_table, post_table, ops, steps, trace_length, capacity)` lays out
the steps Book.process_traced recorded (engine/trace.py) one per row, the
state tables before and after (zero rows below the book), and every helper
column the constraints name, vectorised over rows.  The engine brackets each
operation with BEGIN and END steps; the trace folds them into the flags
`first` and `last` of the operation's own first and last rows (`fold`), and
an operation with no other step (a rejection on its public fields) is one
sN row.  `build_reference` does
the same row by row, following tests/trace_check.py's replay (it keeps the
memory's last-write timestamps, so each access's `old_ts` is the row of the
write it reads); a test holds the two equal.

`Witness.columns` holds canonical int64 values by column name, so tests can
edit a witness the way a lying engine would, `Witness.rethread()` makes the
memory consistent with the edited writes again, and `traces()` encodes.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ...engine.records import Reason
from ...engine.trace import StepKind
from .. import field as F
from ..native import ffi, lib, u32p
from ..params import MAX_LOG_TRACE
from .air import (GEN_LIMIT, HCELLS, KIND_CODE, KINDS, WORD, classify, classify_all, exec_columns,
                  limbs_for, written)

P = F.P
_PAD = 64      # words after each column of the column-major exec matrix (Witness.traces)


def _inv(x: int) -> int:
    x %= P
    return pow(x, P - 2, P) if x else 0


@dataclass
class Witness:
    pre: np.ndarray                 # (T, 8) canonical
    post: np.ndarray                # (T, 8) canonical
    columns: dict[str, np.ndarray]  # exec columns, canonical int64
    trace_length: int

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
        c, T = self.columns, self.trace_length
        mem = self.pre.copy()
        last = np.zeros(T, dtype=np.int64)
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
        self.post = mem % P
        c["pts"] = last
        derive_columns(c, T)
        self.finish()

    def traces(self) -> dict[str, np.ndarray]:
        names = exec_columns(self.trace_length)
        # reduced column by column into a column-major uint32 matrix (each
        # write contiguous; the reduction skipped for a column already in
        # [0, p)), encoded, then one blocked transpose to rows: writing the
        # row-major matrix a column at a time touched a cache line per value
        # (an int64 stack of ~140 columns, narrowed whole, cost more still)
        # The column-major rows are _PAD words longer than n: at a power-of-two
        # stride the transpose's reads all fall in one cache set (5x slower;
        # 16 words of padding measured 2x slower than 32-64).
        # The column-major matrix is the thread's scratch, not 37 MB of fresh
        # zeroed pages per proof.
        n, k = self.trace_length, len(names)
        cols = _scratch_u32((k, n + _PAD))
        cols[:, n:] = 0                 # the padding is encoded (and checked) with the rest
        for j, name in enumerate(names):
            c = self.columns[name]
            if c.dtype == np.int64 and c.flags.c_contiguous and c.shape == (n,):
                if not lib.zk_narrow_i64_u32(u32p(cols[j]), ffi.from_buffer("int64_t[]", c), n, P):
                    cols[j, :n] = c % P          # cast and range check in one pass; reduce if need be
            else:
                cols[j, :n] = c if _canonical(c) else c % P
        if lib.zk_fp_encode(u32p(cols), u32p(cols), cols.size) >= 0:    # in place: no third 37 MB buffer
            raise AssertionError("a reduced column holds a value >= p")
        mat = np.empty((n + _PAD, k), dtype=np.uint32)
        lib.zk_transpose_u32(u32p(mat), k, u32p(cols), k, n + _PAD)
        return {"pre": F.encode(self.pre), "post": F.encode(self.post), "exec": mat[:n]}


def _canonical(col: np.ndarray) -> bool:
    """Every value of a non-empty column in [0, p): for int64, one pass (as
    uint64 a negative value is >= p), not a min and a max."""
    if col.dtype == np.int64:
        return bool(col.view(np.uint64).max() < P)
    return bool(col.min() >= 0 and col.max() < P)


_SCRATCH = threading.local()


def _scratch_u32(shape: tuple[int, int]) -> np.ndarray:
    """A uint32 buffer of `shape` for the calling thread, kept from call to
    call (valid until the thread's next call)."""
    size = shape[0] * shape[1]
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or buf.size < size:
        buf = _SCRATCH.buf = np.empty(size, dtype=np.uint32)
    return buf[:size].reshape(shape)


#: trace rows per operation when a chain's trace is sized (trace_length_for):
#: the synthetic flow takes ~1.8; a batch that takes more is cut where its
#: trace is full (daemon/shadow.py)
ROWS_PER_OP = 2
MIN_TRACE_LENGTH = 16


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
    kind = steps["kind"]
    bracket = (kind == StepKind.BEGIN) | (kind == StepKind.END)
    if not len(steps):
        return ~bracket
    # an operation's steps are consecutive, BEGIN first: it has no inner step
    # exactly when its BEGIN is followed by its END
    lone = (kind[:-1] == StepKind.BEGIN) & (kind[1:] == StepKind.END)
    return ~bracket | np.r_[lone, False]


def op_rows(steps: np.ndarray, n_ops: int) -> np.ndarray:
    """The trace rows each of `n_ops` operations takes (int64 per operation)."""
    return np.bincount(steps["op"][fold(steps)], minlength=n_ops).astype(np.int64)


def rows_for(rows: int, capacity: int) -> int:
    """The shortest trace holding `rows` operation rows, the PAD row after
    them and the state table of a book of `capacity` slots."""
    return _power_of_two_at_least(max(capacity, rows + 1))


def check_trace_length(trace_length: int, capacity: int) -> int:
    """`trace_length` if a chain of books of `capacity` slots can be proven
    in traces of that many rows (a power of two, up to 2^MAX_LOG_TRACE,
    holding the state table and any one operation); ValueError saying why
    not otherwise."""
    t, need = trace_length, max(MIN_TRACE_LENGTH, capacity, max_rows(capacity) + 1)
    if not isinstance(t, (int, np.integer)) or t < 1 or t & (t - 1) or t > 1 << MAX_LOG_TRACE:
        raise ValueError(f"a trace length is a power of two up to 2^{MAX_LOG_TRACE}, not {t!r}")
    if t < need:
        raise ValueError(f"a trace of {t} rows cannot hold one operation at capacity {capacity} "
                         f"(it needs {need} rows: up to {max_rows(capacity)} for an operation, "
                         "the PAD row and the state table)")
    return int(t)


def trace_length_for(capacity: int, max_ops: int = 1) -> int:
    """The trace length of a chain: room for any one operation on a book of
    `capacity` slots, and for `max_ops` operations of typical size
    (ROWS_PER_OP).  Padding costs as much to prove as steps, so batches that
    fill their trace are the cheapest per operation."""
    return _power_of_two_at_least(max(capacity, max_rows(capacity) + 1, max_ops * ROWS_PER_OP))


def _blank(pre_table: np.ndarray, post_table: np.ndarray, rows: int, trace_length: int,
           capacity: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Zero exec columns and the two state tables padded to T rows."""
    T = trace_length
    if rows + 1 > T:
        raise ValueError(f"{rows} rows do not fit a trace of {T} (one PAD row is needed)")
    cols = {n: np.zeros(T, dtype=np.int64) for n in exec_columns(T)}
    pre = np.zeros((T, WORD), dtype=np.int64)
    pre[:capacity] = pre_table
    post = np.zeros((T, WORD), dtype=np.int64)
    post[:capacity] = post_table
    return cols, pre, post


#: what PAD rows repeat of the last row (the constraints carry them)
_CARRIED = ("oi",) + KINDS + ("buy", "lim", "qty", "hslot", "hgen", "alo", "ahi")


def build_reference(pre_table: np.ndarray, post_table: np.ndarray, ops: np.ndarray,
                    steps: np.ndarray, trace_length: int, capacity: int) -> Witness:
    """The witness row by row, in plain Python: the readable definition that
    `build` (vectorised) is tested against."""
    T = trace_length
    keep = fold(steps).tolist()
    cols, pre, post = _blank(pre_table, post_table, sum(keep), T, capacity)

    last = np.zeros(T, dtype=np.int64)           # ts of each address's last write
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
    c["pts"] = last.copy()
    derive_columns(c, T)
    w = Witness(pre % P, post % P, cols, T)
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


def _step_fields(steps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The step records' addr (4, S), old_word and new_word (4, WORD, S),
    uint32 with the steps contiguous, from one blocked transpose of the
    records as words."""
    S = len(steps)
    width = steps.dtype.itemsize // 4
    words = np.ascontiguousarray(steps).view(np.uint32).reshape(S, width)
    by_field = np.empty((width, S), dtype=np.uint32)
    if S:
        lib.zk_transpose_u32(u32p(by_field), S, u32p(words), S, width)

    def field(name: str) -> np.ndarray:
        dt, offset = steps.dtype.fields[name][:2]
        return by_field[offset // 4: (offset + dt.itemsize) // 4].reshape(dt.shape + (S,))

    return field("addr"), field("old_word"), field("new_word")


def build(pre_table: np.ndarray, post_table: np.ndarray, ops: np.ndarray, steps: np.ndarray,
          trace_length: int, capacity: int) -> Witness:
    """The witness of `steps` (Book.process_traced) from the book `pre_table`
    to `post_table`, vectorised over rows (`build_reference` is the same, row
    by row)."""
    rows = fold(steps)
    steps = steps[rows]
    T, S = trace_length, len(steps)
    c, pre, post = _blank(pre_table, post_table, S, T, capacity)

    kind = steps["kind"].astype(np.int64)
    opi = steps["op"].astype(np.int64)
    mask = steps["mask"].astype(np.int64)
    # the records' words field by field with the steps contiguous (one
    # blocked transpose): each column below is then one contiguous copy, not
    # a gather a step record apart
    addr_t, old_t, new_t = _step_fields(steps)
    addr = addr_t.T.astype(np.int64)                 # (S, 4), each access contiguous
    old = old_t.transpose(2, 0, 1)                   # (S, 4, WORD) uint32 views
    new = new_t.transpose(2, 0, 1)

    # an operation's rows are consecutive: first and last where the index changes
    first = np.ones(S, dtype=bool)
    first[1:] = opi[1:] != opi[:-1]
    last = np.ones(S, dtype=bool)
    last[:-1] = first[1:]
    c["first"][:S], c["last"][:S] = first, last
    op_first = np.zeros(len(ops), dtype=np.int64)
    op_first[opi[first]] = np.flatnonzero(first)
    row_first = op_first[opi]                        # each row's operation's first row

    # the operations' context
    ctx = classify_all(ops, capacity)
    index_of_code = np.zeros(max(KIND_CODE.values()) + 1, dtype=np.int64)
    for j, name in enumerate(KINDS):
        index_of_code[KIND_CODE[name]] = j
    kind_idx = index_of_code[ctx["code"]]
    fields = {f: ctx[f] for f in ("buy", "lim", "qty", "hslot", "hgen", "alo", "ahi")}
    reason = ops["reason"].astype(np.int64)
    rk = kind_idx[opi]
    for j, kn in enumerate(KINDS):
        c[kn][:S] = rk == j
    for f, v in fields.items():
        c[f][:S] = v[opi]
    c["oi"][:S] = opi
    c["row"] = np.arange(T)

    # memory: old timestamps from the previous access of the same address
    m = np.stack([(mask >> j) & 1 for j in range(4)], axis=1)          # (S, 4)
    r_acc, j_acc = np.nonzero(m)                                        # row order, then H A B C
    a_acc = addr[r_acc, j_acc]
    order = np.argsort(a_acc, kind="stable")
    a_s, r_s = a_acc[order], r_acc[order]
    prev_ts = np.zeros(len(a_s), dtype=np.int64)
    same = np.zeros(len(a_s), dtype=bool)
    same[1:] = a_s[1:] == a_s[:-1]
    prev_ts[1:] = np.where(same[1:], r_s[:-1] + 1, 0)
    ts = np.zeros((S, 4), dtype=np.int64)
    ts[r_acc[order], j_acc[order]] = prev_ts
    last_write = np.zeros(T, dtype=np.int64)
    last_write[a_s] = r_s + 1     # numpy keeps the last assignment: the latest row
    for j, x in enumerate("HABC"):
        c[f"m{x}"][:S] = m[:, j]
        c[f"t{x}"][:S] = ts[:, j]
        if x != "H":
            c[f"a{x}"][:S] = addr[:, j]
        for q in range(HCELLS if x == "H" else WORD):
            c[f"o{x}{q}"][:S] = old_t[j, q]
            if written(x, q) != f"o{x}{q}":
                c[written(x, q)][:S] = new_t[j, q]
    c["pts"] = last_write

    # step selectors; PEEK roles by the operation's kind and the PEEK's rank
    isk = {k: kind == int(k) for k in StepKind}
    peek = isk[StepKind.PEEK]
    peek_cum = np.cumsum(peek)
    peek_rank = peek_cum - (peek_cum[row_first] - peek[row_first])   # 1 for the first PEEK
    kn = np.array(KINDS)[rk]
    stale = peek & np.isin(kn, ("k_can", "k_red"))
    fok = peek & (kn == "k_fok")
    other = peek & ~stale & ~fok
    cross = other & (peek_rank == 1) & (reason[opi] == int(Reason.WOULD_CROSS))
    stop = other & (peek_rank == 1) & ~cross
    full = other & (peek_rank > 1)
    for name, sel_ in (("sN", isk[StepKind.BEGIN]), ("sM", isk[StepKind.MATCH]),
                       ("sR", isk[StepKind.REST]), ("sC", isk[StepKind.CANCEL]),
                       ("sD", isk[StepKind.REDUCE]),
                       ("pk_stale", stale), ("pk_fok", fok), ("pk_cross", cross),
                       ("pk_stop", stop), ("pk_full", full)):
        c[name][:S] = sel_
    c["sZ"][S:] = 1
    sM, sR, sC, sD = isk[StepKind.MATCH], isk[StepKind.REST], isk[StepKind.CANCEL], isk[StepKind.REDUCE]

    oA, nA, oB, oC = (w[:, j].astype(np.int64) for w, j in ((old, 1), (new, 1), (old, 2), (old, 3)))
    buy, lim, qty, hgen = (c[f][:S] for f in ("buy", "lim", "qty", "hgen"))
    # running values within an operation: before the row's own change
    fill = np.where(sM, oA[:, 1] - nA[:, 1], 0)
    cum_fill = np.cumsum(fill) - fill
    rem = qty - (cum_fill - cum_fill[row_first])
    cum_m = np.cumsum(sM) - sM
    tn = cum_m - cum_m[row_first]
    cx = np.where(buy == 1, lim - oA[:, 0], oA[:, 0] - lim)
    has_a = m[:, 1] == 1
    cr = fok & has_a & (cx >= 0)
    add = np.where(cr, oA[:, 1], 0)
    cum_add = np.cumsum(add)
    acc = cum_add - (cum_add[row_first] - add[row_first])    # this row's maker included
    sf = fok & (acc >= qty)

    c["rem"][:S], c["tn"][:S], c["acc"][:S] = rem, tn, acc
    c["cr"][:S], c["sf"][:S] = cr, sf
    c["fl"][:S] = fill
    lv = sM & (nA[:, 1] == 0)
    c["lv"][:S] = lv
    c["os"][:S] = np.where(sR, addr[:, 1], 0)
    c["og"][:S] = np.where(sR, oA[:, 7], 0)
    taker = sM | stop | cross | fok | sR
    c["sel"][:S] = np.where(taker, buy, np.where(sC, (oA[:, 2] == 1).astype(np.int64), 0))

    # zero-test values and comparisons, step by step
    zv1 = np.zeros(S, dtype=np.int64)
    zv2 = np.zeros(S, dtype=np.int64)
    zv1 = np.where(sM, oA[:, 6], zv1)
    zv1 = np.where(stop | cross | fok, addr[:, 1] * has_a, zv1)
    zv1 = np.where(sR | sC, addr[:, 2], zv1)
    zv1 = np.where(stale, oA[:, 7] - hgen, zv1)
    zv2 = np.where(fok, oA[:, 6] * has_a, zv2)
    zv2 = np.where(sR | sC, addr[:, 3], zv2)
    c["zv1"][:S], c["zv2"][:S] = zv1, zv2
    cmp1 = np.zeros(S, dtype=np.int64)
    cmp2 = np.zeros(S, dtype=np.int64)
    cmp1 = np.where(sM | cross, cx, cmp1)
    cmp2 = np.where(sM, np.where(lv, rem - oA[:, 1], oA[:, 1] - rem - 1), cmp2)
    cmp1 = np.where(stop & has_a, -cx - 1, cmp1)
    cmp2 = np.where(stop, rem - 1, cmp2)
    cmp1 = np.where(fok & has_a, np.where(cr, cx, -cx - 1), cmp1)
    cmp2 = np.where(fok, np.where(sf, acc - qty, qty - acc - 1), cmp2)
    has_b, has_c = addr[:, 2] != 0, addr[:, 3] != 0
    cmp1 = np.where(sR & has_b, np.where(buy == 1, oB[:, 0] - lim, lim - oB[:, 0]), cmp1)
    cmp2 = np.where(sR & has_c, np.where(buy == 1, lim - oC[:, 0] - 1, oC[:, 0] - lim - 1), cmp2)
    cmp1 = np.where(sC, oA[:, 1] - 1, cmp1)
    cmp2 = np.where(sC & (kn == "k_red"), qty - oA[:, 1], cmp2)
    cmp2 = np.where(sD, oA[:, 1] - qty - 1, cmp2)
    c["cmp1"][:S], c["cmp2"][:S] = cmp1, cmp2
    frees = sC | lv
    wrap = frees & (oA[:, 7] == GEN_LIMIT - 1)
    c["gw"][:S] = wrap
    c["ginv"][:S] = np.where(frees & ~wrap, _field_inv(oA[:, 7] - (GEN_LIMIT - 1)), 0)

    # PAD rows carry the last operation's context and running values (as
    # they stand after its last row)
    if S:
        for n_ in _CARRIED:
            c[n_][S:] = c[n_][S - 1]
        c["rem"][S:] = rem[-1] - fill[-1]
        c["tn"][S:] = tn[-1] + sM[-1]
        c["acc"][S:] = acc[-1]
    derive_columns(c, T)
    w = Witness(pre % P, post % P, c, T)
    w.finish()
    return w


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
    for pre_, w in (("o", ""), ("n", "n")):
        H = [c[f"{pre_}H{j}"] for j in range(4)]
        c[f"{w}ob"] = (sel * H[2] + (1 - sel) * H[0]) % P
        c[f"{w}sb"] = (H[0] + H[2] - c[f"{w}ob"]) % P
        c[f"{w}ow"] = (sel * H[3] + (1 - sel) * H[1]) % P
        c[f"{w}sw"] = (H[1] + H[3] - c[f"{w}ow"]) % P
    for cm in ("1", "2"):
        val = c[f"cmp{cm}"] % P
        for i in range(k - 1):
            c[f"c{cm}_{i}"] = (val >> (i * L)) & ((1 << L) - 1)
        c[f"c{cm}_{k - 1}"] = val >> ((k - 1) * L)
    for n_, col in c.items():
        if col.size and not _canonical(col):   # most are in range: no division, no copy
            c[n_] = col % P
