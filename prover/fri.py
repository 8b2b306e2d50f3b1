"""FRI: a proof that a committed function is close to a low-degree polynomial.

Layer 0 is f, evaluated on the coset D = s * <w_M> and stored in
**bit-reversed order**: position j holds f(s * w_M^rev(j)).  In that order the
F points x * w_F^k of a coset of the order-F subgroup sit at F consecutive
positions, so one Merkle leaf holds exactly the values a fold needs, and the
folded layer (on s^F * <w_M^F>) is again in bit-reversed order.

Folding by F with challenge beta maps f(y) = sum_{i<F} y^i f_i(y^F) to
g(x) = sum_i beta^i f_i(x): done as log2(F) binary folds with beta, beta^2,
beta^4, ..., each
    g(x^2) = (f(x) + f(-x)) / 2 + beta * (f(x) - f(-x)) / (2x),
where x and -x are adjacent positions (2i, 2i+1).

Layers fold until the degree bound is at most the configured final degree
(or below the folding factor); the prover then sends the final polynomial's
coefficients and the verifier evaluates it at the query points.

**Inputs at lower heights.** Further functions of the same rate, each on a
domain of M_d = M / 2^s points (in bit-reversed order too), join the folding
where the folded vector reaches their height: there its degree bound is
theirs.  A fresh challenge gamma_d is drawn and the vector becomes
fold + gamma_d * f_d before it is committed (or interpolated as the final
polynomial).  The layers are scheduled so a layer boundary falls at every
input's height (`layer_schedule`): between two heights s binary folds make
ceil(s / f) layers, the first of arity 2^(s - f (ceil(s / f) - 1)), the rest
of the folding factor 2^f; below the lowest height the rule above.  With no
inputs this is the plain schedule.  Why the cosets need not match (the folded
vector lies on s^(2^s) <w_(M_d)>, the input on s <w_(M_d)>) and why the sum
is sound: docs/STATE_DOMAIN.md, "FRI across heights".
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from . import extension as E
from . import field as F
from . import ntt
from .merkle import MerkleTree, hash_rows
from .merkle_batch import open_batch, verify_batch
from .params import ProofOptions
from .transcript import Transcript

INV2 = F.encode_int(pow(2, F.P - 2, F.P))


# ------------------------------------------------------------ geometry --

def bit_reverse_ints(x: np.ndarray, bits: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    out = np.zeros_like(x)
    for b in range(bits):
        out |= ((x >> b) & 1) << (bits - 1 - b)
    return out


def pow_points(base: int, exps: np.ndarray) -> np.ndarray:
    """base^e (base canonical, result Montgomery) for each integer e >= 0."""
    exps = np.asarray(exps, dtype=np.int64)
    result = np.full(exps.shape, F.ONE, dtype=np.uint32)
    b = np.full(exps.shape, F.encode_int(base), dtype=np.uint32)
    top = int(exps.max()).bit_length() if exps.size else 0
    for bit in range(top):
        mask = ((exps >> bit) & 1).astype(bool)
        result = np.where(mask, F.mul(result, b), result)
        b = F.mul(b, b)
    return result


def points(log_m: int, shift: int, positions: np.ndarray) -> np.ndarray:
    """Domain points at bit-reversed positions of s * <w_M>, M = 2^log_m."""
    w = F.two_adic_generator(log_m)
    x = pow_points(w, bit_reverse_ints(positions, log_m))
    return F.mul_scalar(x, F.encode_int(shift))


def query_points(log_m: int, shift: int, positions: np.ndarray) -> np.ndarray:
    """`points` for the verifier's few positions (a query set, its folded
    leaves), in numpy's uint64 arithmetic rather than pow_points' two kernel
    calls per exponent bit: the exponent rev(i) bit-reversed a byte at a
    time, then w^e as the product of one table entry per byte of e.  The
    same values."""
    pos = np.asarray(positions, dtype=np.int64)
    nbytes = (log_m + 7) // 8
    e = np.zeros(pos.shape, dtype=np.int64)
    for j in range(nbytes):             # byte j of i, reversed, is byte nbytes-1-j of rev
        e |= _REV8[(pos >> (8 * j)) & 0xFF] << (8 * (nbytes - 1 - j))
    e >>= 8 * nbytes - log_m
    x = np.full(pos.shape, F.encode_int(shift), dtype=np.uint64)   # shift R: stays Montgomery
    for j, table in enumerate(_byte_powers(log_m)):
        x = x * table[(e >> (8 * j)) & 0xFF] % F.P      # both below 2^31: below 2^62
    return x.astype(np.uint32)


#: every byte bit-reversed
_REV8 = np.array([int(f"{b:08b}"[::-1], 2) for b in range(256)], dtype=np.int64)


@functools.lru_cache(maxsize=32)
def _byte_powers(log_m: int) -> tuple[np.ndarray, ...]:
    """w_M^(k 256^j) for k < 256, one table per byte j of an exponent below
    M = 2^log_m (canonical, uint64)."""
    w = F.two_adic_generator(log_m)
    tables = []
    for j in range((log_m + 7) // 8):
        base = pow(w, 1 << (8 * j), F.P)
        t = [1]
        for _ in range(255):
            t.append(t[-1] * base % F.P)
        table = np.array(t, dtype=np.uint64)
        table.flags.writeable = False
        tables.append(table)
    return tuple(tables)


@dataclass(frozen=True)
class Schedule:
    """What a FRI proof folds, from its shape alone (prover and verifier
    derive it; a proof does not carry it): log2 of each committed layer's
    arity, the final polynomial's degree bound, and for each input (in the
    caller's order) the layer it joins, len(log_arities) meaning the final
    vector."""

    log_arities: tuple[int, ...]
    final_degree: int
    joins: tuple[int, ...] = ()

    def arity(self, layer: int) -> int:
        return 1 << self.log_arities[layer]


def layer_schedule(options: ProofOptions, degree_bound: int, log_m: int,
                   input_heights: tuple[int, ...] | list[int] = ()) -> Schedule:
    """The layers folding a function of `degree_bound` on 2^log_m points,
    with inputs of the same rate on 2^h points for each h of
    `input_heights` (log2 sizes, at most log_m; the degree bound of an
    input is 2^h / blowup, at least 1).  ValueError for a height outside."""
    if degree_bound < 1 or degree_bound & (degree_bound - 1) or degree_bound > 1 << log_m:
        raise ValueError(f"FRI degree bound {degree_bound} is not a power of two up to 2^{log_m}")
    log_blowup = log_m - (degree_bound.bit_length() - 1)
    for h in input_heights:
        if not log_blowup <= h <= log_m:
            raise ValueError(f"a FRI input on 2^{h} points: heights run from 2^{log_blowup} "
                             f"(degree bound 1) to 2^{log_m}")
    f = options.fri_folding_factor.bit_length() - 1
    arities: list[int] = []
    joins = [0] * len(input_heights)
    cur = log_m
    for h in sorted(set(input_heights), reverse=True):
        s = cur - h
        count = -(-s // f)
        if count:
            arities += [s - f * (count - 1)] + [f] * (count - 1)
        cur = h
        for i, hi in enumerate(input_heights):
            if hi == h:
                joins[i] = len(arities)
    degree = 1 << (cur - log_blowup)
    while degree > options.fri_max_final_degree and degree >= 1 << f:
        arities.append(f)
        degree >>= f
    return Schedule(tuple(arities), degree, tuple(joins))


def input_positions(positions: np.ndarray, log_m: int, height: int) -> np.ndarray:
    """The sorted distinct positions, on an input of 2^height points, that
    the queries at `positions` (on 2^log_m points) reach: where the verifier
    needs the input's values."""
    return np.unique(np.asarray(positions, dtype=np.int64) >> (log_m - height))


