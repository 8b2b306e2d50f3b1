"""Poseidon2 as AIR constraints (prover/poseidon2_air.py) and the record
lane's probe (prover/examples/lane_probe.py): the C witness against the
plain-Python definition on every ISA path, the constraints of degree 3
holding on it and refusing an edited register, the probe proving and
verifying, and refusing an edited leaf."""
from __future__ import annotations

import re

import numpy as np
import pytest

from zksidecar.prover import field, native, params, poseidon2
from zksidecar.prover import poseidon2_air as p2air
from zksidecar.prover import poseidon2_reference as ref
from zksidecar.prover.examples.lane_probe import (LaneProbeAir, lane_probe_instance, lane_probe_witness,
                                                  random_records)
from zksidecar.prover.expr import const
from zksidecar.prover.air import Frame
from zksidecar.prover.prove import ConstraintError, prove
from zksidecar.prover.verify import VerificationError, verify

P = field.P
N = 64


@pytest.fixture(scope="module")
def instance():
    return lane_probe_instance(N, seed=3)


def test_the_layout_is_the_designs():
    assert p2air.COLUMNS == 4 * 32 + 13 * 2 + 3 * 32 + 16 + 8 == 274
    names = p2air.register_names("h")
    assert len(names) == len(set(names)) == 274
    assert names[p2air.full_round_column(0)] == "h.f0.a0"
    assert names[p2air.partial_round_column(0)] == "h.p0.a"
    assert names[p2air.full_round_column(4)] == "h.f4.a0"
    assert names[-1] == "h.f7.y7"


def test_c_registers_are_the_definitions_on_every_isa():
    rng = np.random.default_rng(11)
    states = rng.integers(0, P, (23, 16))          # not a multiple of any lane count
    states[0], states[1] = 0, P - 1
    want = np.array([p2air.reference_registers([int(v) for v in s]) for s in states])
    for isa, got in native.on_each_isa(lambda: field.decode(poseidon2.air_registers(field.encode(states)))).items():
        assert np.array_equal(got, want), isa


def test_reference_registers_follow_the_permutation():
    x = list(range(16))
    regs = p2air.reference_registers(x)
    states = ref.round_states(x)
    last = p2air.full_round_column(7) + 16
    assert regs[last: last + 8] == ref.permute(x)[:8]
    assert regs[p2air.full_round_column(2) + 16: p2air.full_round_column(2) + 32] == states[3]
    # a partial round's b is its S-box output, a the cube of the same input
    s = (states[4][0] + ref.PARTIAL_ROUND_CONSTANTS[0]) % P
    k = p2air.partial_round_column(0)
    assert regs[k: k + 2] == [pow(s, 3, P), pow(s, 7, P)]


def test_registers_written_into_a_wider_matrix():
    """Into rows wider than the registers, on every path: whole blocks of
    states (a vector path's tiles) and a last partial one, nothing beside
    the registers' columns touched."""
    states = field.encode(np.random.default_rng(2).integers(0, P, (41, 16)))

    def wide():
        out = np.zeros((41, 280), dtype=np.uint32)
        poseidon2.air_registers(states, out=out[:, 3:277])
        return out

    want = native.on_each_isa(lambda: poseidon2.air_registers(states))["scalar"]
    for isa, got in native.on_each_isa(wide).items():
        assert np.array_equal(got[:, 3:277], want), isa
        assert not got[:, :3].any() and not got[:, 277:].any(), isa


def test_registers_refuse_bad_arguments():
    states = field.encode(np.zeros((4, 16), dtype=np.int64))
    with pytest.raises(ValueError, match="out must be"):
        poseidon2.air_registers(states, out=np.zeros((4, 273), dtype=np.uint32))
    with pytest.raises(ValueError, match="out must be"):
        poseidon2.air_registers(states, out=np.zeros((274, 4), dtype=np.uint32).T)
    bad = states.copy()
    bad[2, 5] = P
    with pytest.raises(ValueError, match="state 2, element 5"):
        poseidon2.air_registers(bad)


def test_every_constraint_has_degree_3(instance):
    air, _ = instance
    cons = [c for c in air.transition_constraints if c.name.startswith("p2:")]
    assert len(cons) == 274
    assert {c.degree for c in cons} == {3} and all(c.every_row for c in cons)
    assert air.max_degree == 3


def test_inputs_of_degree_two_are_refused(instance):
    air, _ = instance
    f = Frame(air)
    inputs = [f.cur("x0") * f.cur("x1")] + [f.cur(f"x{k}") for k in range(1, 16)]
    with pytest.raises(ValueError, match="input 0 has degree 2"):
        air.p2.transitions(f, inputs)
    with pytest.raises(ValueError, match="takes 16 inputs"):
        air.p2.transitions(f, [const(1)] * 15)


def test_the_leaves_are_the_leaf_function():
    records = random_records(20, seed=5)
    _, leaves = lane_probe_witness(records)
    assert np.array_equal(leaves, field.decode(poseidon2.leaf(field.encode(records))))
    assert leaves[0].tolist() == ref.leaf([int(v) for v in records[0]])


def test_the_probe_proves_and_verifies(instance):
    air, traces = instance
    result = prove(air, traces, params.TESTING, debug=True)
    verify(air, result.proof, min_security=0)


@pytest.mark.parametrize("column, rule", [("p2.p5.b", "partial round 5: b = a^2 s0"),
                                          ("p2.f1.a7", "full round 1: a7 = s7^3"),
                                          ("p2.f6.y3", "full round 6: y3 = M_E(s^7)3"),
                                          ("x4", "full round 0: a")])
def test_an_edited_register_is_refused(instance, column, rule):
    air, traces = instance
    bad = traces["lane"].copy()
    j = air.column_index(column)
    bad[17, j] = field.add(bad[17:18, j], field.encode(np.array([1])))[0]
    # the register's own constraint is the first to fail (in declaration
    # order; the next round's, which read it, come after)
    with pytest.raises(ConstraintError, match=re.escape(rule)):
        prove(air, {"lane": bad}, params.TESTING, debug=True)


def test_an_edited_digest_is_refused(instance):
    air, traces = instance
    honest = prove(air, traces, params.TESTING).proof
    leaves = air.leaves.copy()
    leaves[40, 2] = (int(leaves[40, 2]) + 1) % P
    edited = LaneProbeAir(N, leaves)
    with pytest.raises(ConstraintError, match="leaf: sum"):
        prove(edited, traces, params.TESTING, debug=True)
    with pytest.raises(VerificationError):
        verify(edited, honest, min_security=0)
    # two leaves swapped: the same multiset, other rows
    swapped = air.leaves.copy()
    swapped[[3, 4]] = swapped[[4, 3]]
    with pytest.raises(VerificationError):
        verify(LaneProbeAir(N, swapped), honest, min_security=0)


def test_the_probe_refuses_malformed_leaves():
    with pytest.raises(ValueError, match=r"expected \(64, 8\) leaves"):
        LaneProbeAir(N, np.zeros((63, 8), dtype=np.uint32))
    leaves = np.zeros((N, 8), dtype=np.int64)
    leaves[5, 1] = P
    with pytest.raises(ValueError, match="leaf 5, element 1"):
        LaneProbeAir(N, leaves)
