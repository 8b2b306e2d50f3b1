"""daemon/admin.py and tools/stats.py: the admin endpoint served on a real
Unix socket in an event loop (asyncio and uvloop), scraped and parsed as
Prometheus text, plus `zksidecar stats` against it."""
import asyncio
import io
import json
import os
import shutil
import socket
import stat
import tempfile

import pytest
import uvloop
from prometheus_client.parser import text_string_to_metric_families

from zksidecar.daemon import admin
from zksidecar.daemon.admin import AdminError, serve_admin
from zksidecar.daemon.batches import CLOSE_REASONS
from zksidecar.daemon.metrics import Metrics
from zksidecar.tools import cli, stats

GUARD_S = 30.0   # only against a hang; no assertion depends on time


@pytest.fixture
def sockdir():
    # short: sun_path holds 107 bytes and pytest's tmp_path can be long
    d = tempfile.mkdtemp(prefix="zkadm", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def run(coro, loop="asyncio"):
    return (uvloop.run if loop == "uvloop" else asyncio.run)(asyncio.wait_for(coro, GUARD_S))


async def request(path: str, raw: bytes) -> tuple[int, dict, bytes]:
    """Send `raw` on a fresh connection, read to EOF, split the response."""
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(raw)
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("ascii").split("\r\n")
    version, code, _ = lines[0].split(" ", 2)
    assert version == "HTTP/1.1"
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert int(headers["Content-Length"]) == len(body)
    assert headers["Connection"] == "close"
    return int(code), headers, body


async def get(path: str, target: str) -> tuple[int, dict, bytes]:
    return await request(path, f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())


def busy_metrics() -> Metrics:
    m = Metrics()
    m.ops_ingested(4096)
    m.ring_depth(17)
    m.producer_status("alive")
    m.batch_closed(1024, "size")
    m.batch_queued("normal")
    m.queue_wait("normal", 0.02)
    m.proving_time("normal", 0.8)
    m.proof_lag(0.9, count=1024)
    m.divergence(3)
    return m


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_metrics_status_healthz(sockdir, loop):
    path = os.path.join(sockdir, "admin.sock")
    m = busy_metrics()

    async def main():
        async with await serve_admin(m, lambda: {"service": "up", "ring": {"name": "ops"}}, path):
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600   # no state group: the owner only
            code, headers, body = await get(path, "/metrics")
            assert code == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
            fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
            assert fams["zksidecar_ops_ingested"].samples[0].value == 4096
            lag = {s.labels.get("le"): s.value for s in fams["zksidecar_proof_lag_seconds"].samples
                   if s.name.endswith("_bucket")}
            assert lag["0.5"] == 0 and lag["1.0"] == 1024
            m.ops_ingested(4)                               # a later scrape sees later updates
            code, _, body = await get(path, "/metrics?x=1")
            fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
            assert fams["zksidecar_ops_ingested"].samples[0].value == 4100

            code, headers, body = await get(path, "/status")
            assert code == 200 and headers["Content-Type"] == "application/json"
            doc = json.loads(body)
            assert doc["service"] == "up"
            assert doc["ring"] == {"name": "ops", "depth": 17, "full_events": 0, "producer": "alive",
                                  "unblocked": 0, "stall": None}
            assert doc["ops"]["ingested"] == 4100
            assert doc["batches"]["closed_by_reason"]["size"] == 1
            assert doc["lag_s"]["p99"] == pytest.approx(0.9, rel=doc["percentile_error_bound"])
            assert doc["divergences"]["by_symbol"] == {"3": 1}

            assert (await get(path, "/healthz"))[::2] == (200, b"ok\n")
        assert not os.path.exists(path)                     # closing removes our socket file

    run(main(), loop)


@pytest.mark.parametrize("raw, code", [
    (b"GET /nowhere HTTP/1.1\r\n\r\n", 404),
    (b"POST /status HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", 405),
    (b"DELETE /metrics HTTP/1.1\r\n\r\n", 405),
    (b"HEAD /healthz HTTP/1.1\r\n\r\n", 405),
    (b"garbage\r\n\r\n", 400),
    (b"GET /status SPDY/3\r\n\r\n", 400),
    (b"GET status HTTP/1.1\r\n\r\n", 400),
    (b"get /status HTTP/1.1\r\n\r\n", 400),
    (b"GET /status HTTP/1.1\r\nno colon here\r\n\r\n", 400),
    (b"GET /st\xffatus HTTP/1.1\r\n\r\n", 400),
    (b"GET /status HTTP/1.1\r\nHost: x\r\n", 400),           # ends before the blank line
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" * 3, 400),  # a TLS hello: no line at all
    (b"GET /status HTTP/1.1\r\nX-Pad: " + b"a" * 10000 + b"\r\n\r\n", 431),
    (b"GET /status HTTP/1.1\r\n" + b"X-Pad: aaaaaaaa\r\n" * 600 + b"\r\n", 431),
])
def test_bad_requests(sockdir, raw, code):
    path = os.path.join(sockdir, "admin.sock")

    async def main():
        async with await serve_admin(Metrics(), dict, path):
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(raw)
            writer.write_eof()                             # all it will ever send
            data = await reader.read()
            writer.close()
            assert data.startswith(f"HTTP/1.1 {code} ".encode()), data[:80]
            if code == 405:
                assert b"\r\nAllow: GET\r\n" in data
            assert (await get(path, "/healthz"))[0] == 200   # the server is unharmed

    run(main())


def test_lf_only_and_leading_blank_lines_are_accepted(sockdir):
    path = os.path.join(sockdir, "admin.sock")

    async def main():
        async with await serve_admin(Metrics(), dict, path):
            code, _, body = await request(path, b"\r\nGET /healthz HTTP/1.0\nHost: x\n\n")
            assert (code, body) == (200, b"ok\n")

    run(main())


def test_status_callable_failure_is_a_500(sockdir):
    path = os.path.join(sockdir, "admin.sock")

    def broken():
        raise RuntimeError("store unreadable")

    async def main():
        async with await serve_admin(Metrics(), broken, path):
            code, _, body = await get(path, "/status")
            assert code == 500 and b"store unreadable" in body
            assert (await get(path, "/metrics"))[0] == 200

    run(main())


def test_slow_clients_do_not_block_others(sockdir, monkeypatch):
    path = os.path.join(sockdir, "admin.sock")
    monkeypatch.setattr(admin, "READ_TIMEOUT_S", 3600.0)   # a server that waited on them would hang

    async def main():
        async with await serve_admin(Metrics(), dict, path):
            slow_r, slow_w = await asyncio.open_unix_connection(path)
            slow_w.write(b"GET /status HT")                # and then nothing more
            await slow_w.drain()
            silent = await asyncio.open_unix_connection(path)   # sends nothing at all
            for _ in range(5):
                assert (await get(path, "/healthz"))[0] == 200
            slow_w.close()
            silent[1].close()

    run(main())


def test_slow_clients_time_out(sockdir, monkeypatch):
    path = os.path.join(sockdir, "admin.sock")
    monkeypatch.setattr(admin, "READ_TIMEOUT_S", 0.1)

    async def main():
        async with await serve_admin(Metrics(), dict, path):
            slow_r, slow_w = await asyncio.open_unix_connection(path)
            slow_w.write(b"GET /status HT")
            await slow_w.drain()
            silent_r, silent_w = await asyncio.open_unix_connection(path)
            # the server gives up on them (408) instead of holding them forever
            assert (await slow_r.read()).startswith(b"HTTP/1.1 408 ")
            assert (await silent_r.read()).startswith(b"HTTP/1.1 408 ")
            slow_w.close()
            silent_w.close()

    run(main())


@pytest.mark.parametrize("route", ["/status", "/metrics"])
def test_figures_that_wait_do_not_hold_the_loop(sockdir, route):
    """The daemon's figures wait for the sequencer between its steps
    (Service.live), and a step may take a snapshot's fsync: while /status or
    /metrics waits, the loop still answers /healthz (and so pings the
    watchdog, which runs on it).  The figures wait until /healthz has been
    answered, or give up (a server that waited on the loop could not answer
    it meanwhile)."""
    import threading

    path = os.path.join(sockdir, "admin.sock")
    entered, answered = threading.Event(), threading.Event()
    meanwhile = []             # whether /healthz was answered while the figures waited

    def figures():
        entered.set()
        meanwhile.append(answered.wait(5.0))
        return {}

    m = Metrics()
    if route == "/metrics":
        m.attach(figures)

    async def main():
        async with await serve_admin(m, figures, path):
            waiting = asyncio.ensure_future(get(path, route))
            assert await asyncio.get_running_loop().run_in_executor(None, entered.wait, GUARD_S)
            assert (await get(path, "/healthz"))[0] == 200
            answered.set()
            assert (await waiting)[0] == 200

    run(main())
    assert meanwhile == [True]


def test_concurrent_clients(sockdir):
    path = os.path.join(sockdir, "admin.sock")
    m = busy_metrics()

    async def main():
        async with await serve_admin(m, lambda: {"n": 1}, path):
            results = await asyncio.gather(*[get(path, ("/status", "/metrics", "/healthz")[i % 3])
                                             for i in range(60)])
            assert all(code == 200 for code, _, _ in results)
            assert all(json.loads(body)["n"] == 1 for code, _, body in results[0::3])

    run(main())


def test_tcp_on_loopback_only(sockdir):
    path = os.path.join(sockdir, "admin.sock")

    async def main():
        async with await serve_admin(Metrics(), dict, path, tcp_port=0) as server:
            assert server.tcp_port
            reader, writer = await asyncio.open_connection("127.0.0.1", server.tcp_port)
            writer.write(b"GET /healthz HTTP/1.1\r\n\r\n")
            data = await reader.read()
            writer.close()
            assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"ok\n")
            addrs = {s.getsockname()[0] for srv in server._servers[1:] for s in srv.sockets}
            assert addrs == {"127.0.0.1"}

    run(main())


