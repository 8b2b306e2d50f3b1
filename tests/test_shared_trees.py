"""One tree per round (docs/STATE_DOMAIN.md step 4; docs/MERKLE.md "Shared
trees"): a shared tree built in C against the pure-Python reference's, with
matrices of mixed heights (equal heights, s = 1..6, several at one height);
batch openings of mixed heights verified in C, and what they reject (a
short row tampered, moved to another position, a tall row tampered, too
few or too many injected digests); in a two-domain proof, a tampered or
moved short row and a tampered tall row rejected, the trees a round
shares, and a tree proof's claimed length refused at decode."""
import struct

import numpy as np
import pytest

from zksidecar.prover import field as F
from zksidecar.prover import ntt, params
from zksidecar.prover.examples import memory
from zksidecar.prover.examples import memory_domains as md
from zksidecar.prover.merkle import MerkleTree, commit_lde, hash_rows, lde_leaves, sha256_messages
from zksidecar.prover.merkle_batch import open_batch, verify_shared
from zksidecar.prover.proof import Proof, ProofFormatError, statement_trees
from zksidecar.prover.prove import SegmentCommitment, prove
from zksidecar.prover.reference import Tree, reversed_row_digests
from zksidecar.prover.sha256_reference import merkle_node
from zksidecar.prover.verify import VerificationError, verify

OPTS = params.TESTING
LB = OPTS.log_blowup


def _digests(rng, rows: int) -> np.ndarray:
    return rng.integers(0, 256, (rows, 32), dtype=np.uint8)


def _as_bytes(a: np.ndarray) -> list[bytes]:
    return [row.tobytes() for row in a]


# heights as log2 of rows: the first the tallest; equal heights, every s = 1..6,
# several matrices at one height, a tree of one leaf's worth of short rows
HEIGHTS = [(6,), (6, 6), (6, 5), (6, 4), (6, 3), (6, 2), (6, 1), (6, 0), (7, 7, 4, 4, 1),
           (5, 3, 5, 3, 3)]


@pytest.mark.parametrize("heights", HEIGHTS)
def test_shared_tree_matches_the_reference(each_isa, heights):
    rng = np.random.default_rng(sum(heights))
    parts = [_digests(rng, 1 << h) for h in heights]
    tree = MerkleTree.shared(parts)
    ref = Tree.shared([_as_bytes(p) for p in parts])
    assert tree.root == ref.root
    assert _as_bytes(tree.nodes[1:]) == ref.nodes[1:]


def test_a_joining_level_compresses_its_node_once_more_with_the_joined_digest(each_isa):
    """docs/MERKLE.md, "Shared trees": where a matrix joins, node i is
    N(N(left, right), joined digest at i), N one compression."""
    rng = np.random.default_rng(4)
    tall, short = _digests(rng, 4), _digests(rng, 2)
    left, right = (merkle_node(tall[2 * i].tobytes(), tall[2 * i + 1].tobytes()) for i in range(2))
    joined = [merkle_node(node, short[i].tobytes()) for i, node in enumerate([left, right])]
    tree = MerkleTree.shared([tall, short])
    assert _as_bytes(tree.nodes[2:4]) == joined
    assert tree.root == merkle_node(*joined)


def test_a_lone_matrix_is_a_plain_tree_and_one_height_combines_by_hash():
    rng = np.random.default_rng(1)
    a, b = _digests(rng, 16), _digests(rng, 16)
    assert MerkleTree.shared([a]).root == MerkleTree.from_leaves(a).root
    both = sha256_messages(np.ascontiguousarray(np.concatenate([a, b], axis=1)))
    assert MerkleTree.shared([a, b]).root == MerkleTree.from_leaves(both).root
    # the order of the matrices in the tree matters
    assert MerkleTree.shared([a, b]).root != MerkleTree.shared([b, a]).root


def test_committed_leaves_are_bit_reversed_rows():
    rng = np.random.default_rng(2)
    evals = F.encode(rng.integers(0, F.P, (16, 5)).astype(np.uint32))
    lde, leaves = lde_leaves(evals, 2, 31)
    np.testing.assert_array_equal(leaves, hash_rows(ntt.bit_reverse_rows(lde)))
    canonical = [[int(v) for v in col] for col in F.decode(lde).T]
    assert _as_bytes(leaves) == reversed_row_digests(canonical)
    assert commit_lde(evals, 2, 31)[1].root == MerkleTree.from_leaves(leaves).root


def _opening(heights, positions, seed=3):
    """A shared tree, its batch opening at `positions` (tall leaf indices)
    and each matrix's (level, digests at its known nodes)."""
    rng = np.random.default_rng(seed)
    parts = [_digests(rng, 1 << h) for h in heights]
    tree = MerkleTree.shared(parts)
    depth = max(heights)
    idx = np.unique(np.asarray(positions, dtype=np.int64))
    opened = [(depth - h, p[np.unique(idx >> (depth - h))]) for h, p in zip(heights, parts)]
    return tree, depth, idx, opened, open_batch(tree, idx), parts


