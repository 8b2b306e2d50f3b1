"""zk mode (docs/ZK.md 5.2-5.8) on the example AIRs: completeness in
one and two domains and along a chain, what it refuses, its FRI plan and
security figure, the masking budget counted from real proofs, and hiding
tests that can tell a leak (ZK.md section 12: (a1), (a2), (a3), (b)), each
shown failing on a leaking variant built here by a test hook.

The statistics are deterministic: every proof's key comes from a fixed
master seed (tests only), so a run that passes always passes."""
from __future__ import annotations

import copy
import dataclasses
import hashlib

import numpy as np
import pytest

from zksidecar.prover import field as F
from zksidecar.prover import masking, ntt
from zksidecar.prover.examples import memory
from zksidecar.prover.examples import memory_domains as md
from zksidecar.prover.examples.fibonacci import fibonacci_instance
from zksidecar.prover.examples.range_check import range_check_instance
from zksidecar.prover.fri import Schedule
from zksidecar.prover.masking import Mask
from zksidecar.prover.params import ParameterError, ProofOptions
from zksidecar.prover.air import RESERVED_MATRIX_NAMES, Segment
from zksidecar.prover.proof import (VERSION, ZK_VERSION, Proof, ProofFormatError, fri_degree_bound,
                                    fri_schedule, mask_degree, statement_layouts, statement_trees,
                                    zk_degree_growth)
from zksidecar.prover.prove import COSET_SHIFT, SegmentCommitment, prove
from zksidecar.prover.reference import reference_prove
from zksidecar.prover.statement import as_statement
from zksidecar.prover.transcript import Transcript
from zksidecar.prover.verify import VerificationError, verify
from hiding import distinguished_kinds, ks_two_sample, ks_uniform, layout_counts, revealed_kinds
from zk_modes import KEY, prove_in, state_key

#: 8 queries: h = 36 (52 for the memory example, whose chained state is read
#: on the next row), h_q = 12; at degree 3 the masks fit 2^7 rows (2^8)
ZK1 = ProofOptions(log_blowup=1, num_queries=8, grinding_bits=2, fri_folding_factor=4,
                   fri_max_final_degree=4, zk=True)
ZK2 = dataclasses.replace(ZK1, log_blowup=2)
MASTER = b"tests/test_zk_mode.py master seed"


def key(i: int) -> bytes:
    """The i-th test batch key, from the master seed."""
    return hashlib.sha256(MASTER + i.to_bytes(8, "little")).digest()


def roundtrip(subject, proof):
    raw = proof.to_bytes(subject)
    assert int.from_bytes(raw[4:6], "little") == (ZK_VERSION if proof.options.zk else VERSION)
    return Proof.from_bytes(raw, subject)


def public_init(table: np.ndarray, opts) -> SegmentCommitment:
    """A known first table, as both sides commit it in zk mode."""
    return memory.known_table_commitment(table, opts.log_blowup, opts.zk)


# ------------------------------------------------------------ completeness --

@pytest.mark.parametrize("opts", [ZK1, ZK2], ids=["blowup2", "blowup4"])
def test_example_airs_prove_and_verify(opts):
    """At blowup 2 the degree-3 quotient is computed beyond the LDE (on D
    and a small second coset, prove.quotient_coefficients); at blowup 4 on
    the LDE itself.  The figure the
    verifier returns is the zk formula's, D_F from the proof's plan and
    the identity's degree d D_F (FRI's bound on the committed columns),
    not d (N + h)."""
    for air, traces in (fibonacci_instance(1 << 7, 2, seed=1), range_check_instance(1 << 8, 8, 2, seed=2)):
        res = prove(air, traces, opts, debug=True, zk_key=KEY)
        done = verify(air, roundtrip(air, res.proof), min_security=0)
        d_f = fri_degree_bound(fri_schedule(as_statement(air), opts))
        h = mask_degree(air, opts)
        assert h == 2 * opts.num_queries + 20 and d_f >= air.trace_length + h
        assert done.security_bits == opts.conjectured_security(
            air.trace_length, air.algebraic_degree(air.trace_length) + air.max_degree * (d_f - air.trace_length),
            d_f)