def test_stale_socket_file_is_replaced(sockdir):
    path = os.path.join(sockdir, "admin.sock")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)          # a socket file nobody listens on: a daemon killed -9
    dead.close()
    assert stat.S_ISSOCK(os.lstat(path).st_mode)

    async def main():
        async with await serve_admin(Metrics(), dict, path):
            assert (await get(path, "/healthz"))[0] == 200
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600   # no state group: the owner only
        assert os.listdir(sockdir) == []                  # no temporary name left behind

    run(main())


def test_live_socket_is_refused_and_left_alone(sockdir):
    path = os.path.join(sockdir, "admin.sock")

    async def main():
        async with await serve_admin(Metrics(), lambda: {"who": "first"}, path):
            with pytest.raises(AdminError, match="in use"):
                await serve_admin(Metrics(), lambda: {"who": "second"}, path)
            code, _, body = await get(path, "/status")
            assert json.loads(body)["who"] == "first"
            assert os.listdir(sockdir) == ["admin.sock"]

    run(main())


def test_regular_file_is_refused_and_left_alone(sockdir):
    path = os.path.join(sockdir, "admin.sock")
    with open(path, "w") as f:
        f.write("precious")

    async def main():
        with pytest.raises(AdminError, match="not a socket"):
            await serve_admin(Metrics(), dict, path)

    run(main())
    with open(path) as f:
        assert f.read() == "precious"


