"""The broken zk modes of docs/ZK.md section 12, each caught by the test
meant for it while the real implementation passes the same test: the
mask-consistency half of (a2) (the chained state's mask; a state mask
shorter than what two proofs reveal of it; masks reused across batches or
shared between columns), the salts (trees salted alike; record leaves
sharing a salt, as a receipt's holder sees them), (a3) for R~ under
independent, dependent DEEP coefficients, and (d), the trade slots
receipts show (trade leaves in MATCH order).  The doubles are
tests/zk_broken.py's, installed with monkeypatch; every proof made under
one still verifies.

The candidates are two streams of 180 operations, three batches of 60
each from the empty book (capacity 128, 256 ops rows): batch by batch one
public statement, their private fields apart as in test_zk_hiding.py
(prices, quantities, accounts, kinds, trade counts).  Every proof is made
under a store key from a fixed master seed, so each test is deterministic.

The distinguisher holds both candidate streams and what a proof's holder
has: the proofs, what the verifier computes from them (the out-of-domain
point, the query positions, the DEEP coefficients: hiding.verifier_view),
and for the record salts a receipt.  From each candidate it computes the
matrices no key enters (exec, and the state tables pre and post; the lane
and stamp hold keyed salts and blinding values), proving the candidate
under a store key of its own."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

import zk_broken
from book_modes import ZK_OPTS
from hiding import (chi2_two_sample, chi2_uniform, fp_rank, fp_solvable, ks_two_sample, mask_system,
                    repeated_salts, verifier_view)
from zksidecar.engine import flow
from zksidecar.engine.book import Book
from zksidecar.prover.domain import link_point
from zksidecar.prover.ext_scalar import Ext
from zksidecar.prover.orderbook import receipt_format
from zksidecar.prover.orderbook.batch import prepare_batch, prove_prepared, verify_batch
from zksidecar.prover.orderbook.batch_receipts import make_batch_receipt, statement_of
from zksidecar.prover.orderbook.receipt import check_receipt
from zksidecar.prover.orderbook.zk_chain import ZkChain
from zksidecar.prover.orderbook.zk_air import shape_statement
from zksidecar.prover.orderbook.zk_encoding import encode_operations, leaf_digests
from zksidecar.prover.proof import layout

CAP, LOG_CAP, T, N_OPS, BATCHES = 128, 7, 256, 60, 3
MASTER = b"tests/test_zk_broken_modes.py master seed"
#: the distinguisher's own store key: the matrices it computes need none
OWN_KEY = hashlib.sha256(b"tests/test_zk_broken_modes.py distinguisher's key").digest()
Q = ZK_OPTS.num_queries
#: every trace mask's degree bound at these options, 2q + 20 (docs/ZK.md 5.2)
H = 2 * Q + 20
#: the matrices a candidate determines without a key
KEY_FREE = ("book.pre", "book.post", "book.records", "ops.exec")
DOMAIN = {"book": 0, "ops": 1}


def key(i: int) -> bytes:
    """The i-th test store key, from the master seed."""
    return hashlib.sha256(MASTER + i.to_bytes(8, "little")).digest()


def chain(store_key: bytes) -> ZkChain:
    return ZkChain(store_key, 0, LOG_CAP, T, ZK_OPTS)


def prove_chain(ops: np.ndarray, store_key: bytes, batches: int = BATCHES) -> list:
    """Batches 0 .. batches - 1 of `ops` (N_OPS each) as one zk chain from
    the empty book: [(prepared batch, batch proof), ...]."""
    zc, state, out = chain(store_key), Book(CAP), []
    for b in range(batches):
        prep = prepare_batch(state, ops[b * N_OPS:(b + 1) * N_OPS], ZK_OPTS, batch_id=b, zk=zc)
        bp, state, _ = prove_prepared(prep, ZK_OPTS)
        out.append((prep, bp))
    return out


@pytest.fixture(scope="module")
def streams() -> list[np.ndarray]:
    """Two streams of BATCHES * N_OPS operations: a quiet book at 100,000
    ticks, and a busy one at 300,000 with more takers, other sizes and
    accounts."""
    a = flow.generate(BATCHES * N_OPS, 21, CAP, params=flow.FlowParams(depth=40, take=0.15, accounts=50))
    b = flow.generate(BATCHES * N_OPS, 22, CAP, params=flow.FlowParams(mid=300_000, depth=30, take=0.6,
                                                                       size_scale=40, accounts=5000))
    return [a, b]


@pytest.fixture(scope="module")
def own(streams) -> list[list]:
    """Each candidate as the distinguisher computes it, under its own key:
    per batch, (its records with outcomes, its key-free matrices)."""
    out = []
    for ops in streams:
        runs = prove_chain(ops, OWN_KEY)
        out.append([(prep.zk.ops, {m: t for m, t in prep.zk.traces(prep.witness, prep.pre).items()
                                   if m in KEY_FREE}) for prep, _ in runs])
    return out


@pytest.fixture(scope="module")
def real_chains(streams) -> list[list[list]]:
    """Each candidate proven as a chain under store keys 0 and 1 by the
    real implementation: [candidate][key] -> prove_chain's list."""
    return [[prove_chain(ops, key(i)) for i in range(2)] for ops in streams]


