"""The admin endpoint: status JSON and Prometheus metrics over a Unix socket
(and optionally TCP on 127.0.0.1), minimal HTTP/1.1 on asyncio streams.

    GET /status   the daemon's status() merged over metrics.status(), JSON
    GET /metrics  Prometheus text format
    GET /healthz  "ok"
    GET /receipt  zk mode, the Unix socket only: a receipt of one trader's
                  operations (?symbol=S&seq=N[&seq=M...] or
                  ?symbol=S&account=A&batch=B), application/octet-stream

One request per connection: the response carries `Connection: close` and
the server closes after writing it.  A request head is bounded (MAX_HEAD
bytes) and must arrive within READ_TIMEOUT_S, so a slow or hostile client
holds only its own connection.  The server is plain asyncio; the daemon
decides whether the loop is uvloop.  docs/ADMIN.md describes the endpoints.

Who may ask: the Unix socket is 0600, or 0660 owned by the daemon's state
group ([state] group, daemon/perms.py), so file permissions decide.  The TCP
listener has no such check: it is bound to 127.0.0.1 only and carries no
authentication, so every local user (and every process sharing the host's
network namespace) can read /status and /metrics there.  It serves only those
read-only figures, never the order flow; leave it off unless a local scraper
needs it (docs/ADMIN.md, "The socket").
"""
from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import socket
import stat
import urllib.parse
from typing import Callable

from . import perms
from .metrics import Metrics

log = logging.getLogger(__name__)

DEFAULT_SOCKET = "var/admin.sock"
MAX_HEAD = 8192          # bytes of request line + headers
READ_TIMEOUT_S = 5.0     # for the whole request head
WRITE_TIMEOUT_S = 10.0   # for the whole response
SOCKET_MODE = perms.PRIVATE_SOCKET          # no state group; with one, perms.GROUP_SOCKET (0660)
_SUN_PATH_MAX = 107      # sockaddr_un.sun_path less its terminating NUL (Linux)
# the temporary name the socket is bound under before its rename (_bind_unix);
# a pid has at most 7 digits (pid_max is at most 2^22 = 4194304)
_TMP_NAME = ".admin-{pid}-{tag}.sock"
_TMP_NAME_MAX = len(_TMP_NAME.format(pid=9_999_999, tag="0" * 8))

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            408: "Request Timeout", 409: "Conflict", 431: "Request Header Fields Too Large",
            500: "Internal Server Error"}


class AdminError(OSError):
    """The admin endpoint cannot start (socket path in use, not a socket, too
    long; TCP port taken).  `key` is the configuration key it comes from
    ("admin.socket" or "admin.tcp_port")."""

    def __init__(self, err: int, message: str, key: str = "admin.socket"):
        super().__init__(err, message)
        self.key = key


class _BadRequest(Exception):
    def __init__(self, code: int, text: str):
        super().__init__(text)
        self.code = code


class AdminEndpoint:
    """The endpoint's listening sockets, bound and not yet served: the daemon
    binds them before any other start-up work (daemon/service.py), so a
    second daemon on the same socket or port stops before it creates a
    ring or opens a journal.  The Unix socket is at `unix_path` (mode 0600,
    or 0660 owned by `group`; its directory must exist; a stale file is
    replaced only if nothing listens on it); with `tcp_port` (0: a free
    one), a socket on 127.0.0.1 too.  AdminError (naming its key) if
    either cannot be had.  `close()` removes the socket file if it is still
    ours."""

    def __init__(self, unix_path: str, tcp_port: int | None = None,
                 group: str | int | None = None):
        self.unix_path = unix_path
        self.unix, self._inode = _bind_unix(unix_path, group)
        self.tcp = None
        try:
            if tcp_port is not None:
                self.tcp = _bind_tcp(tcp_port)
        except BaseException:
            self.close()
            raise

    @property
    def tcp_port(self) -> int | None:
        """The bound TCP port (useful when asked for 0), None without one."""
        return self.tcp.getsockname()[1] if self.tcp is not None else None

    def close(self) -> None:
        for sock in (self.unix, self.tcp):
            if sock is not None:
                sock.close()
        try:   # a successor daemon may have replaced our file: leave theirs alone
            st = os.stat(self.unix_path)
            if (st.st_dev, st.st_ino) == self._inode:
                os.unlink(self.unix_path)
        except FileNotFoundError:
            pass