def test_the_identity_degree_is_d_times_fris_bound():
    """Review L2: the algebraic term counts d D_F per domain (D_F at the
    domain's height), what FRI enforces, not d (N + h); at the tests'
    final bound of 4, D_F is well above N + h, so the two differ."""
    air, _ = fibonacci_instance(1 << 7, 2, seed=1)
    st = as_statement(air)
    d_f = fri_degree_bound(fri_schedule(st, ZK1))
    assert d_f > air.trace_length + mask_degree(air, ZK1)
    assert zk_degree_growth(st, fri_schedule(st, ZK1)) == air.max_degree * (d_f - air.trace_length)
    st = md.memory_statement(128, 256)
    schedule = fri_schedule(st, ZK1)
    d_f = fri_degree_bound(schedule)
    (a, la), (b, lb) = ((dom.air, dom.log_length) for dom in st.domains)
    assert la != lb
    top = max(la, lb)
    assert zk_degree_growth(st, schedule) == a.max_degree * ((d_f >> (top - la)) - (1 << la)) + \
        b.max_degree * ((d_f >> (top - lb)) - (1 << lb))


def test_a_memory_chain_proves_and_verifies_root_to_root():
    """Each proof exports its final table masked under its state key; the
    next proof rebuilds that commitment from the table and the key alone
    (the same root and link) and proves against it."""
    n, opts = 1 << 8, ZK1
    air = memory.MemoryAir(n)
    values = np.zeros(n, dtype=np.int64)
    init = public_init(memory.state_table(values), opts)
    ext_p, ext_v = {"init": (init, None)}, {"init": (init.root, None)}
    for b in range(3):
        r = memory.run(values, memory.random_ops(n, n - b, seed=b, cells=n // 2))
        res = prove(air, r.traces, opts, external=ext_p, debug=True, zk_key=key(b),
                    state_keys={"final": masking.StateKey.of(state_key(f"final {b}"), r.traces["final"])})
        done = verify(air, roundtrip(air, res.proof), external=ext_v, min_security=0)
        table = res.commitments["final"].trace
        again = SegmentCommitment.commit(table, opts.log_blowup, Mask.for_state(
            masking.StateKey.of(state_key(f"final {b}"), table), table.shape[1], mask_degree(air, opts),
            (n << opts.log_blowup).bit_length() - 1))
        assert again.root == res.proof.roots["final"] == done.roots["final"]
        assert again.link() == res.links["final"] == done.links["final"]
        ext_p, ext_v = {"init": (again, again.link())}, {"init": (done.roots["final"], done.links["final"])}
        values = r.final_values


@pytest.mark.parametrize("cells,steps", [(256, 256), (512, 256), (256, 512)])
def test_two_domains_prove_and_verify(cells, steps):
    """A statement of two domains (either tall, or equal): one FRI whose
    D_F holds each domain's masked degree at its height; the cells domain's
    final table chains on."""
    opts = ZK1
    st = md.memory_statement(cells, steps)
    run = md.run([0] * cells, memory.random_ops(cells, steps - 3, seed=cells + steps), steps)
    init = public_init(run.traces["cells.init"], opts)
    res = prove_in(st, run.traces, opts, external={"cells.init": (init, None)}, debug=True)
    done = verify(st, roundtrip(st, res.proof), external={"cells.init": (init.root, None)}, min_security=0)
    assert done.links["cells.final"] == res.links["cells.final"]
    st2 = md.memory_statement(cells, steps)
    run2 = md.run(run.final_values, memory.random_ops(cells, steps - 5, seed=7), steps)
    fin = res.commitments["cells.final"]
    second = prove_in(st2, run2.traces, opts, key=key(1), external={"cells.init": (fin, fin.link())})
    verify(st2, roundtrip(st2, second.proof), min_security=0,
           external={"cells.init": (done.roots["cells.final"], done.links["cells.final"])})


def test_proofs_are_functions_of_their_inputs_and_key():
    air, traces = range_check_instance(1 << 8, 8, 1, seed=3)
    one = prove(air, traces, ZK1, zk_key=key(0)).proof.to_bytes(air)
    assert prove(air, traces, ZK1, zk_key=key(0)).proof.to_bytes(air) == one
    assert prove(air, traces, ZK1, zk_key=key(1)).proof.to_bytes(air) != one


def test_one_key_for_two_witnesses_masks_them_apart():
    """Review M2: two range-check proofs with the same public bytes and
    the same batch key, of different traces, share no mask r and no salt
    in any matrix (together they would reveal t1 - t2 wherever both open
    a row); a state key given for two tables masks them apart, for the same
    table alike."""
    air1, tr1 = range_check_instance(1 << 8, 8, 1, seed=1)
    air2, tr2 = range_check_instance(1 << 8, 8, 1, seed=2)
    assert air1.public_bytes() == air2.public_bytes() and any((tr1[k] != tr2[k]).any() for k in tr1)
    r1, r2 = prove(air1, tr1, ZK1, zk_key=KEY), prove(air2, tr2, ZK1, zk_key=KEY)
    verify(air1, r1.proof, min_security=0)
    verify(air2, r2.proof, min_security=0)
    assert set(r1.commitments) == set(r2.commitments) == {"main", "aux", "quotient"}
    for name, com in r1.commitments.items():
        other = r2.commitments[name].mask
        assert not (com.mask.salts == other.salts).all(axis=1).any(), name     # no leaf's salt shared
        assert com.mask.h == other.h and (com.mask.h == 0 or not np.array_equal(com.mask.coeffs, other.coeffs))
    assert r1.commitments["quotient"].mask.h == 0      # its chunk masks and R~ are in its coefficients
    log_m = (1 << 8).bit_length() + ZK1.log_blowup - 1
    t1, t2 = tr1["main"], tr2["main"]
    m1, m2 = (Mask.for_state(masking.StateKey.of(state_key("s"), t), t.shape[1], 36, log_m) for t in (t1, t2))
    assert not np.array_equal(m1.coeffs, m2.coeffs) and not (m1.salts == m2.salts).all(axis=1).any()
    again = Mask.for_state(masking.StateKey.of(state_key("s"), t1.copy()), t1.shape[1], 36, log_m)
    assert np.array_equal(again.coeffs, m1.coeffs) and np.array_equal(again.salts, m1.salts)


# ---------------------------------------------------- the reference prover --

REF_ZK = ProofOptions(log_blowup=1, num_queries=4, grinding_bits=1, fri_folding_factor=4, fri_max_final_degree=4,
                      zk=True)


@pytest.mark.parametrize("opts", [REF_ZK, dataclasses.replace(REF_ZK, log_blowup=2)], ids=["4N", "on-D"])
def test_the_reference_prover_agrees_byte_for_byte(each_isa, opts):
    """prover/reference.py in zk mode, masks and salts derived from the same
    keys by its own HMAC expansion: the same bytes as prove(), on Fibonacci
    and the range check, with the quotient beyond D (the reference's on
    4N points, prove()'s on D and a small second coset) and on D, on every
    ISA path (the masked LDE's two paths and small-coset folds, the top
    cosets, the constraint VM)."""
    for air, traces in (fibonacci_instance(1 << 5, 1, seed=1), range_check_instance(1 << 7, 4, 1, seed=2)):
        assert reference_prove(air, traces, opts, zk_key=KEY).to_bytes(air) == \
            prove(air, traces, opts, zk_key=KEY).proof.to_bytes(air)


def test_the_reference_prover_agrees_on_a_chain_and_two_domains():
    """The memory example's first proof (a public init, its final exported
    under a state key) and its successor (the masked init rebuilt from the
    state key), and a statement of two domains of different heights."""
    n, opts = 1 << 7, REF_ZK
    air = memory.MemoryAir(n)
    init = public_init(memory.state_table(np.zeros(n, dtype=np.int64)), opts)
    r = memory.run(np.zeros(n, dtype=np.int64), memory.random_ops(n, n, seed=1, cells=n // 2))
    res = prove_in(air, r.traces, opts, external={"init": (init, None)})
    assert reference_prove(air, r.traces, opts, external={"init": None}, zk_key=KEY,
                           state_keys={"final": state_key("final")}).to_bytes(air) == res.proof.to_bytes(air)
    fin = res.commitments["final"]
    r2 = memory.run(r.final_values, memory.random_ops(n, n - 3, seed=2, cells=n // 2))
    res2 = prove_in(air, r2.traces, opts, external={"init": (fin, fin.link())})
    assert reference_prove(air, r2.traces, opts, external={"init": fin.link()}, zk_key=KEY,
                           state_keys={"final": state_key("final"), "init": state_key("final")}
                           ).to_bytes(air) == res2.proof.to_bytes(air)
    st = md.memory_statement(128, 256)
    run = md.run([0] * 128, memory.random_ops(128, 250, seed=3), 256)
    ini = public_init(run.traces["cells.init"], opts)
    assert reference_prove(st, run.traces, opts, external={"cells.init": None}, zk_key=KEY,
                           state_keys={"cells.final": state_key("cells.final")}).to_bytes(st) == \
        prove_in(st, run.traces, opts, external={"cells.init": (ini, None)}).proof.to_bytes(st)


# ----------------------------------------------------------------- refusals --

def renamed(air, segment: str):
    """Test double: a copy of `air` with its one main segment renamed."""
    out = copy.copy(air)
    out.main_segments = (Segment(segment, air.main_segments[0].columns),)
    return out


def test_a_main_segment_may_not_take_the_provers_matrix_names():
    """Review L3: a main segment named like the proof's own matrices
    (`aux`, `quotient`) or its shared trees would share their rows,
    values and, in zk mode, salt label: Air.validate refuses it, so prove()
    does, in both modes.  The reserved names are every name the layout and
    the trees give besides the segments'."""
    air, traces = range_check_instance(1 << 7, 4, 1, seed=1)
    st = as_statement(air)
    own = {m.name for m in statement_layouts(st, zk=True)[0]} - {s.name for s in air.main_segments}
    assert own | {t.name for t in statement_trees(st) if t.name not in own | {"main"}} <= RESERVED_MATRIX_NAMES
    fib, fib_traces = fibonacci_instance(1 << 7, 1, seed=1)
    for name in sorted(RESERVED_MATRIX_NAMES):
        air = renamed(fib, name)
        with pytest.raises(ValueError, match=f"main segment '{name}' takes a name the proof gives"):
            air.validate()
        for opts in (ZK1, dataclasses.replace(ZK1, zk=False)):
            with pytest.raises(ValueError, match="takes a name the proof gives its own matrices"):
                prove(air, {name: fib_traces["main"]}, opts, zk_key=KEY if opts.zk else None)
    air = renamed(fib, "trace")                                  # any other name is fine
    prove(air, {"trace": fib_traces["main"]}, ZK1, zk_key=KEY)
    twice = copy.copy(fib)
    twice.__dict__.pop("columns", None)
    twice.main_segments = (Segment("trace", ("a0",)), Segment("trace", ("b0",)))
    with pytest.raises(ValueError, match="two main segments are named 'trace'"):
        twice.validate()

def test_masks_that_do_not_fit_the_trace_are_refused():
    """h = 2q + 20 must stay below about N/3 at degree 3 (docs/ZK.md 5.3)."""
    air, traces = range_check_instance(1 << 6, 4, 1)
    with pytest.raises(ParameterError, match=r"h = 36 .* allow h <= 21"):
        prove(air, traces, ZK1, zk_key=KEY)


def test_zk_mode_needs_its_keys_and_masked_chained_state():
    air, traces = range_check_instance(1 << 8, 8, 1)
    with pytest.raises(ValueError, match="batch key"):
        prove(air, traces, ZK1)
    with pytest.raises(ValueError, match="for zk mode"):
        prove(air, traces, dataclasses.replace(ZK1, zk=False), zk_key=KEY)
    n = 1 << 8
    mem = memory.MemoryAir(n)
    r = memory.run(np.zeros(n, dtype=np.int64), memory.random_ops(n, n, seed=1))
    init = public_init(r.traces["init"], ZK1)
    with pytest.raises(ValueError, match="needs its state key"):
        prove(mem, r.traces, ZK1, external={"init": (init, None)}, zk_key=KEY)
    unmasked = SegmentCommitment.commit(r.traces["init"], ZK1.log_blowup)
    with pytest.raises(ValueError, match="masked"):
        prove_in(mem, r.traces, ZK1, external={"init": (unmasked, unmasked.link())})
    # a chained state (with a link) must carry this proof's mask, not a public table's
    with pytest.raises(ValueError, match="h = 52 .*not h = 0"):
        prove_in(mem, r.traces, ZK1, external={"init": (init, init.link())})


def test_a_zk_proof_without_its_salts_or_mode_is_rejected():
    air, traces = range_check_instance(1 << 8, 8, 1, seed=4)
    proof = prove(air, traces, ZK1, zk_key=KEY).proof
    raw = proof.to_bytes(air)
    for strip in ("rows", "fri"):
        bare = dataclasses.replace(proof, row_salts={} if strip == "rows" else proof.row_salts,
                                   fri_salts=[] if strip == "fri" else proof.fri_salts)
        with pytest.raises(VerificationError, match="salted"):
            verify(air, bare, min_security=0)
    # read as a transparent proof, the bytes do not parse (salts where rows end)
    with pytest.raises(ProofFormatError):
        Proof.from_bytes(raw[:4] + VERSION.to_bytes(2, "little") + raw[6:], air)
    # a transparent proof's options with zk mode's layout: the verifier's layout refuses it
    with pytest.raises((VerificationError, ValueError)):
        verify(air, dataclasses.replace(proof, options=dataclasses.replace(ZK1, zk=False), row_salts={},
                                        fri_salts=[]), min_security=0)


# ------------------------------------------------- FRI plan and security --

@pytest.mark.parametrize("log_n,queries,grinding,d_f", [
    (10, 150, 10, 1344), (11, 109, 11, 2304), (12, 98, 12, 4352), (14, 92, 14, 16896), (15, 88, 15, 33280),
    (16, 86, 16, 66048)])
def test_fri_plan_and_security_follow_docs_table(log_n, queries, grinding, d_f):
    """docs/ZK.md 5.2's table (FRI folding 8, final degree at most 256):
    D_F = final * 8^folds the smallest such at least N + h, and the zk
    query term q log2(2N / D_F) + g gives 100 bits at every row, one query
    fewer less."""
    opts = ProofOptions(log_blowup=1, num_queries=queries, grinding_bits=grinding, fri_folding_factor=8,
                        fri_max_final_degree=256, zk=True)
    air, _ = fibonacci_instance(1 << log_n, 1)
    schedule = fri_schedule(as_statement(air), opts)
    assert fri_degree_bound(schedule) == d_f >= (1 << log_n) + mask_degree(air, opts)
    assert schedule.final_degree <= 256
    assert opts.conjectured_security(1 << log_n, 3 * d_f, d_f) == 100        # degree 3: D = 3 D_F
    fewer = dataclasses.replace(opts, num_queries=queries - 1)
    d_f = fri_degree_bound(fri_schedule(as_statement(air), fewer))
    assert fewer.conjectured_security(1 << log_n, 3 * d_f, d_f) < 100
    if log_n == 15:
        assert schedule == Schedule((3, 3, 3), 65)          # no power of two


# -------------------------------------------------------- masking budget --

def column_functionals(m, k: int) -> list[int]:
    """Base-field functionals a proof opening k rows reveals of each column
    of trace matrix `m` (docs/ZK.md 5.2): z, 4; for a column read on the
    next row w z, 4 more; each opened row, 1, and for a column read on the
    next row one more per row (Q(x) depends on f(w x)); the link point, 4
    (counted where the proof carries the values: the exporting proof)."""
    return [4 + k + ((4 + k) if c in m.next_columns else 0) + (4 if m.exported else 0)
            for c in range(m.width)]


def revealed_functionals(subject, proof: Proof, rows_opened: int | None = None) -> dict[str, int]:
    """Base-field functionals each committed polynomial of `proof` reveals,
    counted from its layout (docs/ZK.md 5.2): per trace matrix, its column
    that reveals most (column_functionals).  Per chunk mask coordinate: z (4) and each row.  For R~: its
    value at z (4 functionals per coordinate) and each row, and the FRI
    values (every opened layer value and the final coefficients) in
    extension values.  `rows_opened` replaces the proof's distinct row
    count (the bound: q)."""
    st = as_statement(subject)
    out = {}
    for mats in statement_layouts(st, zk=True):
        k = rows_opened or proof.rows[mats[0].name].shape[0]
        for m in mats:
            if m.is_trace:
                out[m.name] = max(column_functionals(m, k))
            else:
                out[m.name + " chunk masks"] = 4 + k
                fri_values = sum(leaves.shape[0] * leaves.shape[1] for leaves in proof.fri_leaves) \
                    + proof.fri_final.shape[0]
                out[m.name + " R~"] = 1 + k + fri_values
    return out


def randomness(result, opts, subject) -> dict[str, int]:
    """What masks each committed polynomial, read from the prover's own
    commitments: r's degree bound for a trace column, h_q per chunk mask
    coordinate, D_F (at its height) for R~."""
    st = as_statement(subject)
    d_f = fri_degree_bound(fri_schedule(st, opts))
    out = {}
    for d, mats in enumerate(statement_layouts(st, zk=True)):
        for m in mats:
            if m.is_trace:
                out[m.name] = result.commitments[m.name].mask.h
            else:
                out[m.name + " chunk masks"] = opts.chunk_mask_degree
                out[m.name + " R~"] = d_f >> (max(st.log_lengths) - st.log_lengths[d])
    return out


def test_masking_budget_counted_from_proofs():
    """docs/ZK.md 5.8's table, computed: a memory chain at 2^11 rows with
    88 queries (h_q = 92; h = 4q + 20 = 372: this example's state is read
    on the next row, its addresses).  Every polynomial's revealed
    functionals, at the proof's own count and at the bound (q rows), stay
    within its randomness; the chained state, opened by two proofs, is
    counted over both (its link once), and at the bound it is exactly h:
    one coefficient fewer and it would be short (and 2q + 20, the order
    book's h, would be far short here)."""
    n = 1 << 11
    opts = ProofOptions(log_blowup=1, num_queries=88, grinding_bits=0, fri_folding_factor=8,
                        fri_max_final_degree=64, zk=True)
    air = memory.MemoryAir(n)
    values = np.zeros(n, dtype=np.int64)
    init = public_init(memory.state_table(values), opts)
    r1 = memory.run(values, memory.random_ops(n, n - 1, seed=1, cells=n // 2))
    first = prove_in(air, r1.traces, opts, key=key(10), external={"init": (init, None)})
    fin = first.commitments["final"]
    r2 = memory.run(r1.final_values, memory.random_ops(n, n - 2, seed=2, cells=n // 2))
    second = prove_in(air, r2.traces, opts, key=key(11), external={"init": (fin, fin.link())})
    q = opts.num_queries
    table = {}
    for bound in (None, q):
        got1 = revealed_functionals(air, first.proof, bound)
        got2 = revealed_functionals(air, second.proof, bound)
        have = randomness(second, opts, air)
        # the state: batch 1's `final` (z, its link, rows) and batch 2's `init` (z, rows)
        state = got1.pop("final") + got2.pop("init")
        got1.pop("init")
        assert state <= first.commitments["final"].mask.h == have.pop("init") == mask_degree(air, opts)
        for name, count in got2.items():
            assert count <= have[name], (name, count, have[name])
        table[bound] = dict(got2, state=state)
    assert table[q]["ops"] == 2 * q + 8
    # a column no constraint reads on the next row is opened at z and its rows only
    ops = next(m for m in statement_layouts(as_statement(air), zk=True)[0] if m.name == "ops")
    assert sorted(set(column_functionals(ops, q))) == [q + 4, 2 * q + 8] and len(ops.next_columns) < ops.width
    assert table[q]["state"] == 4 * q + 20 == mask_degree(air, opts)            # exact
    assert table[q]["quotient chunk masks"] == q + 4 == opts.chunk_mask_degree   # exact
    assert table[q]["state"] > 2 * q + 20


# ------------------------------------------------------- hiding: statistics --

#: the hiding fixture: two traces of one public statement (2^8 rows, 8-bit
#: values, 2 lanes) with different private values
HIDING_N, HIDING_PROOFS = 1 << 8, 100


@pytest.fixture(scope="module")
def candidates():
    return [range_check_instance(HIDING_N, 8, 2, seed=s) for s in (21, 22)]


def prove_many(candidates, opts, count=HIDING_PROOFS):
    """Each candidate proven `count` times under fresh keys (the same keys
    for both: the statistic sees the traces, not the keys)."""
    return [[prove(air, traces, opts, zk_key=key(i) if opts.zk else None) for i in range(count)]
            for air, traces in candidates]


def a1_failures(results) -> list[str]:
    """(a1): per kind, the two candidates' samples by KS and chi-square,
    Bonferroni over the kinds at family-wise alpha = 0.001."""
    return distinguished_kinds(*([revealed_kinds(res.proof) for res in runs] for runs in results))


def test_a1_distributions_agree_in_zk_mode_and_not_in_transparent(candidates):
    assert a1_failures(prove_many(candidates, ZK1)) == []
    transparent = dataclasses.replace(ZK1, zk=False)
    # its proofs of one trace are identical: two point masses
    assert len(a1_failures(prove_many(candidates, transparent, 20))) >= 5


def a2_matches(results, candidates, lb) -> np.ndarray:
    """(a2), black box: how many revealed rows of the main matrix equal a
    row of each candidate's unmasked LDE (anywhere on D: the positions are
    the verifier's to compute; this only counts more).  Returns (true
    candidate, other) -> matches, for each candidate proven."""
    ldes = [{tuple(row) for row in F.decode(ntt.lde(traces["main"], lb, COSET_SHIFT)).tolist()}
            for _, traces in candidates]
    out = np.zeros((2, 2), dtype=int)
    for c, runs in enumerate(results):
        for res in runs:
            for row in res.proof.rows["main"].tolist():
                for other in range(2):
                    out[c, other] += tuple(row) in ldes[other]
    return out


def test_a2_candidate_matching_finds_nothing_unless_unmasked(candidates, monkeypatch):
    """Every revealed row of an unmasked zk proof (r = 0: the test hook
    sets h = 0) is a row of the true candidate's LDE; masked, none is of
    either (chance: 2N/p per row)."""
    masked = a2_matches(prove_many(candidates, ZK1, 20), candidates, ZK1.log_blowup)
    assert masked.sum() == 0
    monkeypatch.setattr(ProofOptions, "mask_degree", lambda self, state_read_at_next=False: 0)
    unmasked = prove_many(candidates, ZK1, 20)
    verify(candidates[0][0], unmasked[0][0].proof, min_security=0)     # still a valid proof
    counts = a2_matches(unmasked, candidates, ZK1.log_blowup)
    rows = sum(res.proof.rows["main"].shape[0] for res in unmasked[0])
    assert counts[0, 0] == rows and counts[0, 1] == 0 and counts[1, 0] == 0


def chunk_mask_terms(result, n: int) -> np.ndarray:
    """(a3), white box: at every LDE row the proof opened, each chunk's
    revealed value minus what the unmasked chunk Q_i gives there (from the
    prover's committed coefficients: Q = sum_i X^(iN) Q_i', its chunks of
    N coefficients are the unmasked Q_i), as v / p."""
    com = result.commitments["quotient"]
    coeffs = F.decode(com.trace).astype(np.int64)
    m, width = coeffs.shape
    k = (width - 4) // 4
    q = np.zeros((m * 2, 4), dtype=np.int64)
    for i in range(k):
        q[i * n: i * n + m] = (q[i * n: i * n + m] + coeffs[:, 4 * i: 4 * i + 4]) % F.P
    unmasked = np.zeros((m, 4 * k), dtype=np.uint32)
    for i in range(k):
        unmasked[:n, 4 * i: 4 * i + 4] = q[i * n: (i + 1) * n]
    plain = F.decode(ntt.coset_ntt(F.encode(unmasked), COSET_SHIFT))
    masked = F.decode(com.lde)
    opened = {tuple(row) for row in result.proof.rows["quotient"].tolist()}
    idx = [i for i, row in enumerate(masked.tolist()) if tuple(row) in opened]
    diff = (masked[idx, :4 * k].astype(np.int64) - plain[idx].astype(np.int64)) % F.P
    return diff.ravel() / F.P


def r_values(result) -> np.ndarray:
    """R~'s revealed values (the quotient matrix's last four columns at the
    opened rows and at z), as v / p."""
    p = result.proof
    return np.concatenate([p.rows["quotient"][:, -4:].ravel(), p.ood_z["quotient"][-4:].ravel()]) / F.P


def test_a3_chunk_and_r_masks_are_present(candidates, monkeypatch):
    """The revealed chunks differ from the unmasked ones by uniform amounts,
    and R~'s values are uniform; with the chunk masks off (h_q = 0) the
    difference is zero, and with R~ = 0 its values are."""
    air, traces = candidates[0]
    runs = [prove(air, traces, ZK1, zk_key=key(i)) for i in range(HIDING_PROOFS)]
    alpha = 0.001 / 2
    assert ks_uniform(np.concatenate([chunk_mask_terms(r, HIDING_N) for r in runs])) > alpha
    assert ks_uniform(np.concatenate([r_values(r) for r in runs])) > alpha

    monkeypatch.setattr(ProofOptions, "chunk_mask_degree", property(lambda self: 0))
    bare = [prove(air, traces, ZK1, zk_key=key(i)) for i in range(10)]
    verify(air, bare[0].proof, min_security=0)
    assert not np.concatenate([chunk_mask_terms(r, HIDING_N) for r in bare]).any()
    monkeypatch.undo()

    real = masking.masked_quotient

    def no_r(*args, **kw):     # R~ = 0: the DEEP/FRI mask switched off
        out = real(*args, **kw)
        out[:, -4:] = 0
        return out

    monkeypatch.setattr("zksidecar.prover.prove.masked_quotient", no_r)
    no_mask = [prove(air, traces, ZK1, zk_key=key(i)) for i in range(10)]
    verify(air, no_mask[0].proof, min_security=0)
    assert not np.concatenate([r_values(r) for r in no_mask]).any()


def test_b_shape_depends_on_the_statement_and_query_positions_only(candidates, monkeypatch):
    """Two candidates' proofs: equal lengths wherever their variable counts
    (layout_counts) agree, and those alike in distribution; with the query positions
    fixed by a test hook, equal to the byte.  The comparison sees a shape
    that depends on more: a third lane changes the length."""
    results = prove_many(candidates, ZK1, 40)
    by_counts = {}
    for c, runs in enumerate(results):
        for res in runs:
            length = len(res.proof.to_bytes(candidates[c][0]))
            by_counts.setdefault(layout_counts(res.proof), set()).add(length)
    assert all(len(lengths) == 1 for lengths in by_counts.values())
    rows = [np.array([layout_counts(r.proof)[0][0] for r in runs], dtype=float) for runs in results]
    assert ks_two_sample(rows[0] / ZK1.num_queries, rows[1] / ZK1.num_queries) > 0.001

    fixed = list(range(0, HIDING_N << ZK1.log_blowup, (HIDING_N << ZK1.log_blowup) // ZK1.num_queries))
    monkeypatch.setattr(Transcript, "challenge_indices", lambda self, count, size: fixed[:count])
    lengths = {len(prove(air, traces, ZK1, zk_key=key(i)).proof.to_bytes(air))
               for i, (air, traces) in enumerate(candidates)}
    assert len(lengths) == 1
    wider, traces3 = range_check_instance(HIDING_N, 8, 3, seed=21)
    assert len(prove(wider, traces3, ZK1, zk_key=key(0)).proof.to_bytes(wider)) not in lengths


def test_a_header_folding_past_the_trace_is_a_format_error():
    """Options whose FRI plan would fold the vector below one point (a
    folding factor of 16 with a final degree of 1 on 32 rows) end in a
    ProofFormatError from the decoder, not a bare ValueError."""
    import struct

    from zksidecar.prover.examples.fibonacci import fibonacci_instance
    from zksidecar.prover.proof import ZK_VERSION, Proof, ProofFormatError

    air, _ = fibonacci_instance(1 << 5, 1, seed=1)
    head = b"ZKSP" + struct.pack("<H", ZK_VERSION) + bytes([5]) + struct.pack("<BHBBI", 1, 1, 0, 16, 1)
    for tail in (bytes(320), bytes(4000)):
        with pytest.raises(ProofFormatError):
            Proof.from_bytes(head + tail, air)