def openings(bp, names) -> dict[str, list]:
    """Every value proof `bp` reveals of each matrix in `names`, as
    mask_system takes them: its opened rows at their LDE points, its
    values at z and, read on the next row, at w z, and, exported, at its
    link point.  The points are the verifier's (hiding.verifier_view)."""
    view = verifier_view(bp.proof, lambda: verify_batch(bp, min_security=0))
    p, out = bp.proof, {}
    for name in names:
        d = DOMAIN[name.split(".")[0]]
        got = [(int(x), row) for x, row in zip(view.rows_at(d), p.rows[name])]
        got.append((view.z, p.ood_z[name]))
        if name in p.ood_next:      # the columns read on the next row
            got.append((view.next_point(d), p.ood_next[name], next_columns(name)))
        if name in p.link_values:
            got.append((link_point(p.roots[name]), p.link_values[name]))
        out[name] = got
    return out


def next_columns(name: str) -> tuple[int, ...]:
    """The columns of matrix `name` (``domain.matrix``) a proof opens at w z."""
    st = shape_statement(LOG_CAP, T)
    domain, matrix = name.split(".")
    return next(m.next_columns for m in layout(st.domains[DOMAIN[domain]].air, zk=True) if m.name == matrix)


def system(groups, h: int) -> list[tuple[tuple[int, ...], np.ndarray, np.ndarray]]:
    """The equations on one mask per column that `groups` give together,
    [(openings, the candidate's matrix), ...]: mask_system's, stacked (the
    same mask assumed behind every group), per set of columns revealed at
    the same kinds of points (the columns read on the next row, the others)."""
    merged: dict[tuple[int, ...], list] = {}
    for o, t in groups:
        for cols, a, b in mask_system(o, t, h):
            merged.setdefault(cols, []).append((a, b))
    return [(cols, np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts]))
            for cols, parts in merged.items()]


def explains(groups, h: int) -> bool:
    """Does one mask of degree < h per column explain every value `groups`
    reveal, for the candidate matrices they hold?"""
    return all(bool(fp_solvable(a, b).all()) for _, a, b in system(groups, h))


def revealed(groups, h: int) -> int:
    """How many independent values `groups` reveal of a matrix whose columns
    are all revealed at the same points (the chained state's)."""
    (_, a, _), = system(groups, h)
    return fp_rank(a)


# ------------------------------------------------- (a2) mask consistency --

