"""Poseidon2 (BabyBear, width 16) as AIR constraints: one permutation per row.

The record lane of zk mode hashes one record per trace row (docs/ZK.md,
section 3.2).  This module gives any AIR that permutation as columns and
constraints, every constraint of degree 3, in the layout the design counts:

    full round r (rounds 0-6)  a_i = s_i^3         16 registers
                               y = M_E (a^2 s)     16 output columns
    partial round r (0-12)     a = s_0^3, b = a^2 s_0   2 columns; the
                               other 15 elements stay linear expressions
    last full round (7)        a_i = s_i^3, and y_0 .. y_7 only (the leaf's)

with s the round's S-box input, s_i = x_i + c_ri, linear in the previous
round's columns (or in the input columns, after the first M_E), and
a^2 s = s^7 the S-box output.  4 x 32 + 13 x 2 + 3 x 32 + 16 + 8 = 274
columns (:data:`COLUMNS`), 274 constraints.  M_E is written in its block
form (M4 on each quarter by the add chain of docs/POSEIDON2.md, then the
quarter sums), so the compiled constraint program adds instead of
multiplying by 16 x 16 constants.

The constraints hold on every row (``every_row``): a lane hashes on every
row, the last included.  The witness is the C kernel's
(:func:`zksidecar.prover.poseidon2.air_registers`: the permutation's own
rounds, csrc/hash/poseidon2_rounds.inc, storing the registers as they pass);
:func:`reference_registers` computes the same columns from the plain-Python
definition's round states, and the tests hold the two equal.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .air import Frame, TransitionConstraint
from .constraint_program import NativeBlock
from .expr import TRACE, Expr, const
from .native import ffi, lib
from .poseidon2_reference import (FULL_ROUND_CONSTANTS, FULL_ROUNDS, INTERNAL_DIAGONAL, LEAF_WIDTH,
                                  P, PARTIAL_ROUND_CONSTANTS, PARTIAL_ROUNDS, WIDTH, check_state,
                                  round_states, sbox)

#: registers per permutation (one row)
COLUMNS = lib.ZK_POSEIDON2_AIR_COLUMNS
#: the columns the constraints read: the 16 inputs, then the registers
BLOCK_COLUMNS = lib.ZK_POSEIDON2_CONSTRAINT_COLUMNS
assert BLOCK_COLUMNS == WIDTH + COLUMNS
HALF = FULL_ROUNDS // 2


def full_round_column(r: int) -> int:
    """The first register of full round r (its a_0; y_0 is 16 further):
    the same numbering as csrc/hash/poseidon2_rounds.inc's P2_REG_FULL."""
    return 32 * r if r < HALF else 32 * HALF + 2 * PARTIAL_ROUNDS + 32 * (r - HALF)


def partial_round_column(r: int) -> int:
    """Partial round r's a; its b is the next column (P2_REG_PARTIAL)."""
    return 32 * HALF + 2 * r


def register_names(prefix: str) -> tuple[str, ...]:
    """The COLUMNS register names, in column order, under `prefix`."""
    names = [""] * COLUMNS
    for r in range(FULL_ROUNDS):
        k = full_round_column(r)
        for i in range(WIDTH):
            names[k + i] = f"{prefix}.f{r}.a{i}"
        for i in range(LEAF_WIDTH if r == FULL_ROUNDS - 1 else WIDTH):
            names[k + WIDTH + i] = f"{prefix}.f{r}.y{i}"
    for r in range(PARTIAL_ROUNDS):
        k = partial_round_column(r)
        names[k], names[k + 1] = f"{prefix}.p{r}.a", f"{prefix}.p{r}.b"
    assert all(names) and len(set(names)) == COLUMNS
    return tuple(names)


# ------------------------------------------------- the linear layers, on expressions --

def _m4(x: Sequence[Expr]) -> list[Expr]:
    """M4 x by docs/POSEIDON2.md's add chain (8 additions, 6 doublings)."""
    t0, t1 = x[0] + x[1], x[2] + x[3]
    t2 = x[1] + x[1] + t1
    t3 = x[3] + x[3] + t0
    d1, d0 = t1 + t1, t0 + t0
    t4 = d1 + d1 + t3
    t5 = d0 + d0 + t2
    return [t3 + t5, t5, t2 + t4, t4]