def draw_challenges(transcript: Transcript, roots: list[bytes], final: np.ndarray,
                    schedule: Schedule) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The verifier's replay of the commit phase's transcript: (betas, one per
    root; gammas, one per input), in the order `commit` draws them: before
    each layer's root, the gammas of the inputs joining it; after the last
    root, those joining the final vector, then the final polynomial."""
    gammas: list = [None] * len(schedule.joins)
    betas = []

    def join(layer: int) -> None:
        for i, j in enumerate(schedule.joins):
            if j == layer:
                gammas[i] = transcript.challenge_ext(1)[0]

    for layer, root in enumerate(roots):
        join(layer)
        transcript.absorb(b"fri-layer", root)
        betas.append(transcript.challenge_ext(1)[0])
    join(len(roots))
    transcript.absorb_array(b"fri-final", final)
    return betas, gammas


# ------------------------------------------------------------- folding --

def binary_fold(values: np.ndarray, log_m: int, shift: int, beta: np.ndarray) -> np.ndarray:
    """Fold a whole bit-reversed layer (M, 4) on s * <w_M> once: (M/2, 4)."""
    pairs = values.reshape(-1, 2, 4)
    a, b = np.ascontiguousarray(pairs[:, 0]), np.ascontiguousarray(pairs[:, 1])
    inv_2x = _inv_2x_even(log_m, shift)
    # (a + b) / 2 + beta (a - b) / 2x, each step in place (the kernels allow
    # out to alias an input): three arrays of M/2 values, not eight
    folded = F.add(a, b)
    F.mul_scalar(folded, INV2, out=folded)
    odd = F.sub(a, b, out=a)
    E.mul_scalar(E.mul_base(odd, inv_2x, out=odd), beta, out=odd)
    return F.add(folded, odd, out=folded)


@functools.lru_cache(maxsize=32)
def _inv_2x_even(log_m: int, shift: int) -> np.ndarray:
    """1 / 2x at the even positions of a bit-reversed layer on s * <w_M>: the
    same for every proof of one shape, so computed once (read-only)."""
    x = points(log_m, shift, np.arange(0, 1 << log_m, 2))
    inv = F.inv(F.add(x, x))
    inv.flags.writeable = False
    return inv


def fold_queries(leaves: np.ndarray, leaf_idx: np.ndarray, log_m: int, shift: int,
                 beta: np.ndarray, factor: int) -> np.ndarray:
    """Fold opened leaves (k, factor, 4) of a layer on s * <w_M>: the values
    (k, 4) at positions leaf_idx of the next layer."""
    vals = leaves
    b = beta
    width = factor
    k = vals.shape[0]
    # the points of the even positions leaf_idx * width + 2t: the bits of
    # leaf_idx * width and of 2t are disjoint, so in bit-reversed order
    # x = (shift w^rev(leaf_idx * width)) * w^rev(2t), one pow per leaf and
    # one per t; after a fold, the points are the squares of every other one
    half = np.arange(width // 2, dtype=np.int64)
    x = F.mul(np.repeat(query_points(log_m, shift, np.asarray(leaf_idx, dtype=np.int64) * width),
                        width // 2),
              np.tile(query_points(log_m, 1, 2 * half), k))
    while width > 1:
        pairs = vals.reshape(k, width // 2, 2, 4)
        a = np.ascontiguousarray(pairs[:, :, 0]).reshape(-1, 4)
        c = np.ascontiguousarray(pairs[:, :, 1]).reshape(-1, 4)
        if width < factor:
            x = np.ascontiguousarray(x.reshape(k, width)[:, ::2]).ravel()
            x = F.mul(x, x)
        inv_2x = F.inv(F.add(x, x))
        even = F.mul_scalar(F.add(a, c), INV2)
        odd = E.mul_scalar(E.mul_base(F.sub(a, c), inv_2x), b)
        vals = F.add(even, odd).reshape(k, width // 2, 4)
        b = E.mul(b.reshape(1, 4), b.reshape(1, 4))[0]
        shift = shift * shift % F.P
        log_m -= 1
        width //= 2
    return vals.reshape(-1, 4)


# -------------------------------------------------------------- prover --

@dataclass
class FriCommitment:
    layers: list[np.ndarray]        # bit-reversed layer values, (M_l, 4)
    trees: list[MerkleTree]
    final_coeffs: np.ndarray        # (d_final, 4), Montgomery
    schedule: Schedule
    salts: list[np.ndarray | None] = None   # per layer (leaves, 16) uint8, or None: unsalted

    @property
    def roots(self) -> list[bytes]:
        return [t.root for t in self.trees]


def commit(f: np.ndarray, degree_bound: int, options: ProofOptions, log_m: int, shift: int,
           transcript: Transcript,
           inputs: list[tuple[int, np.ndarray]] | tuple = (), schedule: Schedule | None = None,
           salts=None) -> FriCommitment:
    """The commit phase over layer 0 = f (M, 4), bit-reversed on s * <w_M>;
    `inputs` are (h, values): further functions, (2^h, 4) Montgomery,
    bit-reversed, each joining where the folding reaches 2^h points.
    `schedule` (default: layer_schedule's for these heights) fixes the
    layers and the final degree (zk mode's is proof.fri_schedule's);
    `salts(layer, leaves)`, when given, returns layer's (leaves, 16) uint8
    leaf salts (zk mode: every tree salted, docs/ZK.md 5.1)."""
    if schedule is None:
        schedule = layer_schedule(options, degree_bound, log_m, [h for h, _ in inputs])
    for h, g in inputs:
        if g.shape != (1 << h, 4):
            raise ValueError(f"a FRI input on 2^{h} points must be ({1 << h}, 4), got {g.shape}")
    layers, trees, layer_salts = [], [], []
    values = f

    def join(layer: int) -> np.ndarray:
        out = values
        for (_, g), j in zip(inputs, schedule.joins):
            if j == layer:
                gamma = transcript.challenge_ext(1)[0]
                out = F.add(out, E.mul_scalar(np.ascontiguousarray(g), gamma))
        return out

    for layer, log_arity in enumerate(schedule.log_arities):
        values = join(layer)
        leaf_salts = None if salts is None else salts(layer, values.shape[0] >> log_arity)
        tree = MerkleTree(values.reshape(-1, 4 << log_arity), leaf_salts)
        layer_salts.append(leaf_salts)
        transcript.absorb(b"fri-layer", tree.root)
        beta = transcript.challenge_ext(1)[0]
        layers.append(values)
        trees.append(tree)
        for step in range(log_arity):
            values = binary_fold(values, log_m, shift, beta)
            beta = E.mul(beta.reshape(1, 4), beta.reshape(1, 4))[0]
            shift, log_m = shift * shift % F.P, log_m - 1
    values = join(len(schedule.log_arities))
    # final polynomial: natural order, interpolate on its coset, keep d_final coefficients
    natural = ntt.bit_reverse_rows(values)
    coeffs = ntt.coset_intt(natural, shift)
    final = np.ascontiguousarray(coeffs[: schedule.final_degree])
    transcript.absorb_array(b"fri-final", final)
    return FriCommitment(layers, trees, final, schedule, layer_salts)


def open_layers(c: FriCommitment, positions: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each layer: (opened leaves (k, arity, 4) canonical, batch proof)."""
    out = []
    pos = np.asarray(positions, dtype=np.int64)
    for layer, (values, tree) in enumerate(zip(c.layers, c.trees)):
        factor = c.schedule.arity(layer)
        leaf_idx = np.unique(pos // factor)
        leaves = values.reshape(-1, factor, 4)[leaf_idx]
        out.append((F.decode(np.ascontiguousarray(leaves)), open_batch(tree, leaf_idx)))
        pos = leaf_idx
    return out


def opened_salts(c: FriCommitment, positions: np.ndarray) -> list[np.ndarray]:
    """For each layer of a salted commitment: the salts (k, 16) of the
    leaves open_layers opens, in the same order."""
    out = []
    pos = np.asarray(positions, dtype=np.int64)
    for layer, salts in enumerate(c.salts):
        leaf_idx = np.unique(pos // c.schedule.arity(layer))
        out.append(np.ascontiguousarray(salts[leaf_idx]))
        pos = leaf_idx
    return out


# ------------------------------------------------------------ verifier --

class FriError(ValueError):
    """Why a FRI proof is rejected."""


def verify(roots: list[bytes], final_coeffs: np.ndarray, openings, positions: np.ndarray,
           layer0: np.ndarray, degree_bound: int, options: ProofOptions, log_m: int,
           shift: int, betas: list[np.ndarray],
           inputs: list[tuple[int, np.ndarray]] | tuple = (), gammas: list | tuple = (),
           schedule: Schedule | None = None, salts: list[np.ndarray] | None = None) -> None:
    """Check the query phase; `layer0` holds f's values (k, 4, Montgomery) at
    the sorted distinct `positions`, computed by the caller (DEEP); each of
    `inputs` is (h, values): an input's values (Montgomery) at
    input_positions(positions, log_m, h), with its gamma from
    draw_challenges; `schedule` and `salts` (each layer's opened leaves'
    salts, (k_l, 16) uint8) as commit's.  Raises FriError on any mismatch."""
    if schedule is None:
        try:
            schedule = layer_schedule(options, degree_bound, log_m, [h for h, _ in inputs])
        except ValueError as exc:
            raise FriError(str(exc)) from None
    if salts is not None and len(salts) != len(roots):
        raise FriError(f"salts for {len(salts)} FRI layers, the proof has {len(roots)}")
    if len(roots) != len(schedule.log_arities) or len(openings) != len(roots) \
            or len(betas) != len(roots):
        raise FriError("wrong number of FRI layers")
    if len(gammas) != len(inputs):
        raise FriError(f"{len(gammas)} input challenges for {len(inputs)} inputs")
    if final_coeffs.shape != (schedule.final_degree, 4):
        raise FriError("final polynomial has the wrong degree")
    pos = np.asarray(positions, dtype=np.int64)
    expected = layer0

    def join(layer: int, pos: np.ndarray, expected: np.ndarray) -> np.ndarray:
        for (h, vals), j, gamma in zip(inputs, schedule.joins, gammas):
            if j == layer:
                if vals.shape != (pos.size, 4):
                    raise FriError(f"the input on 2^{h} points has {vals.shape[0]} values for "
                                   f"{pos.size} positions")
                expected = F.add(expected, E.mul_scalar(np.ascontiguousarray(vals), gamma))
        return expected

    for layer, (root, (leaves, proof), beta) in enumerate(zip(roots, openings, betas)):
        expected = join(layer, pos, expected)
        factor = schedule.arity(layer)
        leaf_idx = np.unique(pos // factor)
        if leaves.shape != (leaf_idx.size, factor, 4):
            raise FriError(f"layer {layer}: wrong number of opened leaves")
        mont = F.encode(leaves)
        leaf_salts = None
        if salts is not None:
            leaf_salts = salts[layer]
            if leaf_salts.dtype != np.uint8 or leaf_salts.shape != (leaf_idx.size, 16):
                raise FriError(f"layer {layer}: salts {leaf_salts.dtype} {leaf_salts.shape} for "
                               f"{leaf_idx.size} opened leaves")
            leaf_salts = np.ascontiguousarray(leaf_salts)
        digests = hash_rows(mont.reshape(leaf_idx.size, 4 * factor), leaf_salts)
        if not verify_batch(root, log_m - schedule.log_arities[layer], leaf_idx, digests, proof):
            raise FriError(f"layer {layer}: Merkle opening does not match the commitment")
        slot = np.searchsorted(leaf_idx, pos // factor)
        if not (mont[slot, pos % factor] == expected).all():
            raise FriError(f"layer {layer}: opened values disagree with the previous layer")
        expected_next = fold_queries(mont, leaf_idx, log_m, shift, beta, factor)
        shift = pow(shift, factor, F.P)
        log_m -= schedule.log_arities[layer]
        pos, expected = leaf_idx, expected_next
    expected = join(len(schedule.log_arities), pos, expected)
    # the final polynomial at the remaining points: sum_j c_j x^j, as one
    # combination of the rows of the points' powers (x^0 .. x^(d-1), by
    # doubling) with the extension coefficients
    x = query_points(log_m, shift, pos)
    d = final_coeffs.shape[0]
    powers = np.empty((pos.size, d), dtype=np.uint32)
    powers[:, 0] = F.ONE
    filled, x_filled = 1, x                 # x_filled = x^filled
    while filled < d:
        take = min(filled, d - filled)
        powers[:, filled:filled + take] = F.mul(
            np.ascontiguousarray(powers[:, :take]),
            np.ascontiguousarray(np.broadcast_to(x_filled[:, None], (pos.size, take))))
        filled += take
        x_filled = F.mul(x_filled, x_filled)
    acc = E.combine_rows(powers, np.ascontiguousarray(final_coeffs))
    if not (acc == expected).all():
        raise FriError("final polynomial disagrees with the last layer")