@pytest.mark.parametrize("heights", HEIGHTS)
def test_batch_openings_of_mixed_heights(each_isa, heights):
    depth = max(heights)
    rng = np.random.default_rng(depth)
    positions = rng.integers(0, 1 << depth, 7)
    tree, depth, idx, opened, proof, parts = _opening(heights, positions)
    ref = Tree.shared([_as_bytes(p) for p in parts])
    assert ref.root == tree.root and ref.open_batch(idx.tolist()) == _as_bytes(proof)
    assert verify_shared(tree.root, depth, idx, opened, proof)


def _tampered(opened, k, row, flip=1):
    out = [(level, d.copy()) for level, d in opened]
    out[k][1][row, 0] ^= flip
    return out


def test_batch_openings_reject_a_tampered_or_moved_row():
    heights = (8, 8, 5, 2)
    tree, depth, idx, opened, proof, _ = _opening(heights, [3, 40, 41, 130, 200, 255])
    assert verify_shared(tree.root, depth, idx, opened, proof)
    # a tall row, a row of the other tall matrix, a short row, the shortest row
    for k in range(len(heights)):
        assert not verify_shared(tree.root, depth, idx, _tampered(opened, k, 0), proof)
    # a short row moved to another position: its digests swapped
    level, short = opened[2]
    assert short.shape[0] >= 2
    moved = list(opened)
    moved[2] = (level, short[::-1].copy())
    assert not verify_shared(tree.root, depth, idx, moved, proof)
    # a short matrix given at another level
    assert not verify_shared(tree.root, depth, idx, [opened[0], opened[1], (4, opened[2][1]), opened[3]],
                             proof)
    # one injected digest too few or too many
    assert not verify_shared(tree.root, depth, idx, opened[:2] + [(level, short[:-1].copy()), opened[3]],
                             proof)
    assert not verify_shared(tree.root, depth, idx,
                             opened[:2] + [(level, np.concatenate([short, short[:1]])), opened[3]], proof)
    # the short matrix left out
    assert not verify_shared(tree.root, depth, idx, opened[:2] + opened[3:], proof)


# ------------------------------------------------------------ in a proof --

def _prove(cells: int, steps: int, seed: int = 1):
    st = md.memory_statement(cells, steps)
    run = md.run([0] * cells, memory.random_ops(cells, steps - 3, seed=seed), steps)
    init = SegmentCommitment.commit(run.traces["cells.init"], LB)
    res = prove(st, run.traces, OPTS, external={"cells.init": (init, None)})
    return st, res, {"cells.init": (init.root, None)}


def test_a_round_shares_one_tree_and_chained_segments_keep_theirs():
    st, res, external = _prove(64, 16)
    trees = statement_trees(st)
    assert [(t.name, [name for _, name in t.matrices]) for t in trees] == [
        ("cells.init", ["cells.init"]), ("cells.final", ["cells.final"]),
        ("main round", ["cells.stamps", "steps.ops"]), ("aux round", ["cells.aux", "steps.aux"]),
        ("quotient round", ["cells.quotient", "steps.quotient"])]
    assert set(res.proof.roots) == {"cells.final", "main round", "aux round", "quotient round"}
    assert res.commitments["cells.stamps"].tree is res.commitments["steps.ops"].tree
    verify(st, res.proof, external=external, min_security=0)


@pytest.mark.parametrize("name", ["steps.ops", "steps.aux", "steps.quotient", "cells.stamps", "cells.aux"])
def test_a_tampered_row_of_a_shared_tree_is_rejected(name):
    st, res, external = _prove(64, 16)
    rows = res.proof.rows[name]
    rows[0, 0] = (int(rows[0, 0]) + 1) % F.P
    with pytest.raises(VerificationError, match="round tree .*opened rows do not match the commitment"):
        verify(st, res.proof, external=external, min_security=0)


def test_a_short_row_moved_to_another_position_is_rejected():
    st, res, external = _prove(64, 16)
    rows = res.proof.rows["steps.ops"]
    assert rows.shape[0] >= 2
    rows[[0, 1]] = rows[[1, 0]]
    with pytest.raises(VerificationError, match=r"main round tree \(cells.stamps, steps.ops\)"):
        verify(st, res.proof, external=external, min_security=0)


def test_a_tree_proof_longer_than_its_openings_allow_is_refused_at_decode():
    st, res, _ = _prove(32, 16)
    raw = res.proof.to_bytes(st)
    trees = statement_trees(st)
    # the first tree proof's length field sits after every domain's rows
    proof = res.proof
    head = len(raw) - sum(4 + 32 * len(proof.row_proofs[t.name]) for t in trees) \
        - sum(2 + 4 * lv.size + 4 + 32 * len(pf) for lv, pf in zip(proof.fri_leaves, proof.fri_proofs))
    (n,) = struct.unpack_from("<I", raw, head)
    assert n == len(proof.row_proofs[trees[0].name])
    forged = raw[:head] + struct.pack("<I", 1 << 30) + raw[head + 4:]
    with pytest.raises(ProofFormatError, match="cells.init tree proof claims 1073741824 digests"):
        Proof.from_bytes(forged, st)
