"""Poseidon2 over BabyBear, width 16: the definition, in plain Python integers.

This module is the readable specification of the permutation the zk record
lane hashes with (docs/ZK.md, section 3.2; docs/POSEIDON2.md).  It uses only
integers and lists: no numpy, no C, nothing of the rest of the package, so it
can check the C kernels (`prover/poseidon2.py`) and later the lane's AIR
without sharing a line of arithmetic with them.

The instance is the Poseidon2 authors' reference instance for BabyBear at
width 16 (the one their paper's plain implementation publishes with its
round constants, internal diagonal and test vectors):

    p       = 15 * 2^27 + 1 = 2013265921
    t       = 16 elements of state
    S-box   x -> x^7 (7 is the smallest exponent coprime to p - 1 = 2^27*3*5,
            so x^7 is a bijection of F_p)
    rounds  R_F = 8 full rounds (4 before the partial rounds, 4 after),
            R_P = 13 partial rounds (the S-box on element 0 only)

    pi(x):  x = M_E x                       (once, before the first round)
            4 times:  x = M_E S(x + c_r)    (full rounds r = 0..3)
            13 times: x_0 += d_r; x_0 = x_0^7; x = M_I x   (partial rounds)
            4 times:  x = M_E S(x + c_r)    (full rounds r = 4..7)

    M_E = circ(2 M4, M4, M4, M4)            (16 x 16, from 4 x 4 blocks)
    M4  = [[5, 7, 1, 3], [4, 6, 1, 1], [1, 3, 5, 7], [1, 1, 4, 6]]
    M_I = 1 1^T + diag(mu)                  (1 on every entry, mu_i added on
                                             the diagonal)

The leaf function of the record lane is the permutation with a feed-forward
on its first eight elements, leaf(x)_k = pi(x)_k + x_k for k < 8: without it
the truncated permutation could be inverted to open a leaf to another input
(docs/ZK.md, section 3.2 and review finding 1).

:func:`external_layer` computes M_E in its block form (M4 on each quarter,
then each quarter plus the sum of the four quarters), the way the C kernel
and the lane's constraints do; :func:`permute` uses the full matrix
(:func:`external_matrix`), and tests/test_poseidon2.py checks that the two
agree.
"""
from __future__ import annotations

from typing import Sequence

P = 2013265921
WIDTH = 16
LEAF_WIDTH = 8
SBOX_DEGREE = 7
FULL_ROUNDS = 8
PARTIAL_ROUNDS = 13

M4 = ((5, 7, 1, 3),
      (4, 6, 1, 1),
      (1, 3, 5, 7),
      (1, 1, 4, 6))

# The instance's constants, canonical values, transcribed from the authors'
# published BabyBear width-16 instance (its "RC16" rows and "MAT_DIAG16_M_1").
# The published tables list a full row of 16 constants for every round; a
# partial round reads only element 0 of its row (the rest are zero there),
# so the partial rounds' constants are kept as one list.  The C kernel holds
# its own copy (csrc/hash/poseidon2.c); a test checks that the two agree.

#: c_r for the full rounds r = 0..7 (rows 0-3 and 17-20 of the published table)
FULL_ROUND_CONSTANTS = (
    (0x69cbb6af, 0x46ad93f9, 0x60a00f4e, 0x6b1297cd, 0x23189afe, 0x732e7bef, 0x72c246de, 0x2c941900,
     0x0557eede, 0x1580496f, 0x3a3ea77b, 0x54f3f271, 0x0f49b029, 0x47872fe1, 0x221e2e36, 0x1ab7202e),
    (0x487779a6, 0x3851c9d8, 0x38dc17c0, 0x209f8849, 0x268dcee8, 0x350c48da, 0x5b9ad32e, 0x0523272b,
     0x3f89055b, 0x01e894b2, 0x13ddedde, 0x1b2ef334, 0x7507d8b4, 0x6ceeb94e, 0x52eb6ba2, 0x50642905),
    (0x05453f3f, 0x06349efc, 0x6922787c, 0x04bfff9c, 0x768c714a, 0x3e9ff21a, 0x15737c9c, 0x2229c807,
     0x0d47f88c, 0x097e0ecc, 0x27eadba0, 0x2d7d29e4, 0x3502aaa0, 0x0f475fd7, 0x29fbda49, 0x018afffd),
    (0x0315b618, 0x6d4497d1, 0x1b171d9e, 0x52861abd, 0x2e5d0501, 0x3ec8646c, 0x6e5f250a, 0x148ae8e6,
     0x17f5fa4a, 0x3e66d284, 0x0051aa3b, 0x483f7913, 0x2cfe5f15, 0x023427ca, 0x2cc78315, 0x1e36ea47),
    (0x7290a80d, 0x6f7e5329, 0x598ec8a8, 0x76a859a0, 0x6559e868, 0x657b83af, 0x13271d3f, 0x1f876063,
     0x0aeeae37, 0x706e9ca6, 0x46400cee, 0x72a05c26, 0x2c589c9e, 0x20bd37a7, 0x6a2d3d10, 0x20523767),
    (0x5b8fe9c4, 0x2aa501d6, 0x1e01ac3e, 0x1448bc54, 0x5ce5ad1c, 0x4918a14d, 0x2c46a83f, 0x4fcf6876,
     0x61d8d5c8, 0x6ddf4ff9, 0x11fda4d3, 0x02933a8f, 0x170eaf81, 0x5a9c314f, 0x49a12590, 0x35ec52a1),
    (0x58eb1611, 0x5e481e65, 0x367125c9, 0x0eba33ba, 0x1fc28ded, 0x066399ad, 0x0cbec0ea, 0x75fd1af0,
     0x50f5bf4e, 0x643d5f41, 0x6f4fe718, 0x5b3cbbde, 0x1e3afb3e, 0x296fb027, 0x45e1547b, 0x4a8db2ab),
    (0x59986d19, 0x30bcdfa3, 0x1db63932, 0x1d7c2824, 0x53b33681, 0x0673b747, 0x038a98a3, 0x2c5bce60,
     0x351979cd, 0x5008fb73, 0x547bca78, 0x711af481, 0x3f93bf64, 0x644d987b, 0x3c8bcd87, 0x608758b8),
)

