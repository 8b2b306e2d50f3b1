"""daemon/jobs.py: a proof job carries the shadow book's traced run of its
batch, and a worker proves it from that run without running the engine.
Each operation goes through the engine once on the daemon's path; a job
whose run is not the engine's never gives an accepted proof (the verifier
is the check); a malformed job is refused with an error saying what and
where, in process and over the external-prover protocol.  A job sent
without its run (JobInputs, as a Dask task carries it) gives the same job
back where the engine is the daemon's, and is refused saying what where it
cannot be run or the engine gives another outcome."""
from __future__ import annotations

import copy
import io

import numpy as np
import pytest

from zksidecar.daemon import frames
from zksidecar.daemon.backends import NativeBackend
from zksidecar.daemon.batches import BatchPolicy, CloseReason
from zksidecar.daemon.jobs import (JobInputs, ProofJob, ProofRejected, accept_proof, check_job,
                                   prove_job)
from zksidecar.daemon.metrics import Metrics
from zksidecar.daemon.prover_server import serve
from zksidecar.daemon.sequencer import Sequencer
from zksidecar.engine import flow, invariants
from zksidecar.engine.book import Book
from zksidecar.engine.invariants import HEADER
from zksidecar.engine.native import lib
from zksidecar.engine.records import OP_DTYPE, Status
from zksidecar.engine.trace import StepKind
from zksidecar.prover.orderbook import proof_file, verify_batch, verify_chain
from zksidecar.prover.orderbook.batch import prove_batch
from zksidecar.prover.orderbook.params import proof_options
from zksidecar.prover.verify import VerificationError

CAP, T, BITS = 16, 128, 20


def takers(n: int, seed: int = 5) -> np.ndarray:
    """A flow where about half the orders take: batches with trades."""
    return flow.generate(n, seed=seed, capacity=CAP, params=flow.FlowParams(depth=8, take=0.5))


def daemon_batches(ops: np.ndarray, size: int = 20, chunk: int = 7) -> list:
    """Batches as the daemon cuts them: the sequencer fed in chunks, then
    closed (some close at `size`, some where the trace fills)."""
    seq = Sequencer(CAP, T, BatchPolicy(size, 1.0), Metrics())
    closed = []
    for i in range(0, len(ops), chunk):
        part = ops[i:i + chunk]
        closed += seq.feed(part, np.zeros(len(part), np.int64), 0.0)
    return closed + seq.close_all(CloseReason.FLUSH)


@pytest.fixture(scope="module")
def chain():
    """Three consecutive jobs of a flow with trades, and the middle one's proof."""
    jobs = [ProofJob.of(b, BITS) for b in daemon_batches(takers(60), size=20, chunk=20)[:3]]
    assert [len(j.ops) for j in jobs] == [20, 20, 20] and len(jobs[1].trades) > 2
    return jobs


class EngineRuns:
    """Counts the operations the engine runs (Book.process and
    process_traced), for the monkeypatched Book."""

    def __init__(self, monkeypatch):
        self.ops = 0
        for name in ("process", "process_traced"):
            real = getattr(Book, name)

            def counted(book, ops, _real=real):
                self.ops += len(ops)
                return _real(book, ops)

            monkeypatch.setattr(Book, name, counted)


# ------------------------------------------------ each operation once --

def test_the_daemon_path_runs_each_operation_through_the_engine_once(monkeypatch):
    """Sequencer (cuts by size and where the trace fills, a run split across
    two batches), proof jobs, the native backend: every operation runs
    through the engine once, and the proofs verify as one chain."""
    ops = takers(150, seed=9)
    runs = EngineRuns(monkeypatch)
    batches = daemon_batches(ops, size=100, chunk=13)
    assert {b.reason for b in batches} >= {"steps"}           # runs were split where the trace filled
    results = [NativeBackend().prove(ProofJob.of(b, BITS)) for b in batches]
    assert runs.ops == len(ops)
    assert all(r.ok for r in results)
    assert [r.n_trades for r in results] == [len(b.trades) for b in batches]
    verify_chain([proof_file.decode(r.proof) for r in results], min_security=BITS)


