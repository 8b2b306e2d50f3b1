"""Statements of several domains (prover/statement.py; docs/STATE_DOMAIN.md
step 3), on the memory split into a `cells` and a `steps` domain
(examples/memory_domains.py): completeness with either domain tall and with
equal heights, byte identity with the reference prover, lies in either
domain, false cross-domain sums, mismatched links, wrong heights, truncated
bytes; and one-domain proofs keep the bytes they had before statements
existed."""
import hashlib
import importlib
import tracemalloc

import numpy as np
import pytest

from zksidecar.engine.records import OP_DTYPE, TRADE_DTYPE
from zksidecar.prover import field as F
from zksidecar.prover import params
from zksidecar.prover.air import Air
from zksidecar.prover.domain import Link, absorb_header, link_point
from zksidecar.prover.examples import fibonacci, memory
from zksidecar.prover.examples import memory_domains as md
from zksidecar.prover.ext_scalar import Ext
from zksidecar.prover.orderbook.air import OrderBookAir
from zksidecar.prover.proof import Proof, ProofFormatError
from zksidecar.prover.prove import ConstraintError, SegmentCommitment, prove
from zksidecar.prover.reference import reference_prove
from zksidecar.prover.statement import Statement
from zksidecar.prover.transcript import Transcript
from zksidecar.prover.verify import VerificationError, ood_quotient, verify

OPTS = params.TESTING
LB = OPTS.log_blowup


def _prove(cells: int, steps: int, seed: int = 1, statement=None, init_values=None, external=None,
           ops=None):
    st = statement or md.memory_statement(cells, steps)
    init_values = [0] * cells if init_values is None else init_values
    run = md.run(init_values, ops if ops is not None else memory.random_ops(cells, steps - 3, seed=seed),
                 steps)
    if external is None:
        external = {"cells.init": (SegmentCommitment.commit(run.traces["cells.init"], LB), None)}
    return st, run, prove(st, run.traces, OPTS, external=external), external


def _verify(st, proof, external, **kw):
    return verify(st, Proof.from_bytes(proof.to_bytes(st), st),
                  external={name: (com.root, link) for name, (com, link) in external.items()},
                  min_security=0, **kw)


# ------------------------------------------------------- one domain unchanged --

def test_one_domain_proofs_keep_their_bytes():
    """The single-AIR API's bytes are pinned, and the AIR's one-domain
    statement gives the same.  The hashes changed once, with one tree per
    round (STATE_DOMAIN.md step 4): every committed matrix's leaves went to
    bit-reversed order and a round's matrices to one tree, so the roots,
    the paths and the order of the opened rows changed; nothing else did
    (format version 4 had not shipped); and again with format version 6,
    whose header says 6 and whose values at w*z (and DEEP terms there) are
    only the columns read on the next row (the memory example's `init`,
    `final` and `ops` open one of their 2, 2 and 7 columns there, its
    `aux` two of its three extension columns; Fibonacci's one matrix all
    six, so its bytes differ by the version alone); and again with format
    version 8, whose Merkle nodes are one SHA-256 compression (docs/MERKLE.md,
    "Nodes"), so every root, path and transcript challenge moved.  They were
    taken from proofs that verify and equal the reference prover's
    (test_reference_prover.py)."""
    n = 64
    run = memory.run([0] * n, memory.random_ops(n, 40, seed=1))
    air = memory.MemoryAir(n)
    init = SegmentCommitment.commit(run.traces["init"], 1)
    first = prove(air, run.traces, OPTS, external={"init": (init, None)})
    raw = first.proof.to_bytes(air)
    assert hashlib.sha256(raw).hexdigest() == \
        "dec9252a8d85a728b172218add1afec12d4a1c78d0d771f0005f345d0635d0ec"
    run2 = memory.run(run.final_values, memory.random_ops(n, 50, seed=2))
    fin = first.commitments["final"]
    linked = prove(air, run2.traces, OPTS, external={"init": (fin, fin.link())})
    assert hashlib.sha256(linked.proof.to_bytes(air)).hexdigest() == \
        "82c680fb50a497cae4053cd74379eb26116d7ed90bd8497926fbeb020a7c2669"
    fib, traces = fibonacci.fibonacci_instance(64, pairs=3, seed=5)
    assert hashlib.sha256(prove(fib, traces, OPTS).proof.to_bytes(fib)).hexdigest() == \
        "3a702edbb84f04be3fd40370e9554071da52f72a92815339b76e2d96f81be38f"
    st = Statement.of(air)
    assert prove(st, run.traces, OPTS, external={"init": (init, None)}).proof.to_bytes(st) == raw
    assert Proof.from_bytes(raw, st).to_bytes(air) == raw