def external_layer(x: Sequence[Expr]) -> list[Expr]:
    """M_E x in block form: y_q = M4 x_q per quarter, out_q = y_q + sum_q y_q."""
    y = [v for q in range(4) for v in _m4(x[4 * q: 4 * q + 4])]
    sums = [y[j] + y[4 + j] + (y[8 + j] + y[12 + j]) for j in range(4)]
    return [y[i] + sums[i % 4] for i in range(WIDTH)]


def internal_layer(x: Sequence[Expr]) -> list[Expr]:
    """M_I x = (sum of x) + mu_i x_i."""
    total = ((x[0] + x[8]) + (x[4] + x[12])) + ((x[2] + x[10]) + (x[6] + x[14])) \
        + (((x[1] + x[9]) + (x[5] + x[13])) + ((x[3] + x[11]) + (x[7] + x[15])))
    return [total + const(mu) * v for mu, v in zip(INTERNAL_DIAGONAL, x)]


# ------------------------------------------------------------------ the AIR part --

class Poseidon2Columns:
    """One permutation per row, as columns named under `prefix` (list
    :attr:`names` in a segment of the AIR) and constraints over given input
    expressions (:meth:`transitions`).  The permutation's output elements
    0..7 are the columns :attr:`output`; the leaf with its feed-forward is
    :meth:`leaf`, linear, so it costs no column."""

    def __init__(self, prefix: str = "p2"):
        self.prefix = prefix
        self.names = register_names(prefix)
        last = full_round_column(FULL_ROUNDS - 1) + WIDTH
        #: the columns holding pi(x)_0 .. pi(x)_7
        self.output = self.names[last: last + LEAF_WIDTH]

    def transitions(self, f: Frame, inputs: Sequence[Expr]) -> list[TransitionConstraint]:
        """The COLUMNS constraints of pi(inputs) = the registers, every one
        of degree 3, on every row.  `inputs`: 16 expressions of degree 1 of
        the current row (the record's columns, or linear combinations)."""
        if len(inputs) != WIDTH:
            raise ValueError(f"Poseidon2 takes {WIDTH} inputs, got {len(inputs)}")
        bad = [k for k, e in enumerate(inputs) if e.degree != 1]
        if bad:
            raise ValueError(f"Poseidon2 input {bad[0]} has degree {inputs[bad[0]].degree}: the "
                             "constraints stay of degree 3 only for inputs of degree 1")
        col = lambda k: f.cur(self.names[k])    # noqa: E731
        out: list[tuple[str, Expr]] = []

        def add(name: str, expr: Expr) -> None:
            out.append((f"{self.prefix}: {name}", expr))

        def full_round(x: list[Expr], r: int) -> list[Expr]:
            k = full_round_column(r)
            outputs = LEAF_WIDTH if r == FULL_ROUNDS - 1 else WIDTH
            s7 = []
            for i in range(WIDTH):
                s = x[i] + const(FULL_ROUND_CONSTANTS[r][i])
                a = col(k + i)
                add(f"full round {r}: a{i} = s{i}^3", a - s * s * s)
                s7.append(a * a * s)
            y = external_layer(s7)
            for i in range(outputs):
                add(f"full round {r}: y{i} = M_E(s^7){i}", col(k + WIDTH + i) - y[i])
            return [col(k + WIDTH + i) for i in range(outputs)]

        x = external_layer(list(inputs))
        for r in range(HALF):
            x = full_round(x, r)
        for r in range(PARTIAL_ROUNDS):
            k = partial_round_column(r)
            s = x[0] + const(PARTIAL_ROUND_CONSTANTS[r])
            a, b = col(k), col(k + 1)
            add(f"partial round {r}: a = s0^3", a - s * s * s)
            add(f"partial round {r}: b = a^2 s0", b - a * a * s)
            x = internal_layer([b] + x[1:])
        for r in range(HALF, FULL_ROUNDS):
            x = full_round(x, r)
        assert len(out) == COLUMNS
        block = Poseidon2Block.over(out, list(inputs) + [col(k) for k in range(COLUMNS)])
        return [TransitionConstraint(name, expr, expr.degree, every_row=True, native=block) for name, expr in out]

    def leaf(self, f: Frame, inputs: Sequence[Expr]) -> list[Expr]:
        """The record lane's leaf, pi(x)_k + x_k for k < 8 (degree 1)."""
        return [f.cur(c) + inputs[k] for k, c in enumerate(self.output)]

    def leaf_terms(self, inputs: Sequence[str]) -> list[Callable[[Frame], Expr]]:
        """The leaf's elements as LogUp terms (functions of the frame), for
        input columns named `inputs`."""
        return [lambda f, k=k: f.cur(self.output[k]) + f.cur(inputs[k]) for k in range(LEAF_WIDTH)]


