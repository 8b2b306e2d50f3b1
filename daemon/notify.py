"""The daemon's side of systemd's readiness protocol (sd_notify), in plain Python.

systemd starts a `Type=notify` service with `$NOTIFY_SOCKET` naming an
AF_UNIX datagram socket; the service tells it how it is doing by sending
newline-separated `KEY=value` assignments there (man sd_notify):

    READY=1                 start-up finished (journal replayed, rings open)
    STATUS=text             one line shown by `systemctl status`
    WATCHDOG=1              keep-alive; missing it for WatchdogSec= restarts us
    STOPPING=1              shutdown began (drain, final batch, close)
    EXTEND_TIMEOUT_USEC=n   a long start (a big journal replay) still in progress
    MAINPID=n               the service's main process, if not the one started

A socket path starting with '@' is in the abstract namespace: the '@'
stands for a leading NUL byte.  `$WATCHDOG_USEC` is the watchdog timeout in
microseconds; `$WATCHDOG_PID`, when set, names the one process that must
ping it, so a child that inherited the environment stays quiet.

We speak the protocol ourselves (it is one `sendto`) rather than depend on
libsystemd or a wrapper package.  Telling systemd is never worth hurting
the daemon for: with no `$NOTIFY_SOCKET` every call is a no-op, and a send
that fails is logged (once per run of failures) and never raised.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

# A datagram to systemd only blocks when its receive queue is full, i.e. when
# PID 1 is stuck.  Bound the wait: the callers include the asyncio loop and
# the ingest thread, which must not hang on the service manager.
SEND_TIMEOUT_S = 0.5


def _address(value: str) -> str | bytes | None:
    """The sockaddr for a `$NOTIFY_SOCKET` value, or None if we cannot use it."""
    if value.startswith("@") and len(value) > 1:
        return b"\0" + value[1:].encode()        # abstract namespace
    if value.startswith("/"):
        return value
    # vsock:CID:PORT (systemd >= 254, for VMs) and anything relative: not ours.
    return None


def _one_line(text: str) -> str:
    """STATUS= text without line breaks: a newline would start a new
    assignment, so a status built from untrusted text (a producer's name,
    an error message) could otherwise say READY=1 or STOPPING=1."""
    return " ".join(str(text).splitlines())


def _watchdog_usec(environ: Mapping[str, str]) -> tuple[int | None, int | None]:
    """($WATCHDOG_USEC, $WATCHDOG_PID) as integers; None where unset or invalid."""
    usec = pid = None
    raw = environ.get("WATCHDOG_USEC")
    if raw is not None:
        try:
            usec = int(raw)
        except ValueError:
            usec = None
        if usec is None or usec <= 0:
            log.warning("WATCHDOG_USEC=%r is not a positive integer: watchdog pings disabled", raw)
            usec = None
    raw = environ.get("WATCHDOG_PID")
    if raw is not None:
        try:
            pid = int(raw)
        except ValueError:
            pid = None
        if pid is None or pid <= 0:
            # An unreadable owner is not a licence to ping: sd_watchdog_enabled()
            # fails the same way.
            log.warning("WATCHDOG_PID=%r is not a process id: watchdog pings disabled", raw)
            usec = None
    return usec, pid


class Notifier:
    """A client of `$NOTIFY_SOCKET`; build it with `Notifier.from_env()`.

    Thread-safe: the asyncio loop, the ingest thread and the shutdown path
    may all report.  `sent` and `failures` count datagrams for status output.
    """

    def __init__(self, address: str | bytes | None, watchdog_usec: int | None = None,
                 watchdog_pid: int | None = None):
        self.address = address
        self._watchdog_usec = watchdog_usec
        self._watchdog_pid = watchdog_pid
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._failing = False
        self.sent = 0
        self.failures = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Notifier":
        """The notifier systemd asked for, or a no-op one when `$NOTIFY_SOCKET`
        is unset (a developer's shell) or unusable (logged)."""
        env = os.environ if environ is None else environ
        value = env.get("NOTIFY_SOCKET", "")
        if not value:
            return cls(None)
        address = _address(value)
        if address is None:
            log.warning("NOTIFY_SOCKET=%r is neither an absolute path nor an abstract '@' name: "
                        "not notifying systemd", value)
            return cls(None)
        return cls(address, *_watchdog_usec(env))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    # -- the messages -------------------------------------------------------

    def ready(self, status: str = "") -> None:
        self.send("READY=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def status(self, text: str) -> None:
        self.send(f"STATUS={_one_line(text)}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def stopping(self, status: str = "") -> None:
        self.send("STOPPING=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def extend_timeout(self, seconds: float) -> None:
        """Ask for `seconds` more before the start (or stop) times out; resend
        while the slow work goes on.  A journal replay after a crash uses it."""
        self.send(f"EXTEND_TIMEOUT_USEC={max(1, int(seconds * 1_000_000))}")

    def main_pid(self, pid: int | None = None) -> None:
        self.send(f"MAINPID={os.getpid() if pid is None else int(pid)}")

    def watchdog_interval(self) -> float | None:
        """Seconds between WATCHDOG=1 pings (half of `$WATCHDOG_USEC`, as
        sd_watchdog_enabled(3) recommends), or None when systemd expects no
        pings from this process: no socket, no watchdog, or `$WATCHDOG_PID`
        names another process."""
        if self.address is None or self._watchdog_usec is None:
            return None
        if self._watchdog_pid is not None and self._watchdog_pid != os.getpid():
            return None
        return self._watchdog_usec / 2 / 1_000_000

    # -- the transport ------------------------------------------------------

    def send(self, *assignments: str) -> bool:
        """Send one datagram of `KEY=value` lines; True if it left.  Never raises."""
        if self.address is None or not assignments:
            return False
        message = "\n".join(assignments).encode()
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                    self._sock.settimeout(SEND_TIMEOUT_S)
                self._sock.sendto(message, self.address)
            except (OSError, ValueError) as exc:   # ValueError: an over-long path
                self.failures += 1
                if not self._failing:
                    self._failing = True
                    log.warning("sd_notify to %r failed (%s); further failures are not logged "
                                "until a send succeeds", self._shown(), exc)
                return False
            if self._failing:
                self._failing = False
                log.info("sd_notify to %r works again after %d failed sends",
                         self._shown(), self.failures)
            self.sent += 1
            return True

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def _shown(self) -> str:
        a = self.address
        return "@" + a[1:].decode(errors="replace") if isinstance(a, bytes) else str(a)


async def watchdog_loop(notifier: Notifier, healthy: Callable[[], bool],
                        period: float | None = None) -> None:
    """Ping systemd's watchdog every `period` seconds (default: the notifier's
    `watchdog_interval()`) while `healthy()` is true; returns at once when no
    watchdog is expected.

    The point of the watchdog is the daemon's hot path, not its event loop:
    `healthy` should say whether the ingest thread is making progress
    (heartbeat recent, or ring empty).  While it is false we stop pinging, so
    a stuck ingest thread makes systemd kill and restart us
    (Restart=on-failure), and the restart resumes from the journal.  A
    `healthy` that raises counts as unhealthy.  It runs on the event loop,
    so it must only read (a heartbeat timestamp, a counter), never wait.
    Cancel the task to stop it.
    """
    if period is None:
        period = notifier.watchdog_interval()
    if period is None:
        return
    if period <= 0:
        raise ValueError(f"watchdog period must be positive, not {period}")
    unhealthy = False
    while True:
        try:
            ok = bool(healthy())
            reason = "health check returned false"
        except Exception as exc:   # the check is someone else's code; it must not kill the loop
            ok = False
            reason = f"health check raised {exc!r}"
        if ok:
            if unhealthy:
                log.info("healthy again: watchdog pings resume")
                notifier.status("healthy again; watchdog pings resumed")   # not leave the alarm up
                unhealthy = False
            notifier.watchdog()
        elif not unhealthy:
            unhealthy = True
            log.error("%s: withholding watchdog pings, systemd will restart the daemon "
                      "if this lasts", reason)
            notifier.status(f"unhealthy: {reason}; watchdog pings withheld")
        await asyncio.sleep(period)
