"""Poseidon2 over BabyBear, width 16, on many states at once (the C kernel).

The permutation is the one :mod:`.poseidon2_reference` defines in plain
Python (docs/POSEIDON2.md): this module runs it in C, 16 states at a time on
the AVX-512 path, 8 on AVX2, one on the scalar path, with the same result
on every path.  The zk record lane hashes tens of thousands of records a
batch through it (docs/ZK.md, section 3).

States are rows of a ``(n, 16)`` uint32 array in Montgomery form, like every
other kernel's arrays (:mod:`.field`): ``field.encode`` values in,
``field.decode`` results out.
"""
from __future__ import annotations

import numpy as np

from .field import P, checked_array, output_array
from .native import lib, u32p

WIDTH = lib.ZK_POSEIDON2_WIDTH
LEAF_WIDTH = lib.ZK_POSEIDON2_LEAF_WIDTH


def _checked_states(states: np.ndarray) -> np.ndarray:
    checked_array(states, "states")
    if states.ndim != 2 or states.shape[1] != WIDTH:
        raise ValueError(f"states must have shape (n, {WIDTH}), got {states.shape}")
    return states


def _raise_unreduced(states: np.ndarray, flat: int) -> None:
    row, col = divmod(flat, WIDTH)
    raise ValueError(f"state {row}, element {col}: {int(states[row, col])} is not a field element "
                     f"in Montgomery form (every word must be below p = {P})")


def permute(states: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """pi of each row of a Montgomery-form ``(n, 16)`` array; ``out`` may be
    ``states`` itself.  ValueError naming the first word >= p (nothing is
    written then)."""
    _checked_states(states)
    out = output_array(out, states)
    if np.shares_memory(out, states) and out.ctypes.data != states.ctypes.data:
        raise ValueError("out must be states itself or not overlap it")
    bad = lib.zk_poseidon2_permute(u32p(out), u32p(states), states.shape[0])
    if bad >= 0:
        _raise_unreduced(states, bad)
    return out


def leaf(states: np.ndarray) -> np.ndarray:
    """The record lane's leaf of each row x: ``(pi(x)_k + x_k)`` for k < 8,
    an ``(n, 8)`` Montgomery-form array.  ValueError as :func:`permute`."""
    _checked_states(states)
    out = np.empty((states.shape[0], LEAF_WIDTH), dtype=np.uint32)
    bad = lib.zk_poseidon2_leaf(u32p(out), u32p(states), states.shape[0])
    if bad >= 0:
        _raise_unreduced(states, bad)
    return out