class AdminServer:
    """The running endpoint: `.close()` then `await .wait_closed()` (or
    `async with`).  Closing removes the socket file if it is still ours."""

    def __init__(self, servers: list[asyncio.AbstractServer], endpoint: AdminEndpoint):
        self._servers = servers
        self._endpoint = endpoint
        self.unix_path = endpoint.unix_path
        self.tcp_port = endpoint.tcp_port

    def close(self) -> None:
        for s in self._servers:
            s.close()
        self._endpoint.close()

    async def wait_closed(self) -> None:
        for s in self._servers:
            await s.wait_closed()

    async def __aenter__(self) -> AdminServer:
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()
        await self.wait_closed()


def socket_path_problem(path: str) -> str | None:
    """Why `path` cannot be the admin socket's path (None if it can): the
    longer of it and its temporary name must fit sockaddr_un.sun_path."""
    path = os.path.abspath(path)
    longest = max(len(os.fsencode(path)),
                  len(os.fsencode(os.path.dirname(path))) + 1 + _TMP_NAME_MAX)
    if longest > _SUN_PATH_MAX:
        return (f"{longest} bytes as an absolute path with its temporary name, over the "
                f"{_SUN_PATH_MAX} of a Unix socket address (sun_path)")
    return None


async def serve_admin(metrics: Metrics, status: Callable[[], dict],
                      endpoint: AdminEndpoint | str, tcp_port: int | None = None,
                      group: str | int | None = None,
                      receipts: Callable[[dict], bytes] | None = None) -> AdminServer:
    """Serve the endpoint on `endpoint`'s sockets, or on a Unix socket path
    (and `tcp_port`, `group`: bound here as AdminEndpoint binds them).  The
    TCP socket is unauthenticated: see the module's docstring.  `status` is
    called per /status request in a thread (it may wait a moment: the
    sequencer's step, Service.live), as the metrics' collectors are per
    scrape; /healthz is answered on the loop.
    `receipts` (zk mode) answers GET /receipt on the Unix socket alone (a
    receipt is a trader's private data; the TCP port serves figures only):
    called with the query's parameters in a thread, it returns the receipt
    or raises a ValueError whose message the client gets."""
    if isinstance(endpoint, str):
        endpoint = AdminEndpoint(endpoint, tcp_port, group)
    servers = []
    try:
        servers.append(await asyncio.start_unix_server(_Handler(metrics, status, receipts),
                                                       sock=endpoint.unix, limit=MAX_HEAD))
        if endpoint.tcp is not None:
            servers.append(await asyncio.start_server(_Handler(metrics, status),
                                                      sock=endpoint.tcp, limit=MAX_HEAD))
    except BaseException:
        AdminServer(servers, endpoint).close()
        raise
    port = endpoint.tcp_port
    log.info("admin endpoint on %s%s", endpoint.unix_path,
             f" and 127.0.0.1:{port}" if port is not None else "")
    if port is not None:
        log.warning("admin TCP port 127.0.0.1:%d is unauthenticated: every local user can read "
                    "/status and /metrics there (docs/ADMIN.md)", port)
    return AdminServer(servers, endpoint)