def test_too_long_path_is_refused(sockdir):
    path = os.path.join(sockdir, "x" * 100, "admin.sock")
    with pytest.raises(AdminError, match="too long"):
        run(serve_admin(Metrics(), dict, path))


def test_missing_directory_is_a_clear_error(sockdir):
    path = os.path.join(sockdir, "no-such-dir", "admin.sock")
    with pytest.raises(AdminError, match=f"cannot create admin socket {path}: No such file"):
        run(serve_admin(Metrics(), dict, path))


def test_close_leaves_a_successors_socket(sockdir):
    path = os.path.join(sockdir, "admin.sock")

    async def main():
        first = await serve_admin(Metrics(), lambda: {"who": "first"}, path)
        os.unlink(path)                                    # as if a successor replaced it
        async with await serve_admin(Metrics(), lambda: {"who": "second"}, path):
            first.close()
            await first.wait_closed()
            code, _, body = await get(path, "/status")
            assert json.loads(body)["who"] == "second"

    run(main())


# ---- zksidecar stats ----

def test_stats_once_prints_the_table(sockdir, capsys):
    path = os.path.join(sockdir, "admin.sock")

    async def main():
        async with await serve_admin(busy_metrics(), dict, path):
            return await asyncio.to_thread(cli.main, ["stats", "--socket", path, "--once"])

    assert run(main()) == 0
    out = capsys.readouterr().out
    assert "\x1b[" not in out
    assert "4,096 ops" in out and "ring depth 17" in out and "producer alive" in out
    reasons = ", ".join(f"{r} {int(r == 'size')}" for r in CLOSE_REASONS)
    assert f"closed 1 ({reasons})" in out
    assert "p50 900 ms" in out or "p50 89" in out              # 0.9 s within 0.5 %
    assert "divergences 1   symbol 3: 1" in out
    normal = next(line for line in out.splitlines() if line.startswith("normal"))
    assert normal.split()[:4] == ["normal", "0", "1", "0"] and "20 ms" in normal and "800 ms" in normal