def test_a_worker_never_runs_the_engine_nor_walks_the_cells(chain, monkeypatch):
    """prove_job, accept_proof and the prover server build everything from
    the job: no Book is made, no operation run, no list walked."""
    job = chain[1]

    def forbidden(*args, **kwargs):
        raise AssertionError("the worker ran the engine or walked the cells")

    for name in ("process", "process_traced", "from_cells", "__init__"):
        monkeypatch.setattr(Book, name, forbidden)
    monkeypatch.setattr(invariants, "check", forbidden)
    proof = prove_job(job)
    accept_proof(job, proof_file.encode(proof))
    out = io.BytesIO()
    assert serve(io.BytesIO(frames.frame(frames.encode_request(job))), out) == 0
    status, *_, body = frames.decode_response(out.getvalue()[frames.LENGTH_SIZE:])
    assert status == frames.OK and body == proof_file.encode(proof)    # deterministic proofs


def test_the_run_gives_the_proof_the_operations_give(chain):
    """A proof from the shadow's run is, byte for byte, the proof
    prove_batch makes running the engine on the operations (proofs are
    deterministic): one statement, one witness, whoever runs the engine."""
    from zksidecar.daemon.jobs import job_options, ops_length
    for job in chain:
        again, _, _ = prove_batch(Book.from_cells(job.pre_cells), job.ops,
                                  job_options(job, ops_length(job)),
                                  batch_id=job.batch_id)
        assert proof_file.encode(prove_job(job)) == proof_file.encode(again)


def test_the_job_is_the_batch_as_the_shadow_ran_it(chain):
    """What a job carries is what the engine gives from its cells."""
    for job in chain:
        ops = job.ops.copy()
        trades, steps = Book.from_cells(job.pre_cells).process_traced(ops)
        assert ops.tobytes() == job.ops.tobytes()
        assert trades.tobytes() == job.trades.tobytes()
        assert steps.tobytes() == job.steps.tobytes()


# ------------------------------------------------ a job without its run --

def test_a_job_sent_without_its_run_gives_the_job_back(chain):
    """JobInputs carries every field of a job but the run (a field added to
    ProofJob must be sent, or derived, too), and the engine gives the run
    back byte for byte, from copies: the inputs are left as they were."""
    from dataclasses import fields
    run = {"steps", "trades"}
    assert {f.name for f in fields(JobInputs)} == {f.name for f in fields(ProofJob)} - run
    for job in chain:
        inputs = JobInputs.of(job)
        ops, cells = job.ops.tobytes(), job.pre_cells.tobytes()
        again = inputs.job()
        for f in fields(ProofJob):
            mine, theirs = getattr(again, f.name), getattr(job, f.name)
            if isinstance(theirs, np.ndarray):
                assert mine.dtype == theirs.dtype and mine.tobytes() == theirs.tobytes(), f.name
            else:
                assert mine == theirs, f.name
        assert inputs.ops.tobytes() == ops and inputs.pre_cells.tobytes() == cells


def _free_list_cut(inputs):
    inputs.pre_cells[lib.ZK_HDR_FREE_HEAD] = CAP + 5             # a free list out of the book


WITHOUT_RUN = {
    "an outcome the engine does not give": (
        lambda i: _another_outcome(i),
        r"symbol 0 batch 1: this engine gives 1 of its 20 operations other outcomes than the "
        r"daemon's shadow book did \(the first: seq \d+\); the daemon and its workers must run "
        r"the same zksidecar"),
    "records that do not continue the book": (
        lambda i: i.ops["seq"].__iadd__(1), "operation 0: sequence number"),
    "cells that are not a book": (_free_list_cut, r"free list: slot 21 out of range"),
    "cells cut short": (lambda i: setattr(i, "pre_cells", i.pre_cells[:-1]),
                        "cells do not match a capacity"),
    "ops of another dtype": (lambda i: setattr(i, "ops", i.ops.view(np.uint64)),
                             "ops must be a one-dimensional array of OP_DTYPE"),
    "no operations": (lambda i: setattr(i, "ops", np.zeros(0, OP_DTYPE)), "an empty batch"),
}


