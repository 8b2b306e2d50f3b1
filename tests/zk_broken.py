"""Test doubles: broken zk modes (docs/ZK.md section 12).  Each is one way
an implementation of zk mode could leak, installed into the real prover
with pytest's monkeypatch for the length of one test, so that the hiding
test meant to catch it (tests/test_zk_broken_modes.py) is shown catching
it.  None of this is shipped, and nothing here is a flag of the library:
each double wraps the function that draws the randomness it breaks.

Every proof made under a double still verifies: what each breaks is
hiding, which the verifier does not check (where a double changes what
the verifier recomputes, split_r, it patches the verifier alike).

    no_salts            every Merkle tree a proof key salts has zero salts
    cloned_tree_salts   every Merkle tree of a proof takes the exec tree's
                        salt stream (masking.leaf_salts, FRI layer salts)
    cloned_leaf_salts   every lane row, so every record leaf, takes row 0's
                        salt (zk_lane.LaneRandomness)
    reused_masks        a trace matrix's mask is a function of its name
                        alone: every proof of a chain masks it alike
    shared_column_masks every column of a matrix takes the same mask
    short_state_mask    the chained state's mask has fewer coefficients
                        than h (the rest zero)
    split_r             R~'s four coordinates take independent DEEP
                        coefficients, forced F_p-dependent (c_3 = c_0)
    ordered_trades      trade leaves in MATCH order, the dummies after
"""
from __future__ import annotations

import hashlib

import numpy as np

from zksidecar.prover import domain, masking
from zksidecar.prover import prove as P
from zksidecar.prover import verify as V
from zksidecar.prover.masking import Mask
from zksidecar.prover.orderbook import zk_lane

#: the exec tree's salt label: the stream cloned_tree_salts gives every tree
EXEC = "ops.exec"
#: the key reused_masks derives every trace mask from, in place of the proof key
REUSED_KEY = hashlib.sha256(b"tests/zk_broken.py: one key for every proof's masks").digest()


def _tree_salts(monkeypatch, salts) -> None:
    """Every tree's leaf salts from `salts(real leaf_salts, key, leaves)`:
    each trace matrix's and the quotient's (masking.leaf_salts, as
    Mask.derive and prove call it) and each FRI layer's."""
    real = masking.leaf_salts

    def tree(key: bytes, label, leaves: int) -> np.ndarray:
        return salts(real, key, leaves)

    monkeypatch.setattr(masking, "leaf_salts", tree)
    monkeypatch.setattr(P, "leaf_salts", tree)
    monkeypatch.setattr(P, "fri_layer_salts", lambda key, layer, leaves: salts(real, key, leaves))


def no_salts(monkeypatch) -> None:
    """Every tree's salts zero: a sibling digest is then the hash of a
    masked row alone."""
    _tree_salts(monkeypatch, lambda real, key, leaves: np.zeros_like(real(key, EXEC, leaves)))


def cloned_tree_salts(monkeypatch) -> None:
    """Every tree a proof key salts (each trace matrix's, the quotient's,
    each FRI layer's) takes the salt stream of the exec tree: leaf j of
    every tree is salted alike.  A chained state's tree, salted under its
    state key, takes that key's stream of the same label."""
    _tree_salts(monkeypatch, lambda real, key, leaves: real(key, EXEC, leaves))


def _lane_randomness(monkeypatch, edit) -> None:
    """zk_lane.LaneRandomness.derive, its result edited by `edit` (the
    prover and a receipt's maker both derive through it)."""
    real = zk_lane.LaneRandomness.derive.__func__

    def derive(cls, batch_key: bytes, n_ops: int, trace_length: int):
        rand = real(cls, batch_key, n_ops, trace_length)
        edit(rand)
        return rand

    monkeypatch.setattr(zk_lane.LaneRandomness, "derive", classmethod(derive))


def cloned_leaf_salts(monkeypatch) -> None:
    """Every lane row takes row 0's salt: every published leaf, operation,
    trade or dummy, is salted with the salt a receipt of operation 0
    reveals."""
    def clone(rand) -> None:
        rand.salts = np.repeat(rand.salts[:1], len(rand.salts), axis=0)

    _lane_randomness(monkeypatch, clone)


def ordered_trades(monkeypatch) -> None:
    """The trade leaves in MATCH order on the first trade slots, the dummies
    after them (the order review finding 6 removed): trade k at slot k."""
    def in_match_order(rand) -> None:
        rand.order = np.arange(len(rand.order), dtype=rand.order.dtype)

    _lane_randomness(monkeypatch, in_match_order)


def _proof_masks(monkeypatch, edit) -> None:
    """masking.Mask.derive for the masks a proof key draws (label: a
    matrix name), its coefficients replaced by `edit(cls, key, label,
    width, h, log_m)`; a chained state's (label: a list) as it is."""
    real = Mask.derive.__func__

    def derive(cls, key, label, width, h, log_m):
        mask = real(cls, key, label, width, h, log_m)
        if not isinstance(label, str):
            return mask
        return cls(edit(real, cls, key, label, width, h, log_m), mask.salts)

    monkeypatch.setattr(Mask, "derive", classmethod(derive))


def reused_masks(monkeypatch) -> None:
    """Each trace matrix's mask (exec, lane, stamp, aux) drawn from one
    fixed key and its name, not from the proof key: batch b + 1's masks are
    batch b's (a proof key that forgot the transcript header and the
    witness).  The salts stay the proof key's."""
    _proof_masks(monkeypatch, lambda real, cls, key, label, width, h, log_m:
                 real(cls, REUSED_KEY, label, width, h, log_m).coeffs)


def shared_column_masks(monkeypatch) -> None:
    """Every column of a trace matrix masked with the same r (one column's
    draw, repeated): the proof's masks as they would be if r were drawn
    per matrix rather than per column."""
    _proof_masks(monkeypatch, lambda real, cls, key, label, width, h, log_m:
                 np.ascontiguousarray(np.repeat(real(cls, key, label, 1, h, log_m).coeffs, width, axis=1)))


def short_state_mask(monkeypatch, coefficients: int) -> None:
    """The chained state's mask r of degree < `coefficients` instead of h
    (its coefficients from there on zero, so every check of h still
    passes): both proofs that open the state see the short mask."""
    real = Mask.for_state.__func__

    def for_state(cls, state, width, h, log_m):
        mask = real(cls, state, width, coefficients, log_m)
        coeffs = np.concatenate([mask.coeffs, np.zeros((h - coefficients, mask.width), dtype=np.uint32)])
        return cls(np.ascontiguousarray(coeffs), mask.salts)

    monkeypatch.setattr(Mask, "for_state", classmethod(for_state))


def split_r(monkeypatch) -> None:
    """R~'s four base coordinates take the independent DEEP coefficients of
    four base columns (not (gamma, gamma u, gamma u^2, gamma u^3)), and the
    fourth is set equal to the first: coefficients that are F_p-dependent,
    as independent draws are with probability ~2^-31 (docs/ZK.md 5.5).
    The prover and the verifier both draw them so, and the proof verifies."""
    real = domain.deep_coefficients

    def deep(tr, layouts, links, zk=False):
        groups = real(tr, layouts, links, False)
        if zk:
            for d in range(len(groups)):
                quotient = groups[d][0][1][-1][1]       # the quotient matrix, last of the z group
                quotient[-1] = quotient[-4]
        return groups

    monkeypatch.setattr(P, "deep_coefficients", deep)
    monkeypatch.setattr(V, "deep_coefficients", deep)