def state_groups(runs, b: int, own) -> list[list]:
    """The state after batch b as two proofs open it, batch b's `post` (z,
    the link point, its rows) and batch b + 1's `pre` (z, its rows), with
    each candidate's table of it: per candidate, a list for explains."""
    post = openings(runs[b][1], ["book.post"])["book.post"]
    pre = openings(runs[b + 1][1], ["book.pre"])["book.pre"]
    return [[(post, batches[b][1]["book.post"]), (pre, batches[b + 1][1]["book.pre"])] for batches in own]


def test_the_distinguishers_matrices_are_the_provers(own, real_chains):
    """The key-free matrices the distinguisher computes under its own key
    are the ones the prover committed under the store's (so the tests below
    test the candidates, not a mistake in them)."""
    for c in range(2):
        for b, (prep, _) in enumerate(real_chains[c][0]):
            traces = prep.zk.traces(prep.witness, prep.pre)
            for m in KEY_FREE:
                assert np.array_equal(own[c][b][1][m], traces[m]), (c, b, m)
        assert np.array_equal(own[c][0][1]["book.post"], own[c][1][1]["book.pre"])


def test_a2_the_chained_states_mask_explains_both_candidates(own, real_chains):
    """(a2), mask consistency, on the one polynomial two proofs open: the
    state after batch b, as batch b's `post` and batch b + 1's `pre`.  For
    every column and each candidate's state table, (revealed - t) / Z_H at
    every point either proof reveals is consistent with one polynomial of
    degree < h, for both candidates: the two proofs reveal 2q + 12 of its
    h = 2q + 20 coefficients (z and q rows in each, the link point once;
    the state is not opened at w z), so they tell nothing of the table."""
    told = []
    for truth in range(2):
        for runs in real_chains[truth]:
            for b in range(BATCHES - 1):
                groups = state_groups(runs, b, own)
                count = revealed(groups[0], H)
                assert 2 * 4 + 4 < count <= 2 * Q + 12
                told.append([explains(g, H) for g in groups])
    assert told == [[True, True]] * len(told)


def test_a2_a_state_mask_shorter_than_what_is_revealed_is_caught(streams, own, monkeypatch):
    """short-mask: the state masked with 2q + 11 coefficients, one fewer
    than the most two proofs reveal of it (2q + 12).  The same test
    explains the true candidate and not the other exactly when the two
    proofs reveal more independent values than the mask has (a query row
    both proofs open counts once): checked for each of the eight states.
    On a 128-row state domain the two proofs' query rows often meet, so
    how many of the eight reveal more than the mask holds is the draw of
    the query positions; at least one must, or the test would not have
    seen the leak it is for.
    (The short-mask of section 12, h - 1 coefficients, is not a leak on
    the order book: the state's h has a margin of 8, the w z it does not
    open.)"""
    short = 2 * Q + 11
    zk_broken.short_state_mask(monkeypatch, short)
    caught = total = 0
    for truth in range(2):
        for i in range(2):
            runs = prove_chain(streams[truth], key(10 + i))
            verify_batch(runs[1][1], min_security=0)
            for b in range(BATCHES - 1):
                groups = state_groups(runs, b, own)
                count = revealed(groups[0], H)
                assert explains(groups[truth], short)
                assert explains(groups[1 - truth], short) == (count <= short), (truth, i, b, count)
                caught += count > short
                total += 1
    # how many of the states are caught depends on the query rows the
    # proofs' transcripts draw (a row opened twice counts once); each state
    # is held to the exact rule above
    assert caught >= 1, (caught, total)


def exec_groups(runs, own) -> list[list]:
    """Every batch's `exec` openings with each candidate's matrix of it:
    per candidate, a list for explains."""
    opened = [openings(bp, ["ops.exec"])["ops.exec"] for _, bp in runs]
    return [[(o, batches[b][1]["ops.exec"]) for b, o in enumerate(opened)] for batches in own]


