"""Which start refusals a retry cannot fix (docs/DAEMON.md, "When things
go wrong").

A daemon that cannot start exits 1, and systemd's `Restart=on-failure`
starts it again: right for what may pass by then (a ring or admin socket
another daemon holds, a lock, an I/O error, a full disk).  Some refusals
judge the state on disk, whole and readable, against the configuration
or this release: a store or journal of the other proof mode, a journal
whose batches do not fit the configured trace, a chain an earlier release
made.  Every retry meets the same state under the same configuration, so
these exit 2, as a refused configuration does, and the units'
`RestartPreventExitStatus=2` leaves them to the operator instead of
restarting the daemon in a loop.
"""
from __future__ import annotations

#: the exit status of a start only the operator can fix: a refused
#: configuration, or state it names that it cannot use (systemd/zksidecar.service)
NEEDS_OPERATOR = 2


class StartRefusal:
    """Mixed into an error that can refuse the daemon's start.  Raised
    with `unusable=True`, it says the state on disk cannot be used with
    this configuration or release: the daemon exits NEEDS_OPERATOR, not 1."""

    def __init__(self, *args, unusable: bool = False):
        super().__init__(*args)
        self.unusable = unusable


def needs_operator(exc: BaseException) -> bool:
    """Is `exc`, which refused a start, one no retry can fix?"""
    return isinstance(exc, StartRefusal) and exc.unusable