class Poseidon2Block(NativeBlock):
    """The block's constraints as the prover evaluates them on the quotient
    domain: one kernel (csrc/stark/poseidon2_constraints.c) adds their
    weighted sum where the block evaluator would have run their ~3,000
    compiled instructions a row, computing the same words (constraint j
    defines register j, in the rounds' order).  The expressions remain the
    definition: the verifier, and the prover's own constraint check, read
    them."""

    @classmethod
    def over(cls, constraints: list[tuple[str, Expr]], reads: list[Expr]) -> "Poseidon2Block | None":
        """The block of `constraints` (Poseidon2Columns.transitions'), whose
        inputs and registers are the expressions `reads`; None when an input
        is not a column of the current row (a linear combination: the kernel
        reads columns only), and the expressions are then compiled as any."""
        if any(e.op != "var" or e.args[0] != TRACE or e.args[2] != 0 for e in reads):
            return None
        return cls([e for _, e in constraints], [e.args[1] for e in reads])

    def accumulate(self, addr: np.ndarray, stride: np.ndarray, weights: np.ndarray, acc: np.ndarray,
                   rows: int) -> None:
        addr = np.ascontiguousarray(addr, dtype=np.uintp)
        stride = np.ascontiguousarray(stride, dtype=np.uintp)
        if addr.shape != (BLOCK_COLUMNS,) or stride.shape != (BLOCK_COLUMNS,):
            raise ValueError(f"the Poseidon2 block reads {BLOCK_COLUMNS} columns, got {addr.shape[0]} addresses "
                             f"and {stride.shape[0]} strides")
        if weights.shape != (COLUMNS, 4) or weights.dtype != np.uint32 or not weights.flags.c_contiguous:
            raise ValueError(f"the Poseidon2 block's weights: need a contiguous ({COLUMNS}, 4) uint32 array, "
                             f"got {weights.dtype} {weights.shape}")
        if acc.shape != (rows, 4) or acc.dtype != np.uint32 or not acc.flags.c_contiguous:
            raise ValueError(f"the Poseidon2 block's accumulator: need a contiguous ({rows}, 4) uint32 array, "
                             f"got {acc.dtype} {acc.shape}")
        rc = lib.zk_poseidon2_constraints(ffi.cast("uint32_t **", addr.ctypes.data),
                                          ffi.cast("size_t *", stride.ctypes.data),
                                          ffi.from_buffer("uint32_t[]", weights), ffi.from_buffer("uint32_t[]", acc),
                                          rows)
        if rc == -2:
            raise MemoryError("no scratch memory for the Poseidon2 constraints kernel")


def reference_registers(state: Sequence[int]) -> list[int]:
    """The COLUMNS registers of pi(state), canonical, from the plain-Python
    definition's round states (poseidon2_reference.round_states): what
    poseidon2.air_registers computes in C, column by column."""
    states = round_states(check_state(state))
    out = [0] * COLUMNS
    rounds = [("full", r) for r in range(HALF)] + [("partial", r) for r in range(PARTIAL_ROUNDS)] \
        + [("full", r) for r in range(HALF, FULL_ROUNDS)]
    for (kind, r), before, after in zip(rounds, states, states[1:]):
        if kind == "full":
            k = full_round_column(r)
            for i in range(WIDTH):
                out[k + i] = pow((before[i] + FULL_ROUND_CONSTANTS[r][i]) % P, 3, P)
            for i in range(LEAF_WIDTH if r == FULL_ROUNDS - 1 else WIDTH):
                out[k + WIDTH + i] = after[i]
        else:
            k = partial_round_column(r)
            s = (before[0] + PARTIAL_ROUND_CONSTANTS[r]) % P
            out[k], out[k + 1] = pow(s, 3, P), sbox(s)
    return out