def test_a2_masks_reused_across_batches_are_caught(streams, own, real_chains, monkeypatch):
    """reused-mask: each proof's trace masks a function of the matrix's name
    only, so batches 0, 1 and 2 mask `exec` alike.  Asked whether one mask
    per column explains all three proofs' `exec` values (3 (q + 8) = 48
    equations on h = 36 coefficients for a column read on the next row;
    3 (q + 4) = 36 for the others, which w z does not open), the test
    answers yes for the true
    candidate only; on the real proofs it answers no for both (their masks
    are independent), and proof by proof yes for both.  (Two batches
    reveal 2 (q + 8) = 32 < h values of a reused mask: within the budget
    the design counts only with the next rows inside Q(x), which this
    linear test does not use.)"""
    for truth in range(2):
        groups = exec_groups(real_chains[truth][0], own)
        assert [explains(g, H) for g in groups] == [False, False]
        assert all(explains([g[b]], H) for g in groups for b in range(BATCHES))
    zk_broken.reused_masks(monkeypatch)
    for truth in range(2):
        runs = prove_chain(streams[truth], key(20))
        verify_batch(runs[-1][1], min_security=0)
        told = [explains(g, H) for g in exec_groups(runs, own)]
        assert told == [c == truth for c in range(2)], (truth, told)


def columns_share(opened, table, h: int) -> bool:
    """Does one mask, the same for every column, explain every column's
    revealed values of the matrix (`table` the candidate's)?"""
    parts = mask_system(opened, table, h)
    a = np.concatenate([np.tile(a, (b.shape[1], 1)) for _, a, b in parts])
    b = np.concatenate([b.T.reshape(-1, 1) for _, _, b in parts])
    return bool(fp_solvable(a, b)[0])


@pytest.mark.parametrize("matrix", ["ops.exec", "book.records"])
def test_a2_masks_shared_between_columns_are_caught(streams, own, real_chains, monkeypatch, matrix):
    """reused-mask between columns: every column of a matrix masked with
    the same r.  One proof's values of `exec` (or of the `book` domain's
    records segment: q + 8 per column read on the next row, q + 4 per
    other column) explained by one mask for all the columns: the true
    candidate only; on a real proof neither, and column by column both."""
    for truth in range(2):
        opened = openings(real_chains[truth][0][0][1], [matrix])[matrix]
        tables = [own[c][0][1][matrix] for c in range(2)]
        assert [columns_share(opened, t, H) for t in tables] == [False, False]
        assert [explains([(opened, t)], H) for t in tables] == [True, True]
    zk_broken.shared_column_masks(monkeypatch)
    for truth in range(2):
        bp = prove_chain(streams[truth], key(30), batches=1)[0][1]
        verify_batch(bp, min_security=0)
        opened = openings(bp, [matrix])[matrix]
        told = [columns_share(opened, own[c][0][1][matrix], H) for c in range(2)]
        assert told == [c == truth for c in range(2)], (truth, told)


# ----------------------------------------------------------------- salts --

@pytest.mark.parametrize("broken", [zk_broken.cloned_tree_salts, zk_broken.no_salts],
                         ids=["cloned-salt", "no-salt"])
def test_no_two_opened_leaves_share_a_salt_unless_trees_are_salted_alike(streams, real_chains, monkeypatch,
                                                                         broken):
    """cloned-salt (every tree a proof key salts takes the exec tree's salt
    stream) and no-salt (zero salts).  Of the salts a real proof opens
    (every matrix's rows, every FRI layer's leaves) none repeats; under
    either double, the rows every matrix opens at one position repeat one
    salt.  ((a)'s two-sample tests flag both as well, through the atoms the
    repeats make in their samples; this check names the cause, from one
    proof.)  Batch 0's pre-state is the public empty book, zero salts by
    design, and is left out."""
    for runs in (chains for world in real_chains for chains in world):
        for b, (_, bp) in enumerate(runs):
            assert repeated_salts(bp.proof, public=("book.pre",) if b == 0 else ()) == 0
    broken(monkeypatch)
    runs = prove_chain(streams[0], key(40), batches=2)
    verify_batch(runs[1][1], min_security=0)
    assert repeated_salts(runs[0][1].proof, public=("book.pre",)) > Q
    assert repeated_salts(runs[1][1].proof, public=("book.pre",)) > Q


