"""What kind of directory a state path is, told by the names of the files
in it: a journal, a proof store, or a chain `zksidecar export` (or `store
archive`) wrote (docs/DEPLOY.md, "What the daemon checks before it starts").

The daemon makes its journal and its store where the configuration says,
so a [journal] dir and a [store] dir given the wrong way round, or a
[store] dir that is an exported chain, would be taken for new, empty
directories: the daemon would start a new journal and store beside the
files it was meant to continue, ignoring them.  The configuration check
(daemon/config.py) refuses such a directory instead, naming the files it
found.  An empty directory, or one holding only its own kind's files, is
what the daemon expects.
"""
from __future__ import annotations

import os
import re

from ..prover.orderbook import manifest
from . import journal, snapshot, store

JOURNAL, STORE, CHAIN = "a journal", "a proof store", "an exported chain"

_CORRUPT = r"(\.corrupt-\d+)?"          # what recovery or `journal repair` set aside keeps its kind
_MARKS = {
    JOURNAL: re.compile(rf"{re.escape(journal.PREFIX)}-\d{{6,}}{re.escape(journal.SUFFIX)}{_CORRUPT}|"
                        rf"{re.escape(snapshot.PREFIX)}-\d{{6,}}-\d{{12,}}{re.escape(snapshot.SUFFIX)}{_CORRUPT}|"
                        rf"{re.escape(journal.ZK_MARK_NAME)}"),
    STORE: re.compile(rf"{re.escape(store.PREFIX)}-\d{{6,}}{re.escape(store.SUFFIX)}|{re.escape(store.INDEX_NAME)}"),
    CHAIN: re.compile(rf"{re.escape(manifest.NAME)}|{manifest.BATCH_FILE}"),
}

#: the kinds a directory of each role must not hold
FOREIGN = {JOURNAL: (STORE, CHAIN), STORE: (JOURNAL, CHAIN)}


def kinds_in(directory: str) -> dict[str, list[str]]:
    """Each kind whose files `directory` holds -> their names, sorted ({}
    for an empty or missing directory, or one of other files only)."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return {}
    found: dict[str, list[str]] = {}
    for name in names:
        for kind, mark in _MARKS.items():
            if mark.fullmatch(name):
                found.setdefault(kind, []).append(name)
    return found


def foreign(role: str, directory: str) -> dict[str, list[str]]:
    """The kinds `directory`, to be used as `role` (JOURNAL or STORE),
    holds files of and must not: kind -> their names."""
    return {k: v for k, v in kinds_in(directory).items() if k in FOREIGN[role]}


def named(names: list[str]) -> str:
    """A few of `names`, for a message."""
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
