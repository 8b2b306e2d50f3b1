"""Test helpers for tests run in both proof modes (transparent and zk).

zk mode's randomness comes from keys: here a fixed test batch key and, for
each exported segment, a state key derived from it under the segment's
name (a store derives them with prover/zk_keys.py; these are test keys
only, never a store's).
"""
from __future__ import annotations

import dataclasses

import pytest

from zksidecar.prover import zk_keys
from zksidecar.prover.masking import StateKey
from zksidecar.prover.prove import prove
from zksidecar.prover.statement import as_statement

#: the test batch key (zk_keys.batch_key's place)
KEY = bytes(range(32))


def zk(opts, queries: int = 4):
    """`opts` in zk mode with `queries` queries (h = 2q + 20, or 4q + 20 for
    a chained state read on the next row, must fit the test's trace: 4
    queries, h = 28 or 36, fit 2^5 rows at degree <= 2 and 2^7 at degree 3;
    the hiding figures of such tests are zero, as their security's)."""
    return dataclasses.replace(opts, zk=True, num_queries=queries)


def modes(opts, queries: int = 4) -> list:
    """pytest params: `opts` as given (transparent) and in zk mode."""
    return [pytest.param(opts, id="transparent"), pytest.param(zk(opts, queries), id="zk")]


def state_key(name: str, key: bytes = KEY) -> bytes:
    """The test state key of an exported segment."""
    return zk_keys.derive(key, ("test-state", name))


def prove_in(subject, traces, opts, key: bytes = KEY, **kw):
    """prove(), with zk mode's keys when `opts` is zk: the batch key and a
    state key for every exported segment (with its table's digest)."""
    if opts.zk:
        st = as_statement(subject)
        kw.setdefault("zk_key", key)
        names = [st.matrix_name(d, seg.name) for d, dom in enumerate(st.domains)
                 for seg in dom.air.main_segments if seg.exported]
        kw.setdefault("state_keys", {name: StateKey.of(state_key(name, key), traces[name]) for name in names})
    return prove(subject, traces, opts, **kw)
