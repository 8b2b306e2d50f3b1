"""Derived values: the verifier's side of a LogUp sum over a public table,
computed by Air.derive from the challenges on both sides.  Test AIR: the
column `v` is a permutation of a public list."""
import numpy as np
import pytest

from zksidecar.prover import extension as E
from zksidecar.prover import field as F
from zksidecar.prover import logup, params
from zksidecar.prover.air import Air, Segment
from zksidecar.prover.ext_scalar import Ext
from zksidecar.prover.prove import ConstraintError, prove
from zksidecar.prover.reference import reference_prove
from zksidecar.prover.verify import VerificationError, verify
from zk_modes import prove_in, zk

OPTS = params.ProofOptions(log_blowup=2, num_queries=20, grinding_bits=2, fri_folding_factor=4,
                           fri_max_final_degree=4)
#: the tamper tests in both modes (zk mode at 2^7 rows: its masks fit)
MODES = [pytest.param(OPTS, 32, id="transparent"), pytest.param(zk(OPTS), 128, id="zk")]


class PermutationAir(Air):
    """Test double: `v` is a permutation of the public list `table`."""

    main_segments = (Segment("main", ("v",)),)
    num_challenges = 2          # alpha, and beta (LogUp's tuple compression)
    derived_values = ("table_sum",)

    def __init__(self, table):
        self.table = [int(t) for t in table]
        self.arg = logup.LogUp("perm", [logup.consume(["v"])], alpha=0, target=self._target)
        self.aux_columns = self.arg.columns
        super().__init__(len(self.table))

    @staticmethod
    def _target(f):
        return -f.derived("table_sum")

    def derive(self, challenges):
        """sum over the table of 1 / (alpha - t), with one batch inversion."""
        alpha = challenges[0]
        d = F.sub(np.ascontiguousarray(np.broadcast_to(alpha, (len(self.table), 4))),
                  E.from_base(F.encode(self.table)))
        total = np.sum(E.inv(d).astype(np.uint64), axis=0) % F.P
        return {"table_sum": Ext.from_mont(total.astype(np.uint32))}

    def public_bytes(self):
        return np.asarray(self.table, dtype="<u4").tobytes()

    def transitions(self, f):
        return self.arg.transitions(f)

    def boundaries(self, f):
        return self.arg.boundaries(f)

    def build_aux(self, main, challenges):
        return logup.build_aux(self, [self.arg], main, challenges)


def instance(n=32, seed=0):
    rng = np.random.default_rng(seed)
    table = rng.integers(0, F.P, n)
    return PermutationAir(table), {"main": F.encode(rng.permutation(table).reshape(n, 1))}


def test_permutation_proves_and_verifies():
    air, traces = instance()
    proof = prove(air, traces, OPTS, debug=True).proof
    verify(air, proof, min_security=0)


def test_reference_prover_agrees_byte_for_byte():
    air, traces = instance(16, seed=1)
    fast = prove(air, traces, OPTS).proof
    ref = reference_prove(air, traces, OPTS)
    assert ref.to_bytes(air) == fast.to_bytes(air)


@pytest.mark.parametrize("opts,n", MODES)
def test_changed_public_table_fails(opts, n):
    air, traces = instance(n, seed=2)
    proof = prove_in(air, traces, opts).proof
    other = list(air.table)
    other[5] = (other[5] + 1) % F.P
    with pytest.raises(VerificationError):
        verify(PermutationAir(other), proof, min_security=0)


@pytest.mark.parametrize("opts,n", MODES)
def test_trace_that_is_not_a_permutation_fails(opts, n):
    air, traces = instance(n, seed=3)
    bad = traces["main"].copy()
    bad[7, 0] = bad[8, 0]          # a duplicate replaces one value
    with pytest.raises(ConstraintError):
        prove_in(air, {"main": bad}, opts, debug=True)
    with pytest.raises(VerificationError):
        verify(air, prove_in(air, {"main": bad}, opts).proof, min_security=0)


def test_derive_must_return_what_is_declared():
    air, traces = instance(8)
    air.derive = lambda challenges: {}
    with pytest.raises(ValueError, match="declared"):
        prove(air, traces, OPTS)