def _bind_tcp(port: int) -> socket.socket:
    """A non-blocking socket listening on 127.0.0.1:`port` (0: a free one),
    or AdminError (key admin.tcp_port) saying why not."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
        sock.setblocking(False)
        return sock
    except OSError as exc:
        sock.close()
        who = (": another process listens there (another daemon?)"
               if exc.errno == errno.EADDRINUSE else "")
        raise AdminError(exc.errno, f"cannot listen on 127.0.0.1:{port}: "
                         f"{exc.strerror or exc}{who}", key="admin.tcp_port") from exc


def tcp_port_problem(port: int) -> str | None:
    """Why the endpoint could not listen on 127.0.0.1:`port` now (None if it
    could): the bind AdminEndpoint makes, let go at once (--check-config)."""
    try:
        _bind_tcp(port).close()
    except AdminError as exc:
        return exc.strerror
    return None


def _bind_unix(path: str, group: str | int | None = None) -> tuple[socket.socket, tuple[int, int]]:
    """A listening socket at `path`, mode 0600 (0660 owned by `group`) from
    the moment the path exists: bound under a temporary name, chmod-ed,
    then renamed over `path` (which also replaces a stale file atomically)."""
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    tmp = os.path.join(directory, _TMP_NAME.format(pid=os.getpid(), tag=os.urandom(4).hex()))
    problem = socket_path_problem(path)
    if problem:
        raise AdminError(errno.ENAMETOOLONG, f"admin socket path too long ({problem}): {path}")
    try:
        gid = perms.gid_of(group)
    except OSError as exc:
        raise AdminError(exc.errno, f"admin socket {path}: {exc.strerror}") from exc
    _refuse_if_live(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            sock.bind(tmp)
        except OSError as exc:
            raise AdminError(exc.errno, f"cannot create admin socket {path}: {exc.strerror}") from exc
        try:
            # bind() made the file with the umask's mode: set the exact one
            # before the socket listens or has its real name
            if gid is not None:
                os.chown(tmp, -1, gid)
            os.chmod(tmp, perms.socket_mode(gid))
            sock.listen(128)
            _refuse_if_live(path)          # narrow the window a racing daemon could use
            os.rename(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        st = os.stat(path)
        sock.setblocking(False)
        return sock, (st.st_dev, st.st_ino)
    except BaseException:
        sock.close()
        raise


def socket_in_use(path: str) -> str | None:
    """Why `path` cannot become the admin socket because of what is there
    (None if nothing is, or a stale socket nothing listens on): not a
    socket, a live listener (another daemon), or a socket that cannot be
    probed.  The check the bind makes, and --check-config with it."""
    why = _in_use(path)
    return why[1] if why else None


def _in_use(path: str) -> tuple[int, str] | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISSOCK(st.st_mode):
        return errno.EEXIST, f"admin socket path exists and is not a socket: {path}"
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return None
    except OSError as exc:   # e.g. permission denied: someone else's, do not touch
        return exc.errno, f"admin socket {path} exists and cannot be probed: {exc.strerror or exc}"
    finally:
        probe.close()
    return errno.EADDRINUSE, f"admin socket {path} is in use: another daemon is listening on it"


def _refuse_if_live(path: str) -> None:
    """Raise AdminError if `path` exists and is not a stale socket."""
    why = _in_use(path)
    if why:
        raise AdminError(*why)
    if os.path.lexists(path):
        log.info("replacing stale admin socket %s", path)


class _Handler:
    """One connection: read a request head, answer it, close."""

    def __init__(self, metrics: Metrics, status: Callable[[], dict],
                 receipts: Callable[[dict], bytes] | None = None):
        self._metrics = metrics
        self._status = status
        self._receipts = receipts

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                async with asyncio.timeout(READ_TIMEOUT_S):
                    method, path = await _read_head(reader)
                if path.split("?", 1)[0] == "/receipt" and method == "GET" and self._receipts is not None:
                    code, ctype, body = await self._receipt(path)
                else:
                    code, ctype, body = await self._respond(method, path)
            except _BadRequest as exc:
                code, ctype, body = exc.code, "text/plain; charset=utf-8", f"{exc}\n".encode()
            except TimeoutError:
                code, ctype, body = 408, "text/plain; charset=utf-8", b"request head too slow\n"
            head = (f"HTTP/1.1 {code} {_REASONS[code]}\r\nContent-Type: {ctype}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n")
            if code == 405:
                head += "Allow: GET\r\n"
            writer.write(head.encode("ascii") + b"\r\n" + body)
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                await writer.drain()
        except (ConnectionError, TimeoutError):
            pass    # the client went away or stopped reading: nothing to tell it
        except Exception:
            log.exception("admin connection failed")
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    async def _receipt(self, path: str) -> tuple[int, str, bytes]:
        """A receipt made in a thread (reading a proof and its private file,
        deriving the salts: milliseconds), the loop serving on meanwhile."""
        query = urllib.parse.parse_qs(path.split("?", 1)[1] if "?" in path else "", keep_blank_values=True)
        try:
            body = await asyncio.get_running_loop().run_in_executor(None, self._receipts, query)
        except ValueError as exc:      # the receipt API's ReceiptError, and the daemon's refusals
            code = getattr(exc, "http_status", 400)      # daemon/zk_store.py says which
            return code, "text/plain; charset=utf-8", f"{exc}\n".encode()
        except Exception as exc:
            log.exception("admin /receipt failed")
            return 500, "text/plain; charset=utf-8", f"{type(exc).__name__}: {exc}\n".encode()
        return 200, "application/octet-stream", body

    async def _respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        route = path.split("?", 1)[0]
        if route == "/receipt":
            return 404, "text/plain; charset=utf-8", (
                b"receipts are served in zk mode on the Unix socket only (a receipt is a trader's private data)\n")
        if route not in ("/status", "/metrics", "/healthz"):
            return 404, "text/plain; charset=utf-8", f"no such endpoint: {route}\n".encode()
        if method != "GET":
            return 405, "text/plain; charset=utf-8", f"method {method} not allowed: GET only\n".encode()
        if route == "/healthz":
            return 200, "text/plain; charset=utf-8", b"ok\n"
        # in a thread: the daemon's figures wait for the sequencer between its
        # steps (Service.live), and a step may take a snapshot's fsync; the loop
        # meanwhile pings the watchdog, takes signals and answers /healthz
        return await asyncio.get_running_loop().run_in_executor(None, self._figures, route)

    def _figures(self, route: str) -> tuple[int, str, bytes]:
        """/metrics or /status, read from the metrics and the daemon."""
        try:
            if route == "/metrics":
                return 200, "text/plain; version=0.0.4; charset=utf-8", self._metrics.exposition()
            doc = _merge(self._metrics.status(), self._status())
            return 200, "application/json", json.dumps(doc, indent=1).encode() + b"\n"
        except Exception as exc:
            log.exception("admin %s failed", route)
            return 500, "text/plain; charset=utf-8", f"{type(exc).__name__}: {exc}\n".encode()


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, str]:
    """(method, target) of one request; raises _BadRequest for anything that
    is not an HTTP/1.x request head of at most MAX_HEAD bytes."""
    total = 0
    lines = []
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            raise _BadRequest(431, f"request head over {MAX_HEAD} bytes") from None
        except asyncio.IncompleteReadError:
            raise _BadRequest(400, "request head ended early") from None
        total += len(line)
        if total > MAX_HEAD:
            raise _BadRequest(431, f"request head over {MAX_HEAD} bytes")
        line = line.rstrip(b"\r\n")
        if not line:
            if lines:
                break
            continue   # RFC 9112 2.2: ignore empty lines before the request line
        lines.append(line)
    try:
        text = [ln.decode("ascii") for ln in lines]
    except UnicodeDecodeError:
        raise _BadRequest(400, "request head is not ASCII") from None
    parts = text[0].split(" ")
    if (len(parts) != 3 or not parts[0].isalpha() or not parts[0].isupper()
            or not parts[1].startswith("/") or parts[2] not in ("HTTP/1.0", "HTTP/1.1")):
        raise _BadRequest(400, "malformed request line")
    for header in text[1:]:
        name, colon, _ = header.partition(":")
        if not colon or not name or name != name.strip():
            raise _BadRequest(400, "malformed header line")
    return parts[0], parts[1]


def _merge(base: dict, over: dict) -> dict:
    """`over` on top of `base`, dictionaries merged key by key."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
