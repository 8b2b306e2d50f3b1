"""`zksidecar stats`: the daemon's key figures as a live table.

Fetches GET /status from the admin socket (raw HTTP/1.1 over AF_UNIX, the
standard library only) every `interval` seconds.  On a terminal each table
replaces the last (ANSI clear + home); otherwise tables follow one another,
so the output can be logged.  `--json` prints each status document instead,
one per line.  docs/ADMIN.md explains the figures.
"""
from __future__ import annotations

import argparse
import json
import math
import socket
import sys
import time

from zksidecar.daemon.admin import DEFAULT_SOCKET
from zksidecar.daemon.metrics import CLOSE_REASONS, PRIORITIES

MAX_RESPONSE = 4 << 20   # bytes; a status document is a few KiB
TIMEOUT_S = 5.0
_CLEAR = "\x1b[H\x1b[2J"


class StatsError(Exception):
    """The daemon could not be reached or answered something unusable."""


def fetch_status(path: str, timeout: float = TIMEOUT_S) -> dict:
    """GET /status over the Unix socket at `path`, decoded."""
    return _parse_response(path, fetch(path, "/status", timeout))


def fetch_receipt(path: str, query: str, timeout: float = TIMEOUT_S) -> bytes:
    """GET /receipt?`query` over the Unix socket at `path` (zk mode): the
    receipt's bytes; StatsError with the daemon's message otherwise."""
    body = _body(path, fetch(path, "/receipt?" + query, timeout))
    return body


def fetch(path: str, target: str, timeout: float = TIMEOUT_S) -> bytes:
    """The whole HTTP response to GET `target` over the Unix socket at `path`."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except FileNotFoundError:
            raise StatsError(f"no daemon at {path}: no such socket") from None
        except ConnectionRefusedError:
            raise StatsError(f"no daemon at {path}: connection refused") from None
        except OSError as exc:
            raise StatsError(f"cannot connect to {path}: {exc.strerror or exc}") from None
        try:
            sock.sendall(f"GET {target} HTTP/1.1\r\nHost: zksidecar\r\nConnection: close\r\n\r\n".encode())
            chunks, size = [], 0
            while chunk := sock.recv(65536):
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_RESPONSE:
                    raise StatsError(f"{path}: response over {MAX_RESPONSE} bytes")
        except OSError as exc:
            raise StatsError(f"{path}: {exc.strerror or exc}") from None
    finally:
        sock.close()
    return b"".join(chunks)


def _body(path: str, data: bytes) -> bytes:
    """The body of a 200 response; StatsError naming the status otherwise."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise StatsError(f"{path}: not an HTTP response")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise StatsError(f"{path}: not an HTTP response: {status_line[:80]!r}")
    if parts[1] != "200":
        raise StatsError(f"{path}: {status_line}: {body.decode('utf-8', 'replace').strip()}")
    return body


def _parse_response(path: str, data: bytes) -> dict:
    body = _body(path, data)
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise StatsError(f"{path}: status is not JSON: {exc}") from None
    except RecursionError:
        raise StatsError(f"{path}: status is not JSON this reader follows (nested deeper than "
                         "Python's recursion limit)") from None
    if not isinstance(doc, dict):
        raise StatsError(f"{path}: status is not a JSON object")
    return doc


# ---- formatting: every field may be missing or null (an older or newer daemon) ----

def _get(doc, *keys):
    for k in keys:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(k)
    return doc


def _int(v) -> str:
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else "-"


def _secs(v) -> str:
    """A duration with a unit that keeps three significant figures."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return "-"
    if v < 1e-3:
        return f"{v * 1e6:.0f} us"
    if v < 1.0:
        return f"{v * 1e3:.3g} ms"
    return f"{v:.3g} s"


def _uptime(v) -> str:
    # JSON as Python reads it carries NaN and Infinity, which have no whole seconds
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        return "-"
    m, s = divmod(int(v), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s"


def _provers(pool: dict) -> str:
    """The proof pool's line: where proofs are made, and its jobs."""
    where = pool.get("backend") or "-"
    if "scheduler" in pool:
        where += f" {pool['scheduler']} " + ("connected" if pool.get("connected") else "DISCONNECTED")
    return (f"provers     {where}   workers {_int(pool.get('workers'))} "
            f"({_int(pool.get('threads'))} threads)   in flight {_int(pool.get('in_flight'))}"
            f"   queued {_int(pool.get('queued'))}"
            f"   round trip p50 {_secs(_get(pool, 'round_trip_s', 'p50'))}"
            f" p99 {_secs(_get(pool, 'round_trip_s', 'p99'))}"
            f"   resubmitted {_int(pool.get('resubmitted'))}   crashed {_int(pool.get('crashed'))}")


