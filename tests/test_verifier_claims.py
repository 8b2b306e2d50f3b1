"""A verifier refuses what a proof claims about its own size before it spends
anything on it (prover/orderbook/batch.py check_claims): a chain verifier
commits the empty book at the first proof's trace length, gigabytes at 2^24
rows, so a small file must not be able to make it try."""
import functools
import os
import subprocess
import sys
import textwrap

import pytest

from zksidecar.engine import flow
from zksidecar.engine.book import Book
from zksidecar.prover.orderbook import (check_claims, prove_batch, proof_file, verify_batch,
                                        verify_chain, verify_history)
from zksidecar.prover.orderbook.params import MAX_TRACE_LENGTH, proof_options
from zksidecar.prover.verify import VerificationError
from zksidecar.tools.cli import main

T = 64


@functools.lru_cache(maxsize=1)
def honest() -> bytes:
    ops = flow.generate(8, seed=3, capacity=16, params=flow.FlowParams(depth=4))
    bp, _, _ = prove_batch(Book(16), ops, proof_options(100, 16, T), ops_length=T)
    return proof_file.encode(bp)


def claiming(rows: int, book_rows: int = 16):
    """The honest proof, doctored to claim an ops trace of `rows` rows and
    a book domain of `book_rows` (as a file could)."""
    bp = proof_file.decode(honest())
    bp.public.ops_length, bp.public.book_length = rows, book_rows
    bp.proof.log_lengths = (book_rows.bit_length() - 1, rows.bit_length() - 1)
    return bp


@pytest.mark.parametrize("verifier", [verify_chain, verify_history, verify_batch])
def test_a_trace_over_the_limit_is_refused(verifier):
    with pytest.raises(VerificationError, match=f"batch 0 claims an ops trace of {1 << 24} rows, over "
                                                f"the {MAX_TRACE_LENGTH} this verifier accepts"):
        verifier([claiming(1 << 24)]) if verifier is not verify_batch else verifier(claiming(1 << 24))
    with pytest.raises(VerificationError, match=f"claims an ops trace of {T} rows, over the 32"):
        verifier([claiming(T)], max_trace_length=32) if verifier is not verify_batch \
            else verifier(claiming(T), max_trace_length=32)


def test_security_is_checked_before_the_empty_book_is_committed():
    """Allowed 2^24 rows, a claim of 2^22 or 2^17 still fails: its
    parameters give under 100 bits there (the LogUp sum's algebraic degree
    caps the trace at 2^16 rows: docs/SECURITY.md)."""
    with pytest.raises(VerificationError, match="batch 0: these parameters give 94 bits"):
        check_claims(claiming(1 << 22), max_trace_length=1 << 24)
    with pytest.raises(VerificationError, match="batch 0: these parameters give 99 bits .* at 131072"):
        check_claims(claiming(1 << 17), max_trace_length=1 << 24)
    check_claims(claiming(1 << 16), max_trace_length=1 << 24)       # 100 bits: accepted


def test_an_ops_trace_past_the_comparisons_bound_is_refused_whatever_the_threshold():
    """A verifier allowed 2^24 rows at 80 bits still refuses an ops trace
    of 2^21 rows: from there a comparison's top limb could wrap mod p
    (tests/test_book_domain.py shows where)."""
    with pytest.raises(VerificationError, match="claims an ops trace of 2097152 rows, over the "
                                                r"2\^20 the order book's comparisons hold"):
        check_claims(claiming(1 << 21), min_security=80, max_trace_length=1 << 24)
    check_claims(claiming(1 << 20), min_security=80, max_trace_length=1 << 24)


@pytest.mark.parametrize("verifier", [verify_chain, verify_history, verify_batch])
def test_a_book_height_other_than_the_capacitys_is_refused(verifier):
    """The book domain has max(capacity, 16) rows: a proof claiming another
    height (its state table committed on another domain, which no chain of
    this capacity continues) is refused before anything is committed."""
    for rows in (32, 1 << 24):
        with pytest.raises(VerificationError, match=f"batch 0 claims a book domain of {rows} rows; "
                                                    "capacity 2\\^4 has 16"):
            verifier([claiming(T, rows)]) if verifier is not verify_batch \
                else verifier(claiming(T, rows))


def test_refused_claims_cost_nothing(tmp_path):
    """Under a 1.5 GiB address-space limit (committing the empty book at
    2^22 rows needs more), the claims are refused with the message, not a
    MemoryError: the checks come first."""
    for rows in (1 << 22, 1 << 24):
        (tmp_path / f"{rows}.pickle").write_bytes(__import__("pickle").dumps(claiming(rows)))
    script = textwrap.dedent(f"""
        import pickle, resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (3 << 29, resource.RLIM_INFINITY))
        from zksidecar.prover.orderbook import verify_chain
        from zksidecar.prover.verify import VerificationError
        for rows, limit in (({1 << 22}, {1 << 24}), ({1 << 24}, {MAX_TRACE_LENGTH})):
            bp = pickle.load(open(f"{tmp_path}/{{rows}}.pickle", "rb"))
            try:
                verify_chain([bp], max_trace_length=limit)
            except VerificationError as exc:
                print(exc)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("batch 0: these parameters give 94 bits") and \
        lines[1].startswith("batch 0 claims an ops trace of 16777216 rows"), out.stdout


def test_the_command_line_says_so(tmp_path, capsys):
    f = tmp_path / "batch.zkb"
    f.write_bytes(honest())
    assert main(["verify", str(f)]) == 0
    capsys.readouterr()
    assert main(["verify", "--max-trace-length", "32", str(f)]) == 1
    assert f"REJECTED: batch 0 claims an ops trace of {T} rows, over the 32" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["verify", "--max-trace-length", "100", str(f)])
    assert exit_.value.code == 2
    assert "a trace length is a power of two from 16 to 2^24, not '100'" in capsys.readouterr().err


@pytest.mark.parametrize("field", ["ops", "trades"])
def test_more_records_than_trace_rows_are_refused(field):
    """The security level counts at most 3 T public fractions (two an
    operation, one a trade); an honest batch has fewer operations and
    trades than rows, so a longer list is refused before it is tabled."""
    import numpy as np
    from zksidecar.prover.orderbook import BatchRejected

    bp = proof_file.decode(honest())
    records = getattr(bp.public, field)
    t = bp.public.ops_length
    longer = np.resize(records, t) if len(records) else np.zeros(t, records.dtype)
    setattr(bp.public, field, longer)
    with pytest.raises(BatchRejected, match=f"for an ops trace of {bp.public.ops_length} rows"):
        verify_batch(bp)