# ---------------------------------------------------------------- completeness --

@pytest.mark.parametrize("cells,steps", [(64, 16), (16, 64), (32, 32), (16, 16)])
def test_completeness_either_domain_tall_and_equal_heights(cells, steps):
    st, run, res, external = _prove(cells, steps)
    done = _verify(st, res.proof, external)
    assert set(done.roots) == {"cells.init", "cells.final", "cells.stamps", "steps.ops"}
    assert set(done.links) == {"cells.final"}
    assert res.proof.log_lengths == (cells.bit_length() - 1, steps.bit_length() - 1)
    # the shorter domain opens no more rows than it has
    for name, n in (("cells.final", cells), ("steps.ops", steps)):
        assert res.proof.rows[name].shape[0] <= min(OPTS.num_queries, n << LB)


def test_a_chain_continues_through_the_cells_domain_with_another_program_length():
    st, run, first, external = _prove(32, 16)
    done = _verify(st, first.proof, external)
    fin = first.commitments["cells.final"]
    assert done.links["cells.final"] == fin.link()
    st2 = md.memory_statement(32, 64)        # the next program is longer: cells keep K
    run2 = md.run(run.final_values, memory.random_ops(32, 60, seed=9), 64)
    second = prove(st2, run2.traces, OPTS, external={"cells.init": (fin, fin.link())})
    verify(st2, second.proof, external={"cells.init": (done.roots["cells.final"], done.links["cells.final"])},
           min_security=0)


def test_real_parameters_two_heights_apart():
    """cells 2^10 beside steps 16 at the 100-bit parameters: the FRI's
    remainder layer, the injection into the final polynomial, the
    statement's algebraic degree in the security figure."""
    st = md.memory_statement(1 << 10, 16)
    cells, steps = st.domains[0].air, st.domains[1].air
    # the union at z and the LogUp fractions, plus steps' DEEP batching and
    # its injection gamma, each of degree M_1 = 2^11
    degree = max(3 * 1024 + 3 * 16, 3 * 2 * 1024 + 3 * 2 * 16 + 3 * 2 * 16) + 2 * 2048
    assert st.algebraic_degree(1) == degree == 10_432
    opts = params.ProofOptions.for_security(100, 1 << 10, lambda _n: degree, grinding_bits=10)
    run = md.run([0] * 1024, memory.random_ops(1024, 13, seed=4), 16)
    init = SegmentCommitment.commit(run.traces["cells.init"], opts.log_blowup)
    res = prove(st, run.traces, opts, external={"cells.init": (init, None)})
    assert [leaves.shape[1] for leaves in res.proof.fri_leaves] == [8, 8]   # 2^11 -> 2^8 -> 2^5
    done = verify(st, Proof.from_bytes(res.proof.to_bytes(st), st),
                  external={"cells.init": (init.root, None)})
    assert done.security_bits == opts.conjectured_security(1 << 10, degree) >= 100
    assert cells.trace_length == 1024 and steps.trace_length == 16


# ------------------------------------------------------------ the reference --

@pytest.mark.parametrize("cells,steps", [(32, 16), (16, 64), (32, 32)])
def test_byte_identical_with_the_reference(cells, steps):
    st, run, res, _ = _prove(cells, steps, seed=cells + steps)
    ref = reference_prove(st, run.traces, OPTS, external={"cells.init": None})
    assert ref.to_bytes(st) == res.proof.to_bytes(st)


def test_byte_identical_with_the_reference_on_a_linked_pre_state():
    st, run, first, _ = _prove(16, 32)
    fin = first.commitments["cells.final"]
    run2 = md.run(run.final_values, memory.random_ops(16, 13, seed=3), 16)
    st2 = md.memory_statement(16, 16)
    fast = prove(st2, run2.traces, OPTS, external={"cells.init": (fin, fin.link())})
    ref = reference_prove(st2, run2.traces, OPTS, external={"cells.init": fin.link()})
    assert ref.to_bytes(st2) == fast.proof.to_bytes(st2)