def test_stats_json_once(sockdir, capsys):
    path = os.path.join(sockdir, "admin.sock")

    async def main():
        async with await serve_admin(busy_metrics(), lambda: {"extra": [1, 2]}, path):
            return await asyncio.to_thread(cli.main, ["stats", "--socket", path, "--once", "--json"])

    assert run(main()) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert doc["extra"] == [1, 2] and doc["ops"]["ingested"] == 4096


class FakeTTY(io.StringIO):
    """Test double: an output stream that says it is a terminal."""

    def isatty(self):
        return True


@pytest.mark.parametrize("tty", [True, False])
def test_stats_refreshes(sockdir, tty):
    path = os.path.join(sockdir, "admin.sock")
    out = FakeTTY() if tty else io.StringIO()

    async def main():
        async with await serve_admin(busy_metrics(), dict, path):
            return await asyncio.to_thread(stats.run, path, 0.01, 3, False, out)

    assert run(main()) == 0
    text = out.getvalue()
    assert text.count("zksidecar   up") == 3
    if tty:
        assert text.count("\x1b[H\x1b[2J") == 3 and text.startswith("\x1b[H\x1b[2J")
    else:
        assert "\x1b" not in text and text.count("\n\nzksidecar   up") == 2


def test_stats_without_a_daemon(sockdir, capsys):
    missing = os.path.join(sockdir, "admin.sock")
    assert cli.main(["stats", "--socket", missing, "--once"]) == 1
    assert capsys.readouterr().err.strip() == f"zksidecar stats: no daemon at {missing}: no such socket"

    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(missing)       # the file of a daemon that died
    dead.close()
    assert cli.main(["stats", "--socket", missing]) == 1
    assert capsys.readouterr().err.strip() == f"zksidecar stats: no daemon at {missing}: connection refused"


def test_stats_reports_a_bad_answer(sockdir, capsys):
    path = os.path.join(sockdir, "admin.sock")

    def broken():
        raise RuntimeError("boom")

    async def main():
        async with await serve_admin(Metrics(), broken, path):
            return await asyncio.to_thread(stats.run, path, 1.0, 1)

    assert run(main()) == 1
    err = capsys.readouterr().err
    assert "500 Internal Server Error" in err and "boom" in err


def test_render_tolerates_missing_fields():
    text = stats.render({})
    assert "ingest      - ops" in text and text.count("\n") == 13     # refused and provers included
    assert "provers     -   workers - (- threads)" in text
    assert "BLOCKED" not in text
    assert "BLOCKED     journal full: disk" in stats.render({"blocked": ["journal full: disk"]})
    assert "p50 -" in stats.render({"lag_s": {"p50": None}})
    gone = {"backend": "dask", "scheduler": "tcp://10.0.0.5:8786", "connected": False,
            "workers": 0, "threads": 0, "in_flight": 0, "queued": 3,
            "round_trip_s": {"p50": 0.41, "p99": None}, "resubmitted": 2, "crashed": 0}
    assert ("provers     dask tcp://10.0.0.5:8786 DISCONNECTED   workers 0 (0 threads)   in flight 0"
            "   queued 3   round trip p50 410 ms p99 -   resubmitted 2   crashed 0") \
        in stats.render({"pool": gone})