@pytest.mark.parametrize("edit, why", WITHOUT_RUN.values(), ids=WITHOUT_RUN.keys())
def test_a_job_without_its_run_that_cannot_be_run_is_refused_saying_what(chain, edit, why):
    inputs = JobInputs.of(copy.deepcopy(chain[1]))
    edit(inputs)
    with pytest.raises(ValueError, match=why):
        inputs.job()


# ----------------------------------------------------- dishonest runs --

def _matches(job):
    return np.flatnonzero(job.steps["kind"] == StepKind.MATCH)


def _fill_one_more(job):
    m = _matches(job)[0]
    job.steps["new_word"][m, 1, 1] -= 1                  # the maker left with one lot less


def _another_outcome(job):
    i = int(np.argmax(job.ops["status"] == Status.RESTED))
    job.ops["status"][i] = Status.FILLED


def _trade_price(job):
    job.trades["price"][0] += 1


def _another_batchs_run(job, other):
    job.steps, job.trades = other.steps.copy(), other.trades.copy()


def _run_from_another_book(job):
    """The engine's own run of the same records, from a book with one lot
    more resting at the first maker: every step follows the rules, from
    cells that are not the job's."""
    other = job.pre_cells.copy()
    other[HEADER + 1 * CAP + int(job.steps["addr"][_matches(job)[0], 1])] += 1
    ops = job.ops.copy()
    job.trades, job.steps = Book.from_cells(other).process_traced(ops)
    job.ops = ops


def _match_dropped(job):
    m = _matches(job)[0]
    job.steps = np.delete(job.steps, m)
    job.trades = np.delete(job.trades, 0)


def _steps_swapped(job):
    m = _matches(job)[0]
    job.steps[[m - 1, m]] = job.steps[[m, m - 1]]


def _cells_the_run_reads(job):
    slot = int(job.steps["addr"][_matches(job)[0], 1])        # the first maker hit
    job.pre_cells[HEADER + 1 * CAP + slot] += 1               # one lot more resting there


DISHONEST = {
    "a MATCH that fills one lot more": _fill_one_more,
    "an outcome the run did not give": _another_outcome,
    "a trade at another price": _trade_price,
    "the steps and trades of another batch's run": _another_batchs_run,
    "the engine's run of these records from another book": _run_from_another_book,
    "a MATCH dropped with its trade": _match_dropped,
    "two steps swapped": _steps_swapped,
    "cells the run reads, changed": _cells_the_run_reads,
}


@pytest.mark.parametrize("edit", DISHONEST.values(), ids=DISHONEST.keys())
def test_a_run_that_is_not_the_engines_never_gives_an_accepted_proof(chain, edit):
    """Either the witness builder refuses it with a clear error, or the
    proof does not verify, and accept_proof refuses it whether it is
    checked against the dishonest job or the honest one."""
    honest = chain[1]
    job = copy.deepcopy(honest)
    edit(job, chain[2]) if edit is _another_batchs_run else edit(job)
    try:
        proof = prove_job(job)
    except ValueError as exc:               # refused before proving: say what
        assert str(exc)
        return
    with pytest.raises(VerificationError):
        verify_batch(proof, min_security=BITS)
    raw = proof_file.encode(proof)
    for against in (job, honest):
        with pytest.raises(ProofRejected):
            accept_proof(against, raw)


def test_cells_the_run_does_not_read_give_a_proof_that_does_not_chain():
    """A pre-state the run never touches, changed: the proof is a true
    statement about another book (it verifies alone), and the chain
    verifier refuses it where it does not follow the previous post-state
    (here the empty book's)."""
    job = ProofJob.of(daemon_batches(takers(10), size=2)[0], BITS)     # two orders, slots 1 and 2
    job.pre_cells[HEADER + 6 * CAP + CAP - 1] += 1          # the last free slot's generation
    proof = prove_job(job)
    verify_batch(proof, min_security=BITS)
    with pytest.raises(VerificationError, match="not the previous post-state"):
        verify_chain([proof], min_security=BITS)


# ----------------------------------------------------- malformed jobs --

def _steps_of(job, **fields):
    for name, (i, value) in fields.items():
        job.steps[name][i] = value