# ------------------------------------------------------------------- lies --

def test_a_final_value_changed_in_cells_is_rejected():
    """The cells domain's final table lies (its sums rethreaded: the prover
    claims what its own rows sum to, so the cells relation holds): the
    claims no longer add up to the target."""
    st = md.memory_statement(32, 16)
    run = md.run([0] * 32, memory.random_ops(32, 13, seed=5), 16)
    final = F.decode(run.traces["cells.final"]).astype(np.int64)
    final[3, 1] = (final[3, 1] + 1) % F.P
    run.traces["cells.final"] = F.encode(final)
    init = SegmentCommitment.commit(run.traces["cells.init"], LB)
    with pytest.raises(ConstraintError, match="claimed sums do not add up"):
        prove(st, run.traces, OPTS, external={"cells.init": (init, None)}, debug=True)
    res = prove(st, run.traces, OPTS, external={"cells.init": (init, None)})
    with pytest.raises(VerificationError, match="claimed sums do not add up to the statement's target"):
        _verify(st, res.proof, {"cells.init": (init, None)})


def test_a_read_changed_in_steps_is_rejected():
    st = md.memory_statement(16, 32)
    run = md.run([0] * 16, memory.random_ops(16, 29, seed=6), 32)
    ops = F.decode(run.traces["steps.ops"]).astype(np.int64)
    ops[7, md.STEP_COLUMNS.index("read_val")] += 1
    run.traces["steps.ops"] = F.encode(ops % F.P)
    init = SegmentCommitment.commit(run.traces["cells.init"], LB)
    res = prove(st, run.traces, OPTS, external={"cells.init": (init, None)})
    with pytest.raises(VerificationError, match="claimed sums do not add up"):
        _verify(st, res.proof, {"cells.init": (init, None)})


def test_an_opened_row_of_the_short_domain_changed_is_rejected():
    st, run, res, external = _prove(64, 16)
    res.proof.rows["steps.ops"][0, 2] = (int(res.proof.rows["steps.ops"][0, 2]) + 1) % F.P
    with pytest.raises(VerificationError, match=r"main round tree \(cells.stamps, steps.ops\): opened rows do not match"):
        _verify(st, res.proof, external)


# ------------------------------------------------------- cross-domain sums --

def test_claims_not_adding_up_to_the_target_are_rejected():
    st, run, res, external = _prove(32, 16)
    t = res.proof.claimed_sums["steps"]
    t[0] = (int(t[0]) + 1) % F.P
    with pytest.raises(VerificationError, match="claimed sums do not add up to the statement's target"):
        _verify(st, res.proof, external)


class ShiftedCells(md.CellsAir):
    """Test double: a cells domain claiming its true sum plus DELTA, its
    running sum built to close on that claim."""

    def claim_shared_sum(self, main, challenges, aux):
        claim = super().claim_shared_sum(main, challenges, aux) + DELTA
        aux[...] = self.with_claimed_sum(claim).build_aux(main, challenges)
        return claim


class ShiftedSteps(md.StepsAir):
    """Test double: a steps domain claiming its true sum minus DELTA."""

    def claim_shared_sum(self, main, challenges, aux):
        claim = super().claim_shared_sum(main, challenges, aux) - DELTA
        aux[...] = self.with_claimed_sum(claim).build_aux(main, challenges)
        return claim


DELTA = Ext(5, 0, 7, 0)


def test_claims_shifted_between_domains_fail_each_domains_relation():
    """t_cells + d and t_steps - d still add up to the target, but neither
    domain's running sum closes on its claim: the prover's debug check
    names the wrap, and the verifier rejects the proof."""
    st = Statement("memory", [("cells", ShiftedCells(32)), ("steps", ShiftedSteps(16))])
    run = md.run([0] * 32, memory.random_ops(32, 13, seed=7), 16)
    init = SegmentCommitment.commit(run.traces["cells.init"], LB)
    external = {"cells.init": (init, None)}
    with pytest.raises(ConstraintError, match="mem: sum' - sum = term - target/N\" fails at row 31 \\(between rows 31 and 0, "
                                              "the wrap\\)"):
        prove(st, run.traces, OPTS, external=external, debug=True)
    res = prove(st, run.traces, OPTS, external=external)
    claims = res.proof.claimed_sums
    total = Ext(*(int(c) for c in claims["cells"])) + Ext(*(int(c) for c in claims["steps"]))
    assert total == Ext(0)
    with pytest.raises(VerificationError, match="domain 'cells': constraints do not hold"):
        _verify(st, res.proof, external)


