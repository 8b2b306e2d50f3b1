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
from .native import ffi, lib, u32p

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


AIR_COLUMNS = lib.ZK_POSEIDON2_AIR_COLUMNS


def air_registers(states: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The record lane AIR's witness (prover/poseidon2_air.py): for each row
    x of a Montgomery-form ``(n, 16)`` array, the 274 registers pi(x)'s
    rounds pass through, Montgomery form, in the AIR's column order.
    ``out``: an ``(n, 274)`` uint32 array whose rows may be spaced wider
    (a block of columns of a trace matrix, ``trace[:, j:j + 274]``), written
    in place; else a new array.  ValueError as :func:`permute`."""
    _checked_states(states)
    n = states.shape[0]
    if out is None:
        out = np.empty((n, AIR_COLUMNS), dtype=np.uint32)
    elif (out.dtype != np.uint32 or out.shape != (n, AIR_COLUMNS) or out.strides[1] != 4
          or out.strides[0] % 4 or not out.flags.writeable):
        raise ValueError(f"out must be a writeable uint32 ({n}, {AIR_COLUMNS}) array with "
                         f"contiguous columns, got {out.dtype} {out.shape} strides {out.strides}")
    if np.shares_memory(out, states):
        raise ValueError("out must not overlap states")
    # a strided view has no contiguous buffer to hand over: its address
    bad = lib.zk_poseidon2_air_registers(ffi.cast("uint32_t *", out.ctypes.data), out.strides[0] // 4,
                                         u32p(states), n)
    if bad >= 0:
        _raise_unreduced(states, bad)
    return out