def render(doc: dict) -> str:
    """The table for one status document."""
    rate = _get(doc, "ops", "rate_per_s")
    closed = _get(doc, "batches", "closed_by_reason") or {}
    lines = [
        f"zksidecar   up {_uptime(_get(doc, 'uptime_s'))}   producer {_get(doc, 'ring', 'producer') or '-'}",
        f"ingest      {_int(_get(doc, 'ops', 'ingested'))} ops   "
        f"{f'{rate:,.0f}' if isinstance(rate, (int, float)) else '-'} ops/s   "
        f"ring depth {_int(_get(doc, 'ring', 'depth'))}"
        f"   full events {_int(_get(doc, 'ring', 'full_events'))}",
        f"batches     closed {_int(_get(doc, 'batches', 'closed'))} ("
        + ", ".join(f"{r} {_int(closed.get(r))}" for r in CLOSE_REASONS)
        + f")   proving {_int(_get(doc, 'batches', 'proving'))}"
        f"   proven {_int(_get(doc, 'batches', 'proven'))}   failed {_int(_get(doc, 'batches', 'failed'))}",
        f"proof lag   p50 {_secs(_get(doc, 'lag_s', 'p50'))}   p99 {_secs(_get(doc, 'lag_s', 'p99'))}"
        f"   p99.9 {_secs(_get(doc, 'lag_s', 'p999'))}   max {_secs(_get(doc, 'lag_s', 'max'))}"
        f"   ({_int(_get(doc, 'lag_s', 'count'))} ops proven)",
        f"divergences {_int(_get(doc, 'divergences', 'total'))}"
        + "".join(f"   symbol {s}: {_int(n)}"
                  for s, n in (_get(doc, 'divergences', 'by_symbol') or {}).items()),
        f"refused     {_int(_get(doc, 'refused', 'total'))}"
        + "".join(f"   {r} {_int(n)}" for r, n in (_get(doc, 'refused', 'by_reason') or {}).items()
                  if n)
        + f"   stream breaks {_int(_get(doc, 'breaks', 'total'))}",
        _provers(_get(doc, "pool") or {}),
        *(f"BLOCKED     {why}" for why in (_get(doc, "blocked") or [])),
        "",
        f"{'priority':<10}{'pending':>9}{'proven':>9}{'failed':>8}"
        f"{'wait mean':>12}{'wait p99':>11}{'prove mean':>12}{'prove p99':>11}",
    ]
    for p in PRIORITIES:
        row = _get(doc, "priorities", p)
        lines.append(
            f"{p:<10}{_int(_get(row, 'pending')):>9}{_int(_get(row, 'proven')):>9}"
            f"{_int(_get(row, 'failed')):>8}"
            f"{_secs(_get(row, 'queue_wait_s', 'mean')):>12}{_secs(_get(row, 'queue_wait_s', 'p99')):>11}"
            f"{_secs(_get(row, 'proving_s', 'mean')):>12}{_secs(_get(row, 'proving_s', 'p99')):>11}")
    return "\n".join(lines) + "\n"


def run(path: str = DEFAULT_SOCKET, interval: float = 1.0, count: int | None = None,
        as_json: bool = False, out=None, err=None) -> int:
    """Print the figures `count` times (None: until interrupted), `interval`
    s apart; exit status 1 (with the reason on `err`) when the daemon cannot
    be read."""
    out = out or sys.stdout
    err = err or sys.stderr
    if not interval > 0:
        print(f"zksidecar stats: interval must be positive, not {interval}", file=err)
        return 2
    clear = count != 1 and not as_json and out.isatty()
    shown = 0
    try:
        while True:
            try:
                doc = fetch_status(path)
            except StatsError as exc:
                print(f"zksidecar stats: {exc}", file=err)
                return 1
            if as_json:
                text = json.dumps(doc, separators=(",", ":")) + "\n"
            else:
                text = (_CLEAR if clear else "\n" if shown else "") + render(doc)
            out.write(text)
            out.flush()
            shown += 1
            if count is not None and shown >= count:
                return 0
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--socket", default=DEFAULT_SOCKET, metavar="PATH",
                   help=f"the daemon's admin socket (default: {DEFAULT_SOCKET})")
    p.add_argument("--interval", type=float, default=1.0, metavar="S", help="seconds between refreshes")
    p.add_argument("--once", action="store_true", help="print once and exit")
    p.add_argument("--json", action="store_true", help="print the status JSON, one document per line")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="zksidecar stats", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    args = p.parse_args(argv)
    return run(args.socket, args.interval, 1 if args.once else None, args.json)


if __name__ == "__main__":
    sys.exit(main())