# ------------------------------------------------------------------- links --

def test_an_external_root_of_another_table_is_rejected():
    st, run, res, external = _prove(32, 16)
    other = SegmentCommitment.commit(md.run([1] * 32, [], 16).traces["cells.init"], LB)
    # the root is absorbed, so every challenge after it moves: the identity at z fails first
    with pytest.raises(VerificationError, match="domain 'cells': constraints do not hold"):
        verify(st, res.proof, external={"cells.init": (other.root, None)}, min_security=0)


def test_changed_link_values_and_a_link_point_of_another_root_are_rejected():
    st, run, first, _ = _prove(16, 16)
    fin = first.commitments["cells.final"]
    run2 = md.run(run.final_values, memory.random_ops(16, 10, seed=8), 16)
    second = prove(st, run2.traces, OPTS, external={"cells.init": (fin, fin.link())})
    link = fin.link()
    verify(st, second.proof, external={"cells.init": (fin.root, link)}, min_security=0)
    bad = Link(link.z, [link.values[0] + 1] + link.values[1:])
    with pytest.raises(VerificationError):
        verify(st, second.proof, external={"cells.init": (fin.root, bad)}, min_security=0)
    elsewhere = Link(link_point(b"\x01" * 32), link.values)
    with pytest.raises(VerificationError, match="not at the point its root selects"):
        verify(st, second.proof, external={"cells.init": (fin.root, elsewhere)}, min_security=0)
    # the exported link values of the proof itself
    first.proof.link_values["cells.final"][0, 0] ^= 1
    with pytest.raises(VerificationError):
        _verify(st, first.proof, {"cells.init": (SegmentCommitment.commit(run.traces["cells.init"], LB),
                                                  None)})


# ----------------------------------------------------------------- heights --

def test_wrong_height_claims_are_refused():
    st, run, res, external = _prove(32, 16)
    raw = bytearray(res.proof.to_bytes(st))
    assert raw[6:8] == bytes([5, 4])            # after magic and version: log2 N per domain
    bad = bytearray(raw)
    bad[7] = 5
    with pytest.raises(ProofFormatError, match="domain 'steps': the proof claims 2\\^5 rows, the "
                                                "statement has 16"):
        Proof.from_bytes(bytes(bad), st)
    # a verifier expecting another cells height
    with pytest.raises(ProofFormatError, match="domain 'cells': the proof claims 2\\^5 rows"):
        Proof.from_bytes(bytes(raw), md.memory_statement(64, 16))
    with pytest.raises(VerificationError, match="proof is for domain heights"):
        verify(md.memory_statement(64, 16), res.proof, external={"cells.init": (b"\0" * 32, None)},
               min_security=0)
    # over the cap: refused from the header, before anything is allocated
    bad[6] = 40
    # the refusal caught by hand inside the window: pytest.raises would
    # compile its pattern there, and how much that allocates depends on
    # which patterns earlier tests left in re's cache
    tracemalloc.start()
    try:
        try:
            Proof.from_bytes(bytes(bad), st)
            refusal = None
        except ProofFormatError as exc:
            refusal = str(exc)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert refusal is not None and "domain 'cells' claims 2^40 rows, over the 2^24" in refusal, refusal
    assert peak < 4 * len(raw)
    with pytest.raises(ValueError, match="over the 2\\^24"):
        Statement("memory", [("cells", md.CellsAir(1 << 25)), ("steps", md.StepsAir(16))])


def test_every_truncated_prefix_is_a_clear_error():
    st, run, res, external = _prove(16, 16)
    raw = res.proof.to_bytes(st)
    for cut in range(len(raw)):
        with pytest.raises(ProofFormatError):
            Proof.from_bytes(raw[:cut], st)
    with pytest.raises(ProofFormatError, match="unexpected bytes"):
        Proof.from_bytes(raw + b"\0", st)


