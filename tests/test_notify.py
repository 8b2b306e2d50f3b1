"""daemon/notify.py against a real AF_UNIX datagram socket standing in for
systemd's $NOTIFY_SOCKET (the test owns the receiving end and reads exactly
what arrived).  No timing: datagrams on a local socket are queued by the
time sendto returns, so a non-blocking read sees all of them."""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid

import pytest

from zksidecar.daemon import notify
from zksidecar.daemon.notify import Notifier, watchdog_loop


class Receiver:
    """The service manager's end: a bound datagram socket, read without blocking."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.setblocking(False)

    def messages(self) -> list[str]:
        out = []
        while True:
            try:
                out.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return out

    def close(self):
        self.sock.close()


@pytest.fixture(params=["path", "abstract"])
def notify_socket(request, tmp_path):
    """(NOTIFY_SOCKET value, Receiver) for a filesystem path and for an
    abstract-namespace name."""
    if request.param == "path":
        path = str(tmp_path / "notify")
        value, address = path, path
    else:
        name = f"/zksidecar-test/notify/{uuid.uuid4().hex}"
        value, address = "@" + name, b"\0" + name.encode()
    rx = Receiver(address)
    yield value, rx
    rx.close()


def test_each_message_arrives_as_sd_notify_expects(notify_socket):
    value, rx = notify_socket
    n = Notifier.from_env({"NOTIFY_SOCKET": value})
    assert n.enabled
    n.ready()
    n.ready("replayed 12 batches")
    n.status("ingesting 10000 ops/s")
    n.watchdog()
    n.extend_timeout(2.5)
    n.main_pid(4242)
    n.stopping()
    n.stopping("draining")
    assert rx.messages() == [
        "READY=1",
        "READY=1\nSTATUS=replayed 12 batches",
        "STATUS=ingesting 10000 ops/s",
        "WATCHDOG=1",
        "EXTEND_TIMEOUT_USEC=2500000",
        "MAINPID=4242",
        "STOPPING=1",
        "STOPPING=1\nSTATUS=draining",
    ]
    assert (n.sent, n.failures) == (8, 0)
    n.close()


def test_main_pid_defaults_to_this_process(notify_socket):
    value, rx = notify_socket
    Notifier.from_env({"NOTIFY_SOCKET": value}).main_pid()
    assert rx.messages() == [f"MAINPID={os.getpid()}"]


def test_status_text_cannot_smuggle_other_assignments(notify_socket):
    value, rx = notify_socket
    n = Notifier.from_env({"NOTIFY_SOCKET": value})
    n.status("producer 'evil\nREADY=1'\r\nSTOPPING=1")
    assert rx.messages() == ["STATUS=producer 'evil READY=1' STOPPING=1"]


def test_reads_the_real_environment(notify_socket, monkeypatch):
    value, rx = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", value)
    monkeypatch.setenv("WATCHDOG_USEC", "3000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    n = Notifier.from_env()
    n.watchdog()
    assert rx.messages() == ["WATCHDOG=1"]
    assert n.watchdog_interval() == 1.5


@pytest.mark.parametrize("env", [{}, {"NOTIFY_SOCKET": ""}, {"WATCHDOG_USEC": "1000000"}])
def test_unset_socket_is_a_no_op(env, caplog):
    with caplog.at_level(logging.DEBUG, logger=notify.__name__):
        n = Notifier.from_env(env)
        n.ready("x")
        n.status("x")
        n.watchdog()
        n.stopping()
    assert not n.enabled
    assert n.watchdog_interval() is None
    assert (n.sent, n.failures) == (0, 0)
    assert caplog.records == []


@pytest.mark.parametrize("value", ["relative/notify", "@", "vsock:2:1234"])
def test_unusable_socket_value_is_refused_with_a_warning(value, caplog):
    with caplog.at_level(logging.WARNING, logger=notify.__name__):
        n = Notifier.from_env({"NOTIFY_SOCKET": value, "WATCHDOG_USEC": "1000000"})
    assert not n.enabled and n.watchdog_interval() is None
    assert "not notifying systemd" in caplog.text


ME = str(os.getpid())


@pytest.mark.parametrize("env, interval", [
    ({"WATCHDOG_USEC": "20000000"}, 10.0),                      # no owner named: ours
    ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": ME}, 10.0),   # we are the owner
    ({"WATCHDOG_USEC": "1"}, 0.5e-6),
    ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}, None),  # another process's watchdog
    ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "x"}, None),
    ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "0"}, None),
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "-5"}, None),
    ({"WATCHDOG_USEC": "10s"}, None),
    ({"WATCHDOG_PID": ME}, None),                                # no timeout, no watchdog
    ({}, None),
])
def test_watchdog_interval_is_half_of_watchdog_usec_for_its_owner(env, interval, tmp_path):
    n = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "notify"), **env})
    assert n.watchdog_interval() == interval


def test_unreachable_socket_never_raises_and_logs_once_per_outage(tmp_path, caplog):
    path = str(tmp_path / "notify")
    n = Notifier.from_env({"NOTIFY_SOCKET": path})          # nobody bound there yet
    with caplog.at_level(logging.INFO, logger=notify.__name__):
        assert n.ready("starting") is None
        n.watchdog()
        assert n.send("WATCHDOG=1") is False
        assert (n.sent, n.failures) == (0, 3)
        assert [r.levelno for r in caplog.records] == [logging.WARNING]
        assert path in caplog.records[0].getMessage()

        rx = Receiver(path)                                  # systemd comes back
        try:
            n.status("back")
            assert rx.messages() == ["STATUS=back"]
            assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.INFO]
        finally:
            rx.close()
        os.unlink(path)
        n.watchdog()                                         # a new outage is logged again
        assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.INFO,
                                                       logging.WARNING]
    assert (n.sent, n.failures) == (1, 4)


def test_unreachable_abstract_name_and_overlong_path_never_raise(caplog):
    for value in ["@/zksidecar-test/nobody-listens/" + uuid.uuid4().hex, "/" + "x" * 200]:
        n = Notifier.from_env({"NOTIFY_SOCKET": value})
        assert n.enabled
        n.ready()
        n.stopping()
        assert (n.sent, n.failures) == (0, 2)


# -- watchdog_loop ---------------------------------------------------------

def _run_loop(notifier, answers):
    """Run watchdog_loop with a health check that gives `answers` in turn
    (an exception instance is raised) and cancels the loop after the last."""
    answers = list(answers)
    calls = 0

    async def main():
        nonlocal calls
        task = None

        def healthy():
            nonlocal calls
            calls += 1
            answer = answers.pop(0)
            if not answers:
                task.cancel()
            if isinstance(answer, Exception):
                raise answer
            return answer

        task = asyncio.create_task(watchdog_loop(notifier, healthy, period=0.001))
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    return calls


def test_watchdog_loop_pings_only_while_healthy(notify_socket, caplog):
    value, rx = notify_socket
    n = Notifier.from_env({"NOTIFY_SOCKET": value})
    with caplog.at_level(logging.INFO, logger=notify.__name__):
        calls = _run_loop(n, [True, True, False, False, RuntimeError("ingest gone"), True, True])
    assert calls == 7
    assert rx.messages() == [
        "WATCHDOG=1",
        "WATCHDOG=1",
        "STATUS=unhealthy: health check returned false; watchdog pings withheld",
        "STATUS=healthy again; watchdog pings resumed",
        "WATCHDOG=1",
        "WATCHDOG=1",
    ]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1                                # one log per unhealthy stretch


def test_watchdog_loop_reports_a_raising_check(notify_socket):
    value, rx = notify_socket
    n = Notifier.from_env({"NOTIFY_SOCKET": value})
    _run_loop(n, [RuntimeError("ingest gone"), RuntimeError("still")])
    assert rx.messages() == [
        "STATUS=unhealthy: health check raised RuntimeError('ingest gone'); watchdog pings withheld"]


def test_watchdog_loop_returns_when_no_watchdog_is_expected(notify_socket):
    value, rx = notify_socket
    calls = []
    for env in [{"NOTIFY_SOCKET": value},
                {"NOTIFY_SOCKET": value, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"},
                {"WATCHDOG_USEC": "2000000"}]:
        asyncio.run(watchdog_loop(Notifier.from_env(env), lambda: calls.append(1) or True))
    assert calls == [] and rx.messages() == []


def test_watchdog_loop_uses_the_notifiers_interval(notify_socket):
    """With no explicit period the loop takes watchdog_interval(): 1 µs
    timeout -> 0.5 µs period, so it pings until cancelled."""
    value, rx = notify_socket
    n = Notifier.from_env({"NOTIFY_SOCKET": value, "WATCHDOG_USEC": "1"})
    seen = []

    async def main():
        task = None

        def healthy():
            seen.append(1)
            if len(seen) == 3:
                task.cancel()
            return True

        task = asyncio.create_task(watchdog_loop(n, healthy))
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert rx.messages() == ["WATCHDOG=1"] * 3


def test_watchdog_loop_refuses_a_non_positive_period(notify_socket):
    value, _ = notify_socket
    with pytest.raises(ValueError, match="positive"):
        asyncio.run(watchdog_loop(Notifier.from_env({"NOTIFY_SOCKET": value}), lambda: True, 0))