#: d_r for the partial rounds r = 0..12 (element 0 of rows 4-16)
PARTIAL_ROUND_CONSTANTS = (
    0x5a8053c0, 0x693be639, 0x3858867d, 0x19334f6b, 0x128f0fd8, 0x4e2b1ccb, 0x61210ce0,
    0x3c318939, 0x0b5b2f22, 0x2edb11d5, 0x213effdf, 0x0cac4606, 0x241af16d,
)

#: mu: M_I's diagonal less one (the published table stores diag(M_I) - 1)
INTERNAL_DIAGONAL = (
    0x0a632d94, 0x6db657b7, 0x56fbdc9e, 0x052b3d8a, 0x33745201, 0x5c03108c, 0x0beba37b, 0x258c2e8b,
    0x12029f39, 0x694909ce, 0x6d231724, 0x21c3b222, 0x3c0904a5, 0x01d6acda, 0x27705c83, 0x5231c802,
)


def check_state(state: Sequence[int], width: int = WIDTH) -> list[int]:
    """`state` as a list, if it is `width` integers in [0, p); ValueError
    naming the first element that is not."""
    values = list(state)
    if len(values) != width:
        raise ValueError(f"a Poseidon2 state has {width} elements, got {len(values)}")
    for k, v in enumerate(values):
        if not isinstance(v, int) or isinstance(v, bool):
            raise TypeError(f"state element {k} is {type(v).__name__}, not an integer")
        if not 0 <= v < P:
            raise ValueError(f"state element {k} = {v} is not a canonical field element (0 <= x < p = {P})")
    return values


def matvec(matrix: Sequence[Sequence[int]], x: Sequence[int]) -> list[int]:
    return [sum(m * v for m, v in zip(row, x)) % P for row in matrix]


def external_matrix() -> list[list[int]]:
    """M_E = circ(2 M4, M4, M4, M4) as a full 16 x 16 matrix: block (i, j)
    is 2 M4 on the diagonal (i = j) and M4 elsewhere."""
    return [[M4[r % 4][c % 4] * (2 if r // 4 == c // 4 else 1) for c in range(WIDTH)]
            for r in range(WIDTH)]


def internal_matrix() -> list[list[int]]:
    """M_I = 1 1^T + diag(mu)."""
    return [[1 + (INTERNAL_DIAGONAL[r] if r == c else 0) for c in range(WIDTH)] for r in range(WIDTH)]


def external_layer(x: Sequence[int]) -> list[int]:
    """M_E x in block form: y_q = M4 x_q on each quarter q, then
    out_q = y_q + (y_0 + y_1 + y_2 + y_3), which is 2 M4 x_q + the other
    quarters' M4 x_q'."""
    y = [v for q in range(4) for v in matvec(M4, x[4 * q: 4 * q + 4])]
    sums = [sum(y[4 * q + j] for q in range(4)) for j in range(4)]
    return [(y[i] + sums[i % 4]) % P for i in range(WIDTH)]


def internal_layer(x: Sequence[int]) -> list[int]:
    """M_I x = (sum of x) + mu_i x_i, element by element."""
    total = sum(x)
    return [(total + mu * v) % P for mu, v in zip(INTERNAL_DIAGONAL, x)]


def sbox(v: int) -> int:
    return pow(v, SBOX_DEGREE, P)


def round_states(state: Sequence[int]) -> list[list[int]]:
    """The states pi(state) passes through: after the first M_E, then after
    each of the 4 + 13 + 4 rounds in order (22 states; the last is
    pi(state)).  The record lane's AIR keeps some of them as columns
    (prover/poseidon2_air.py), so the rounds are written here once."""
    me = external_matrix()
    mi = internal_matrix()
    x = matvec(me, check_state(state))
    out = [x]
    half = FULL_ROUNDS // 2
    for c in FULL_ROUND_CONSTANTS[:half]:
        x = matvec(me, [sbox((v + k) % P) for v, k in zip(x, c)])
        out.append(x)
    for d in PARTIAL_ROUND_CONSTANTS:
        x = list(x)
        x[0] = sbox((x[0] + d) % P)
        x = matvec(mi, x)
        out.append(x)
    for c in FULL_ROUND_CONSTANTS[half:]:
        x = matvec(me, [sbox((v + k) % P) for v, k in zip(x, c)])
        out.append(x)
    return out


def permute(state: Sequence[int]) -> list[int]:
    """pi(state) for one state of 16 canonical values."""
    return round_states(state)[-1]


def leaf(state: Sequence[int]) -> list[int]:
    """The record lane's leaf: (pi(x)_k + x_k) for k < 8."""
    x = check_state(state)
    return [(y + v) % P for y, v in zip(permute(x)[:LEAF_WIDTH], x)]