MALFORMED = {
    "steps of another dtype": (lambda j: setattr(j, "steps", j.steps.view(np.uint8)),
                               "steps must be a one-dimensional array of STEP_DTYPE"),
    "ops of another dtype": (lambda j: setattr(j, "ops", j.ops.view(np.uint64)),
                             "ops must be a one-dimensional array of OP_DTYPE"),
    "no operations": (lambda j: setattr(j, "ops", np.zeros(0, OP_DTYPE)), "an empty batch"),
    "no steps": (lambda j: setattr(j, "steps", j.steps[:0]), "no steps"),
    "an operation index past the batch": (lambda j: _steps_of(j, op=(-1, 20)),
                                          r"step \d+ of \d+: an operation index out of range"),
    "an operation index going back": (lambda j: _steps_of(j, op=(5, 0)),
                                      "step 5 of .*goes back"),
    "an unknown step kind": (lambda j: _steps_of(j, kind=(3, 9)), "step 3 of .*not a step kind"),
    "a mask over four accesses": (lambda j: _steps_of(j, mask=(2, 16)), "step 2 of .*mask"),
    "a reserved field set": (lambda j: _steps_of(j, reserved=(4, 1)), "step 4 of .*reserved"),
    "an address past the book": (lambda j: j.steps["addr"].__setitem__((7, 2), 1 << 20),
                                 "step 7 of .*outside the 16-word table"),
    "a header access elsewhere": (lambda j: j.steps["addr"].__setitem__((1, 0), 3),
                                  "step 1 of .*header access not at address 0"),
    "more rows than the trace holds": (lambda j: setattr(j, "steps", np.resize(j.steps, 4 * T)),
                                       "its steps need an ops trace of 256 rows, over the chain's "
                                       "cap of 128"),
    "trades that are not a MATCH each": (lambda j: setattr(j, "trades", j.trades[1:]),
                                         r"\d+ trades for \d+ MATCH steps"),
    "cells cut short": (lambda j: setattr(j, "pre_cells", j.pre_cells[:-1]),
                        "cells do not match a capacity"),
    "cells of another symbol": (lambda j: j.pre_cells.__setitem__(10, 7),
                                "the cells are symbol 7's book, the job is for 0"),
    "a trace length that is not a power of two": (lambda j: setattr(j, "trace_length", 100),
                                                  "a power of two"),
}


@pytest.mark.parametrize("edit, why", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_job_is_refused_saying_what(chain, edit, why):
    """In process (check_job, then the witness builder's own checks) and
    over the external-prover protocol (an ERROR response naming it, and
    the session goes on): a ValueError, never an IndexError or a crash."""
    job = copy.deepcopy(chain[1])
    edit(job)
    with pytest.raises(ValueError, match=why):
        check_job(job)
        prove_job(job)
    if isinstance(job.ops, np.ndarray) and job.ops.dtype == OP_DTYPE \
            and job.steps.dtype == chain[1].steps.dtype:
        out = io.BytesIO()
        good = frames.encode_request(chain[1])
        stream = frames.frame(frames.encode_request(job)) + frames.frame(good)
        assert serve(io.BytesIO(stream), out) == 0
        out.seek(0)
        (s1, *_, body), (s2, *_) = [frames.decode_response(frames.read_frame(out)) for _ in "ab"]
        assert s1 == frames.ERROR and s2 == frames.OK
        assert body.startswith((b"ValueError", b"CorruptState")), body


def test_a_job_is_proven_at_its_own_rows_whatever_the_cap():
    """A configuration may trade bits for a longer cap (96 bits at 2^17
    rows: the order book reaches 100 only up to 2^16); a job of one
    operation on such a chain is still proven at the ops rows it takes
    (16), and its proof is accepted against the chain's cap."""
    from zksidecar.daemon.jobs import warm_up_job
    from zksidecar.prover.orderbook.params import MAX_TRACE_LENGTH

    job = warm_up_job(16, MAX_TRACE_LENGTH * 2, security_bits=96)
    bp = prove_job(job)
    assert (bp.public.book_length, bp.public.ops_length) == (16, 16)
    assert accept_proof(job, proof_file.encode(bp)).public.ops_length == 16