# ------------------------------------------------- lies only FRI can catch --

class _Forced:
    """Test double: a domain claiming minus the claim of the domain proven
    before it (the first claim is honest), so the claims add up to the
    target whatever the rows say; what it claimed, in CLAIMS."""

    def claim_shared_sum(self, main, challenges, aux):
        t = super().claim_shared_sum(main, challenges, aux)
        if CLAIMS:
            t = Ext(0) - next(iter(CLAIMS.values()))
        CLAIMS[self.domain_name] = t
        return t


class ForcedCells(_Forced, md.CellsAir):
    domain_name = "cells"


class ForcedSteps(_Forced, md.StepsAir):
    domain_name = "steps"


CLAIMS: dict = {}


class _RecordingTranscript(Transcript):
    """Test double: the prover's transcript, keeping every extension
    challenge it draws (the shared challenges, alpha, z, in that order)."""

    draws: list = []

    def challenge_ext(self, count=1):
        out = super().challenge_ext(count)
        _RecordingTranscript.draws.append(out.copy())
        return out


class _Claimed:
    """The claimed values at z and w*z as verify.ood_quotient reads a proof."""

    def __init__(self, ood_z, ood_next):
        self.ood_z = {k: F.decode(v) for k, v in ood_z.items()}
        self.ood_next = {k: F.decode(v) for k, v in ood_next.items()}


@pytest.mark.parametrize("order,cells,steps", [(("cells", "steps"), 64, 16),   # the short one lies
                                               (("steps", "cells"), 64, 16),   # the tall one lies
                                               (("cells", "steps"), 32, 32)])