def receipt_salt_matches(bp, zc: ZkChain, prep, own_batches) -> list[int]:
    """A receipt of operation 0 of batch 0, made for its holder: with the
    salt it reveals, the holder hashes each candidate's operation j (j >=
    1, with its outcome) and counts the published operation leaves that
    match.  Returns the count per candidate."""
    pre = zc.pre_state_digest(Book(CAP).cells, 0)
    first = bp.public.first_seq
    receipt = make_batch_receipt(zc, bp, pre, prep.zk.ops, prep.trades, seqs=[first])
    check_receipt(receipt, statement_of(bp))
    salt = receipt_format.decode_receipt(receipt).operations[0]["salt"].astype(np.uint32)
    n = bp.public.zk.n_ops
    published = bp.public.zk.leaves[1:n]
    out = []
    for ops, _ in own_batches:
        data = encode_operations(ops[1:])
        guessed = leaf_digests(np.repeat(salt[None], n - 1, axis=0), data)
        out.append(int((guessed == published).all(axis=1).sum()))
    return out


def test_record_leaves_sharing_a_salt_let_a_receipts_holder_test_guesses(streams, own, real_chains,
                                                                         monkeypatch):
    """cloned-salt on the record leaves: every lane row takes row 0's salt.
    A receipt of operation 0 shows its holder that salt; hashing each
    candidate's other operations with it, the holder finds every one of
    the true candidate's leaves among the published ones, none of the
    other's.  With the real salts (one per row, from the batch key) it
    finds none of either."""
    for truth in range(2):
        prep, bp = real_chains[truth][0][0]
        got = receipt_salt_matches(bp, chain(key(0)), prep, [own[c][0] for c in range(2)])
        assert got == [0, 0], (truth, got)
    zk_broken.cloned_leaf_salts(monkeypatch)
    for truth in range(2):
        prep, bp = prove_chain(streams[truth], key(50), batches=1)[0]
        verify_batch(bp, min_security=0)
        got = receipt_salt_matches(bp, chain(key(50)), prep, [own[c][0] for c in range(2)])
        assert got == [N_OPS - 1 if c == truth else 0 for c in range(2)], (truth, got)


# --------------------------------------------------------- (a3) split-R --

def r_terms(bp) -> list[np.ndarray]:
    """Per domain, R~'s term of the DEEP combination at each opened row x
    before the division by x - z: P(x) = sum_j c_j R_j(x), c_j the DEEP
    coefficients of R~'s four coordinates (the verifier's), R_j(x) the
    quotient matrix's last four columns as opened.  ``(k, 4)`` canonical
    per domain.  The hiding argument (ZK.md 5.5) needs P uniform on all
    of F_p^4: the c_j F_p-independent."""
    view = verifier_view(bp.proof, lambda: verify_batch(bp, min_security=0))
    out = []
    for d, name in enumerate(("book.quotient", "ops.quotient")):
        group = view.deep[d][0][1]
        assert group[-1][0] == name
        c = [Ext.from_mont(row) for row in group[-1][1][-4:]]
        rows = bp.proof.rows[name][:, -4:].astype(np.int64)
        out.append(np.array([sum((c[j] * Ext(int(r[j])) for j in range(4)), Ext(0)).c for r in rows],
                            dtype=np.int64))
    return out


