"""The proof store's torn-tail boundary seen by the daemon's recovery
(docs/STORE.md, "Repair on open"): a damaged newest proof the index vouches
for is kept and proven again, superseded; a newest proof whose index entry
was never written and whose bytes a crash cut short is a torn tail, dropped
on open, and proven again.  Either way the chain is whole and verifies."""
from __future__ import annotations

import os

import pytest

from test_recovery import check_chain, flow, restart, run_live
from zksidecar.daemon.store import ProofStore


@pytest.mark.parametrize("index", ["vouches", "lost its last entry"])
def test_a_damaged_newest_proof_is_proven_again(tmp_path, index):
    run_live(tmp_path, flow(72))                      # batches 0, 1, 2
    proofs = tmp_path / "proofs"
    data = proofs / "store-000000.zkd"
    raw = bytearray(data.read_bytes())
    raw[-1000] ^= 0x40                                # inside batch 2's proof, the newest
    data.write_bytes(bytes(raw))
    if index != "vouches":                            # a crash before its index entry
        with open(proofs / "index.zki", "r+b") as f:
            f.truncate(2 * 40)
    with ProofStore(str(proofs), fsync=False, readonly=True) as store:
        assert store.has(0, 2) == (index == "vouches")
    got = restart(tmp_path)
    assert [b.batch_id for b in got.todo] == [2] and got.damaged == (index == "vouches")
    kept = data.read_bytes()
    if index == "vouches":                           # superseded: the damaged bytes stay
        assert kept[:len(raw)] == bytes(raw) and len(kept) > len(raw)
    else:                                             # a torn tail: dropped, then proven again
        assert len(kept) == len(raw) and kept != bytes(raw)      # (a proof is a function
        assert kept[:len(raw) - 1000] == bytes(raw[:-1000])       # of its inputs: same bytes)
    with ProofStore(str(proofs), fsync=False) as store:
        assert store.check(0, 2) is None and len(store) == 3 and store.repairs == []
    assert os.path.getsize(data) == len(kept)         # that writer's open changed nothing
    check_chain(tmp_path, 72)