def test_a_lie_with_the_quotient_forged_at_z_is_rejected_by_fri(monkeypatch, order, cells, steps):
    """The second domain's rows are false (a read value in steps, a final
    value in cells) and its claim is forced so that the claims add up to the
    target: its relation fails at the wrap, which the check at z names.  A
    prover that also forges that domain's quotient value at z (the first
    chunk set so that the identity at z holds) passes the sum check and the
    check at z; its DEEP function is then far from low degree, and FRI
    rejects it, joined at its height or as layer 0."""
    prove_module = importlib.import_module("zksidecar.prover.prove")
    liar = order[1]
    airs = {"cells": ForcedCells(cells), "steps": ForcedSteps(steps)}
    st = Statement("memory", [(name, airs[name]) for name in order])
    run = md.run([0] * cells, memory.random_ops(cells, steps - 3, seed=3), steps)
    if liar == "steps":
        ops = F.decode(run.traces["steps.ops"]).astype(np.int64)
        ops[5, md.STEP_COLUMNS.index("read_val")] += 1
        run.traces["steps.ops"] = F.encode(ops % F.P)
    else:
        final = F.decode(run.traces["cells.final"]).astype(np.int64)
        final[3, 1] += 1
        run.traces["cells.final"] = F.encode(final % F.P)
    init = SegmentCommitment.commit(run.traces["cells.init"], LB)
    honest_absorb = prove_module.absorb_ood

    def forged_absorb(tr, mats, ood_z, ood_next):
        """The liar's quotient at z set to what its claimed columns give."""
        if mats[0].name.startswith(liar + "."):
            draws = _RecordingTranscript.draws
            challenges, alpha, z = draws[0], Ext.from_mont(draws[1][0]), Ext.from_mont(draws[2][0])
            d = order.index(liar)
            air = st.domains[d].air.with_claimed_sum(CLAIMS[liar])
            total = ood_quotient(air, mats, _Claimed(ood_z, ood_next), st.challenges_of(d, challenges),
                                 alpha, z)
            qname = next(m.name for m in mats if not m.is_trace)
            q = F.decode(ood_z[qname]).astype(np.int64)
            zn = z ** air.trace_length
            rest, zin = Ext(0), zn                   # sum_(i >= 1) z^(iN) Q_i(z)
            for i in range(1, q.shape[0] // 4):
                rest = rest + sum((Ext(*(int(c) for c in q[4 * i + k])) * Ext(0, 1, 0, 0) ** k
                                   for k in range(4)), Ext(0)) * zin
                zin = zin * zn
            q[0], q[1:4] = (total - rest).c, 0
            ood_z[qname] = F.encode(q.astype(np.uint32))
        honest_absorb(tr, mats, ood_z, ood_next)

    def proof_of(forge):
        CLAIMS.clear()
        _RecordingTranscript.draws = []
        with monkeypatch.context() as m:
            m.setattr(prove_module, "Transcript", _RecordingTranscript)
            if forge:
                m.setattr(prove_module, "absorb_ood", forged_absorb)
            return prove(st, run.traces, OPTS, external={"cells.init": (init, None)}).proof

    for forge, failure in ((False, f"domain '{liar}': constraints do not hold"), (True, "FRI: ")):
        proof = proof_of(forge)
        assert sum((Ext(*(int(c) for c in t)) for t in proof.claimed_sums.values()), Ext(0)) == Ext(0)
        with pytest.raises(VerificationError, match=failure):
            _verify(st, proof, {"cells.init": (init, None)})


# ------------------------------------------------------------- public data --

class _GivenPublic:
    """Test double: a domain with the public bytes it is given."""

    def __init__(self, trace_length, public=b""):
        super().__init__(trace_length)
        self._public_bytes = public

    def public_bytes(self):
        return self._public_bytes


class PublicCells(_GivenPublic, md.CellsAir):
    pass


class PublicSteps(_GivenPublic, md.StepsAir):
    pass


def _header_challenge(st) -> bytes:
    tr = Transcript(b"zksidecar-stark")
    absorb_header(tr, st, OPTS, {"cells.init": None})
    return tr.challenge_ext(1).tobytes()


def _public_statement(cells_public, steps_public, **kw):
    return Statement("memory", [("cells", PublicCells(32, cells_public)),
                                ("steps", PublicSteps(16, steps_public))], **kw)


def test_each_domains_public_bytes_are_framed_apart():
    """Arbitrary bytes (order-book records) cannot move from one domain's
    public data to the next's and absorb the same."""
    assert _header_challenge(_public_statement(b"x;steps:y", b"z")) != \
        _header_challenge(_public_statement(b"x", b"y;steps:z"))
    assert _header_challenge(_public_statement(b"ab", b"")) != \
        _header_challenge(_public_statement(b"a", b"b"))


def test_the_statements_public_is_bound_beside_the_domains_never_instead():
    both = _header_challenge(_public_statement(b"c", b"s", public=b"tables"))
    assert both != _header_challenge(_public_statement(b"c", b"other", public=b"tables"))
    assert both != _header_challenge(_public_statement(b"c", b"s", public=b"tables2"))
    assert both != _header_challenge(_public_statement(b"c", b"s"))
    # a one-domain statement given `public` binds it after its AIR's bytes;
    # without one its header is the single-AIR proof's (pinned above)
    air = memory.MemoryAir(16)
    assert _header_challenge(Statement("m", [("m", air)], public=b"t")) != \
        _header_challenge(Statement.of(air))


def test_a_target_without_public_is_refused():
    with pytest.raises(ValueError, match="has a target but no `public`"):
        Statement("memory", [("cells", md.CellsAir(32)), ("steps", md.StepsAir(16))],
                  target=lambda challenges: Ext(0))
    Statement("memory", [("cells", md.CellsAir(32)), ("steps", md.StepsAir(16))],
              target=lambda challenges: Ext(0), public=b"")


def test_a_proof_for_other_public_tables_is_rejected():
    """The target's public tables are in the transcript: a proof made for
    one set does not verify for another."""
    def statement(tables):
        return Statement("memory", [("cells", md.CellsAir(32)), ("steps", md.StepsAir(16))],
                         target=lambda challenges: Ext(0), public=tables)
    st, run, res, external = _prove(32, 16, statement=statement(b"tables A"))
    _verify(st, res.proof, external)
    with pytest.raises(VerificationError):
        _verify(statement(b"tables B"), res.proof, external)


# ------------------------------------------------------------ declarations --

class UnlistedCells(md.CellsAir):
    """Test double: a shared argument that is not among the AIR's lookup arguments."""

    def __init__(self, trace_length):
        super().__init__(trace_length)
        self.lookup_arguments = ()


class UnclaimedCells(md.CellsAir):
    """Test double: a shared argument whose target is 0, not the claimed sum."""

    def __init__(self, trace_length):
        super().__init__(trace_length)
        self.memory.target = None


class OtherChallengeSteps(md.StepsAir):
    """Test double: the shared argument draws alpha at another challenge."""

    num_challenges = 4

    def __init__(self, trace_length):
        super().__init__(trace_length)
        self.memory.alpha = 3


class BadPeriodSteps(md.StepsAir):
    """Test double: a periodic column of period 3, which Air.validate refuses."""

    periodic_columns = {"bad": [1, 2, 3]}


def test_a_misdeclared_statement_is_refused_where_it_is_made():
    steps = md.StepsAir(16)
    with pytest.raises(ValueError, match="domain 'cells': UnlistedCells's shared argument must be one of"):
        Statement("memory", [("cells", UnlistedCells(32)), ("steps", steps)])
    with pytest.raises(ValueError, match="domain 'cells': the shared argument 'mem' must have the "
                                         "domain's claimed sum"):
        Statement("memory", [("cells", UnclaimedCells(32)), ("steps", steps)])
    with pytest.raises(ValueError, match="domain 'steps': the shared argument draws alpha and beta at "
                                         "challenges 3 and 1, domain 'cells''s at 0 and 1"):
        Statement("memory", [("cells", md.CellsAir(32)), ("steps", OtherChallengeSteps(16))])
    with pytest.raises(ValueError, match="has a target but no domain claims a sum"):
        Statement("fib", [("a", fibonacci.fibonacci_instance(16, seed=1)[0]),
                          ("b", fibonacci.fibonacci_instance(16, seed=2)[0])],
                  target=lambda challenges: Ext(0), public=b"")


def test_the_verifier_checks_the_declaration():
    st, run, res, external = _prove(32, 16)
    bad = Statement("memory", [("cells", md.CellsAir(32)), ("steps", BadPeriodSteps(16))])
    with pytest.raises(ValueError, match="periodic column 'bad' has period 3"):
        _verify(bad, res.proof, external)


# ---------------------------------------------------------------- degrees --

class OverriddenCells(md.CellsAir):
    """Test double: an AIR whose own algebraic_degree counts more than its
    identity and lookup degrees (as the order book's public fractions do)."""

    def algebraic_degree(self, trace_length):
        return 2 * super().algebraic_degree(trace_length)


def test_an_algebraic_degree_override_is_refused_in_several_domains():
    with pytest.raises(ValueError, match="domain 'cells': OverriddenCells overrides algebraic_degree.*"
                                         "override identity_degree or lookup_degree"):
        Statement("memory", [("cells", OverriddenCells(32)), ("steps", md.StepsAir(16))])
    # alone it is the one-domain statement, whose D is its AIR's own
    air = OverriddenCells(32)
    assert Statement.of(air).algebraic_degree(LB) == air.algebraic_degree(32)
    # the order book's ops domain counts its public fractions through its
    # statement (BatchStatement.public_fractions), not by an override
    book = OrderBookAir(16, 2, np.zeros(0, OP_DTYPE), np.zeros(0, TRADE_DTYPE), 1)
    assert type(book).algebraic_degree is Air.algebraic_degree


def test_a_statements_degree_is_its_airs_alone_and_covers_each_domain():
    fib = fibonacci.fibonacci_instance(64, pairs=3, seed=5)[0]
    book = OrderBookAir(16, 2, np.zeros(0, OP_DTYPE), np.zeros(0, TRADE_DTYPE), 1)
    for air in (memory.MemoryAir(64), fib, book, md.CellsAir(32)):
        for lb in (1, 2):
            assert Statement.of(air).algebraic_degree(lb) == air.algebraic_degree(air.trace_length)
    for cells, steps in ((64, 16), (16, 64), (32, 32)):
        st = md.memory_statement(cells, steps)
        degree = st.algebraic_degree(LB)
        for dom in st.domains:
            assert degree >= dom.air.algebraic_degree(dom.air.trace_length)
        # two domains: the M-sized terms of the one besides the tall (DEEP, gamma)
        assert degree - 2 * (max(cells, steps) << LB) == max(
            sum(d.air.identity_degree(d.air.trace_length) for d in st.domains),
            sum(d.air.lookup_degree(d.air.trace_length) for d in st.domains))