def test_a3_r_spans_the_extension_unless_its_coefficients_are_dependent(streams, monkeypatch):
    """split-R: R~'s coordinates under independent DEEP coefficients,
    forced F_p-dependent.  R~'s term of the DEEP combination, at the rows
    a proof opens, spans F_p^4 in every domain of a real proof (rank 4);
    under split-R it lies in a hyperplane (rank 3), so one F_p-linear
    combination of the FRI input's coordinates carries no mask (ZK.md 5.5,
    10 step 5).  R~'s own values stay uniform under split-R, which is why
    the check is on the combined term."""
    for i in range(2):
        bp = prove_chain(streams[0], key(60 + i), batches=1)[0][1]
        assert [fp_rank(v) for v in r_terms(bp)] == [4, 4]
    zk_broken.split_r(monkeypatch)
    for i in range(2):
        bp = prove_chain(streams[0], key(60 + i), batches=1)[0][1]
        assert [fp_rank(v) for v in r_terms(bp)] == [3, 3]     # r_terms verifies it


# ------------------------------------------------------------------- (d) --

#: (d)'s batches: flows whose trade counts range from a few to ~30
D_BATCHES = 24
#: their flows' taker shares, in turn
D_TAKE = (0.05, 0.3, 0.55, 0.8)


def receipt_slots(monkeypatch=None) -> list[tuple[int, list[int]]]:
    """D_BATCHES zk batches (each batch 0 of its own chain, from flows of
    other seeds and taker shares), each proven; a receipt of all its
    operations made and checked; per batch (trade count, the slots of the
    trades the receipt shows)."""
    out = []
    for i in range(D_BATCHES):
        ops = flow.generate(N_OPS, 100 + i, CAP, params=flow.FlowParams(depth=30, take=D_TAKE[i % 4]))
        zc = chain(key(70 + i))
        prep = prepare_batch(Book(CAP), ops, ZK_OPTS, zk=zc)
        bp = prove_prepared(prep, ZK_OPTS)[0]
        first = bp.public.first_seq
        receipt = make_batch_receipt(zc, bp, zc.pre_state_digest(Book(CAP).cells, 0), prep.zk.ops, prep.trades,
                                     seqs=range(first, first + N_OPS))
        report = check_receipt(receipt, statement_of(bp))
        slots = [t.slot for op in report.operations for t in op.trades]
        assert len(slots) == len(prep.trades)
        out.append((len(prep.trades), slots))
    return out


def d_failures(batches) -> list[str]:
    """(d): the slots (as fractions of the T - 1 - ops trade slots)
    uniform by a chi-square on 8 bins, and alike between the batches with
    fewer trades than the median and the others by the two-sample tests of
    (a), KS and a chi-square on 16 bins; alpha = 0.001 for each of the
    two, Bonferroni within the second.  Returns the failed ones."""
    slots = T - 1 - N_OPS
    counts = sorted(m for m, _ in batches)
    median = counts[len(counts) // 2]
    few = np.array([s for m, ss in batches if m < median for s in ss]) / slots
    many = np.array([s for m, ss in batches if m >= median for s in ss]) / slots
    failed = []
    if chi2_uniform(np.concatenate([few, many]), 8) < 0.001:
        failed.append("uniform")
    if ks_two_sample(few, many) < 0.0005 or chi2_two_sample(few, many, 16) < 0.0005:
        failed.append("independent of the trade count")
    return failed


def test_d_receipt_slots_are_uniform_and_independent_of_the_trade_count(monkeypatch):
    """(d): over 24 batches with known trade counts (a few to ~30), the slots
    the receipts show are uniform on the trade slots and do not depend on
    the trade count.  ordered-trades (trade k at slot k) fails both: a
    receipt's slot then tells how many trades came before it."""
    batches = receipt_slots()
    assert sum(len(s) for _, s in batches) >= 400
    assert min(m for m, _ in batches) < 10 < 25 < max(m for m, _ in batches)
    assert d_failures(batches) == []
    zk_broken.ordered_trades(monkeypatch)
    assert d_failures(receipt_slots()) == ["uniform", "independent of the trade count"]
