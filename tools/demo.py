"""`zksidecar demo` (what `make demo` runs): the sidecar end to end on one
machine in well under a minute.

1. A fresh state directory (./var/demo, wiped) and a configuration of its
   own: ring names carrying the user and this process id, so the demo never
   meets a real daemon's rings, and settings that keep proof lag low on two
   cores (a book of 512 slots, batches of up to 512 operations or 200 ms
   under a 2048-row ops cap, one worker).
2. The daemon, started as a subprocess exactly as systemd would start it
   (`python -m zksidecar.tools.cli daemon --config FILE`).
3. The reference engine (`zksidecar loadgen`, tools/loadgen.py) as a
   second process, reporting its progress as JSON lines: it matches
   a synthetic flow and publishes every operation, with its claimed outcome,
   to the ops ring at a steady rate through the Python client, reading
   completions back.
4. A live progress line (published, ingested, proven, batches, proof lag
   p99) about four times a second on a terminal; a plain line every two
   seconds otherwise, so the output can be logged.
5. SIGTERM to the daemon, then every stored proof verified as one chain from
   the empty book (tools/proofs.py verify_store), and a summary.  The exit
   status is non-zero if anything failed: an operation not proven, a proof
   that does not verify, a divergence, a process that exited badly.

With `--zk` the daemon runs in zk mode (docs/ZK.md section 9): a new zk
store (its key made at the first start), batches of a book of 1,024 slots
in 2,048-row ops traces (the smallest shape at which zk mode reaches 100
bits), closing on a 1 s timeout at a default 500 operations a second for
15 seconds, so that one worker keeps up on two cores (a zk batch proof of
this shape takes ~0.4 s).  After the engine finishes it asks the daemon's
admin socket for receipts of a sample of operations, by sequence number
and by account; after the stop it exports the chain and checks every
receipt against its batch proof and the chain (tools/receipts.py), as a
trader would.

With `--plot PATH` (tools/plots.py, matplotlib), the /status samples of
step 4 drawn as a PNG: proof lag over time, and operations published,
ingested and proven over time.

`DaemonProcess` is the same machinery for `zksidecar bench e2e`.
"""
from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

from zksidecar.daemon.config import ConfigError, Host, load, user_name

from . import arg_types
from .stats import StatsError, fetch_status

DEMO_DIR = "./var/demo"
MARKER = ".zksidecar-demo"      # the demo wipes only directories that carry this file
SOCKET_PATH_MAX = 107           # sun_path holds 108 bytes with the terminating NUL

# Settings that keep proof lag low with one proof worker on a small machine.
# A 2048-row ops cap holds any one operation on a book of 512 slots (at most
# 1022 rows and the PAD row) and a full batch of 512 operations of the
# synthetic flow (~1.76 rows each); each batch is proven at the rows it
# takes beside the 512-row book domain.  At the demo's rate a batch closes
# on the 200 ms timeout, so an operation waits ~0.1 s for its batch to
# close, then for its proof.
DEMO_SETTINGS = {
    "ring": {"capacity": 1 << 16, "idle": "spin_then_park"},
    "journal": {"fsync": "batch"},
    "book": {"capacity": 512, "trace_length": 2048},
    "batch": {"max_batch_size": 512, "batch_timeout_ms": 200},
    "workers": {"count": 1},
    "store": {"fsync": True},
}
DEMO_RATE = 1000.0              # operations per second
DEMO_SECONDS = 30.0
# zk mode (module docstring): the smallest shape reaching 100 bits, batches
# closing on a 1 s timeout (~500 operations, one proof of ~0.4 s a second)
DEMO_ZK_SETTINGS = {
    **DEMO_SETTINGS,
    "book": {"capacity": 1024, "trace_length": 2048},
    "batch": {"max_batch_size": 1024, "batch_timeout_ms": 1000},
    "proofs": {"mode": "zk"},
}
DEMO_ZK_RATE = 500.0
DEMO_ZK_SECONDS = 15.0
#: operations the zk demo asks receipts for (one by sequence number each, and
#: one by account: the account of the first of them, in its batch)
DEMO_RECEIPTS = 3


class DemoError(Exception):
    """The demo could not be set up (a directory it must not wipe, a bad path)."""


def toml_text(config: dict) -> str:
    """{"section": {"key": value}} as TOML (str, int, float, bool and int lists)."""
    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)        # a JSON string is a valid TOML basic string
        if isinstance(v, (list, tuple)) and all(type(x) is int for x in v):
            return "[" + ", ".join(map(str, v)) + "]"
        raise TypeError(f"no TOML for {v!r}")

    lines = []
    for section, values in config.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {value(v)}" for k, v in values.items()]
        lines.append("")
    return "\n".join(lines)


def fresh_dir(path: str) -> str:
    """Make `path` an empty demo directory; returns it absolute.  An existing
    directory is wiped only if an earlier demo made it (it holds MARKER) or it
    is empty: the demo never deletes anything else."""
    path = os.path.abspath(path)
    if os.path.lexists(path):
        if not os.path.isdir(path) or os.path.islink(path):
            raise DemoError(f"{path}: exists and is not a directory")
        if os.listdir(path) and not os.path.exists(os.path.join(path, MARKER)):
            raise DemoError(f"{path}: not empty and not made by the demo; refusing to wipe it "
                            f"(remove it yourself or give another --dir)")
        shutil.rmtree(path)
    os.makedirs(path)
    with open(os.path.join(path, MARKER), "w") as f:
        f.write("made by `zksidecar demo`; wiped by the next run\n")
    return path


class DaemonProcess:
    """A daemon in a subprocess, with its own rings, state directory, admin
    socket and configuration (`settings` over the defaults): started, watched
    through /status, stopped, its memory measured.

    `cpus`: the cores the daemon and its workers may run on (None: all)."""

    def __init__(self, state_dir: str, settings: dict, tag: str, cpus: set[int] | None = None):
        self.dir = os.path.abspath(state_dir)
        self.ops_ring = f"/zksidecar-{tag}-ops"
        self.completions_ring = f"/zksidecar-{tag}-done"
        self.socket = os.path.join(self.dir, "admin.sock")
        if len(self.socket.encode()) > SOCKET_PATH_MAX:
            raise DemoError(f"{self.socket}: too long for a Unix socket path "
                            f"({SOCKET_PATH_MAX} bytes at most); choose a shorter directory")
        config = {section: dict(values) for section, values in settings.items()}
        config.setdefault("ring", {}).update(ops=self.ops_ring, completions=self.completions_ring)
        config.setdefault("journal", {})["dir"] = os.path.join(self.dir, "journal")
        config.setdefault("store", {})["dir"] = os.path.join(self.dir, "proofs")
        config.setdefault("admin", {})["socket"] = self.socket
        self.store_dir = config["store"]["dir"]
        self.config_path = os.path.join(self.dir, "zksidecar.toml")
        with open(self.config_path, "w") as f:
            f.write(toml_text(config))
        # a bad setting fails here, naming the key; the machine's rules are
        # checked for the daemon, which runs on `cpus` (this process may not)
        host = dataclasses.replace(Host(), cpus=lambda: set(cpus)) if cpus else None
        self.config = load(self.config_path, host=host)
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.cpus = cpus
        self.proc: subprocess.Popen | None = None
        self.peak_rss = 0

    def start(self, timeout: float = 60.0) -> "DaemonProcess":
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("NOTIFY_SOCKET", None)      # not ours to notify
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "zksidecar.tools.cli", "daemon", "--config", self.config_path],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
        if self.cpus:
            # at once, while the interpreter is still starting: every thread and
            # worker process it makes later inherits the set
            os.sched_setaffinity(self.proc.pid, self.cpus)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited with status {self.proc.returncode}:\n"
                                   f"{self.log_tail()}")
            try:
                fetch_status(self.socket, timeout=1)
                return self
            except StatsError:
                time.sleep(0.05)
        raise RuntimeError(f"the daemon did not answer on {self.socket} within {timeout:.0f} s:\n"
                           f"{self.log_tail()}")

    def status(self, timeout: float = 5.0) -> dict:
        return fetch_status(self.socket, timeout=timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tree_rss(self) -> int:
        """Resident bytes of the daemon and its worker processes now; keeps
        the peak in `peak_rss`."""
        import psutil

        if not self.alive():
            return 0
        total = 0
        try:
            root = psutil.Process(self.proc.pid)
            for p in [root] + root.children(recursive=True):
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            return 0
        self.peak_rss = max(self.peak_rss, total)
        return total

    def stop(self, timeout: float = 90.0) -> int:
        """SIGTERM (a clean stop: open batches closed, proofs in flight
        stored), then the exit status; SIGKILL if it does not stop in time."""
        if not self.alive():
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return -signal.SIGKILL

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def cleanup(self) -> None:
        """Kill the daemon if it still runs and remove its rings."""
        from zksidecar import ringbuf

        self.kill()
        for name in (self.ops_ring, self.completions_ring):
            ringbuf.unlink(name, missing_ok=True)


class _EngineProcess:
    """The reference engine (tools/loadgen.py) in a subprocess, reporting
    its progress as JSON lines on its stdout."""

    def __init__(self, daemon: DaemonProcess, n_ops: int, rate: float, wait_s: float):
        self.latest: dict = {}
        self.log_path = os.path.join(daemon.dir, "engine.log")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "zksidecar.tools.cli", "loadgen", "--config", daemon.config_path,
                 "--ops", str(n_ops), "--rate", str(rate), "--wait", str(wait_s), "--json-progress"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self._reader = threading.Thread(target=self._read, name="demo-engine-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict):
                self.latest = doc

    def wait(self) -> int:
        code = self.proc.wait()
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log_tail(self, lines: int = 20) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""


def _get(doc: dict, *keys):
    for k in keys:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(k)
    return doc


def _secs(v) -> str:
    return f"{v:.3f} s" if isinstance(v, (int, float)) else "-"


def _n(v) -> str:
    return f"{v:,}" if isinstance(v, int) else "-"


def status_sample(t: float, st: dict, published: int | None = None) -> dict:
    """One point of a run's time series for tools/plots.py, from a /status
    (and the engine's count of operations published, if known)."""
    lag = st.get("lag_s") or {}
    return {"t": t, "published": published, "ingested": _get(st, "ops", "ingested"),
            "proven": _get(st, "ops", "proven"), "lag_count": lag.get("count"),
            "lag_mean_s": lag.get("mean"), "lag_p99_s": lag.get("p99")}


def progress_line(elapsed: float, engine: dict, status: dict) -> str:
    return (f"{elapsed:6.1f} s  published {_n(engine.get('published')):>9}  "
            f"ingested {_n(_get(status, 'ops', 'ingested')):>9}  "
            f"proven {_n(_get(status, 'ops', 'proven')):>9}  "
            f"batches {_n(_get(status, 'batches', 'proven')):>6}  "
            f"lag p99 {_secs(_get(status, 'lag_s', 'p99'))}")


def run(seconds: float | None = None, rate: float | None = None, n_ops: int | None = None,
        state_dir: str = DEMO_DIR, out=None, tty: bool | None = None,
        plot: str | None = None, zk: bool = False) -> int:
    """The demo; returns its exit status (0: every operation proven and every
    proof verified; with `zk`, every receipt made and checked too).  `plot`:
    a PNG of proof lag and operations over time (tools/plots.py; needs
    matplotlib)."""
    seconds = seconds if seconds is not None else DEMO_ZK_SECONDS if zk else DEMO_SECONDS
    rate = rate if rate is not None else DEMO_ZK_RATE if zk else DEMO_RATE
    out = out or sys.stdout
    tty = out.isatty() if tty is None else tty
    if not (0 < seconds < math.inf and 0 < rate < math.inf) or (n_ops is not None and n_ops < 1):
        print("zksidecar demo: --seconds, --rate and --ops must be positive (and finite)", file=sys.stderr)
        return 2
    n_ops = n_ops if n_ops is not None else max(1, int(seconds * rate))
    try:
        state_dir = fresh_dir(state_dir)
        daemon = DaemonProcess(state_dir, DEMO_ZK_SETTINGS if zk else DEMO_SETTINGS,
                               f"{user_name()}-demo-{os.getpid()}")
    except (DemoError, ConfigError, OSError) as exc:
        print(f"zksidecar demo: {exc}", file=sys.stderr)
        return 2
    cfg = daemon.config
    print(f"zksidecar demo: {n_ops:,} operations at {rate:,.0f}/s through rings {daemon.ops_ring} "
          f"and {daemon.completions_ring}\n  state in {state_dir}; book of {cfg.book.capacity} "
          f"slots, batches of up to {cfg.batch.max_batch_size} operations or "
          f"{cfg.batch.batch_timeout_ms} ms, {cfg.workers.count} proof worker(s)"
          + (f"; zk mode, {cfg.trace_length}-row ops traces" if zk else ""), file=out, flush=True)
    engine = None
    try:
        print("starting the daemon …", file=out, flush=True)
        daemon.start()
        t0 = time.monotonic()
        engine = _EngineProcess(daemon, n_ops, rate, wait_s=max(60.0, n_ops / rate))
        status: dict = {}
        samples: list[dict] = []
        next_plain = t0
        while engine.proc.poll() is None:
            try:
                status = daemon.status(timeout=2)
                samples.append(status_sample(time.monotonic() - t0, status, engine.latest.get("published")))
            except StatsError:
                pass
            daemon.tree_rss()
            if not daemon.alive():
                break
            line = progress_line(time.monotonic() - t0, engine.latest, status)
            if tty:
                print("\r" + line + "\x1b[K", end="", file=out, flush=True)
            elif time.monotonic() >= next_plain:
                print(line, file=out, flush=True)
                next_plain = time.monotonic() + 2.0
            time.sleep(0.25)
        engine_code = engine.wait() if daemon.alive() else None
        if engine_code is None:
            engine.kill()
        try:
            status = daemon.status()
            samples.append(status_sample(time.monotonic() - t0, status, engine.latest.get("published")))
        except StatsError:
            pass
        print(("\r" if tty else "") + progress_line(time.monotonic() - t0, engine.latest, status)
              + ("\x1b[K" if tty else ""), file=out, flush=True)
        daemon_alive = daemon.alive()
        receipts = _ask_receipts(daemon, out) if zk and daemon_alive else []
        print("stopping the daemon (SIGTERM) and verifying every stored proof …", file=out, flush=True)
        daemon_code = daemon.stop()
    except KeyboardInterrupt:
        if engine is not None:
            engine.kill()
        daemon.stop(timeout=30)
        print("\nzksidecar demo: interrupted", file=sys.stderr)
        return 130
    except RuntimeError as exc:          # the daemon did not come up
        print(f"zksidecar demo: {exc}", file=sys.stderr)
        return 1
    finally:
        if engine is not None:
            engine.kill()
        daemon.cleanup()
    code = _summary(out, daemon, engine, engine_code, daemon_code, daemon_alive, status, n_ops)
    if zk:
        code = _check_receipts(out, daemon, receipts) or code
    if plot:
        from . import plots
        from .bench.runner import machine

        m = machine()
        published_by = next((p["t"] for p in samples if (p["published"] or 0) >= n_ops), None)
        try:
            plots.demo(samples, plot, rate, seconds=published_by,
                       machine=f"{m['cpu']}, {m['cores']} cores")
        except OSError as exc:
            print(f"zksidecar demo: cannot write the plot: {exc}", file=sys.stderr)
            return code or 1
        print(f"plot: {plot}", file=out)
    return code


def _summary(out, daemon: DaemonProcess, engine: _EngineProcess, engine_code, daemon_code,
             daemon_alive: bool, status: dict, n_ops: int) -> int:
    from zksidecar.daemon.store import ProofStore, StoreError

    from .proofs import verify_store

    report = io.StringIO()
    verify_code = verify_store(daemon.store_dir, out=report)
    try:
        with ProofStore(daemon.store_dir, fsync=False, readonly=True) as store:
            n_proofs = len(store)
    except (StoreError, OSError):
        n_proofs = 0
    e = engine.latest
    published = e.get("published", 0)
    proven = _get(status, "ops", "proven") or 0
    failed = _get(status, "batches", "failed") or 0
    divergences = _get(status, "divergences", "total") or 0
    closed = _get(status, "batches", "closed_by_reason") or {}
    lag = _get(status, "lag_s") or {}
    problems = []
    if not daemon_alive:
        problems.append("the daemon died during the run")
    if engine_code not in (0, None):
        problems.append(f"the engine exited with status {engine_code} "
                        f"(not every operation came back proven)")
    if daemon_code != 0:
        problems.append(f"the daemon exited with status {daemon_code}")
    if published != n_ops:
        problems.append(f"{n_ops - published:,} operations not published")
    if proven != published:
        problems.append(f"{published - proven:,} published operations not proven")
    if failed:
        problems.append(f"{failed} batches failed to prove")
    if divergences:
        problems.append(f"{divergences} divergences between the engine and the rules")
    if verify_code != 0:
        problems.append("the proof store does not verify")
    seconds = e.get("seconds") or 0.0
    rows = [
        ("operations", f"{published:,} published by the engine in {seconds:.1f} s "
                       f"({published / seconds if seconds else 0:,.0f}/s), "
                       f"{_n(_get(status, 'ops', 'ingested'))} ingested, {proven:,} proven; "
                       f"ring full events {e.get('full_events', 0)}"),
        ("batches", f"{_n(_get(status, 'batches', 'proven'))} proven, {failed} failed (closed by "
                    + (", ".join(f"{r} {n}" for r, n in closed.items() if n) or "none") + ")"),
        ("completions", f"{e.get('completions', 0):,} received by the engine, covering "
                        f"{e.get('proven', 0):,} operations"),
        ("proofs verified", f"{n_proofs if verify_code == 0 else 0:,} of {n_proofs:,} in the store, "
                            f"as one chain per symbol from the empty book"),
        ("proof lag", f"p50 {_secs(lag.get('p50'))}   p99 {_secs(lag.get('p99'))}   "
                      f"p99.9 {_secs(lag.get('p999'))}   max {_secs(lag.get('max'))}  "
                      f"(operation seen -> proof stored)"),
        ("divergences", f"{divergences}"),
        ("daemon memory", f"{daemon.peak_rss / (1 << 20):,.0f} MiB peak RSS (daemon and workers)"),
    ]
    print("\n" + report.getvalue().rstrip(), file=out)
    print("\nzksidecar demo — summary", file=out)
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}", file=out)
    if problems:
        print("FAILED: " + "; ".join(problems), file=out)
        tail = daemon.log_tail()
        if tail:
            print(f"\nlast lines of {daemon.log_path}:\n{tail}", file=out)
        tail = engine.log_tail()
        if tail:
            print(f"last lines of {engine.log_path}:\n{tail}", file=out)
        return 1
    print(f"OK: every operation proven and every proof verified (state in {daemon.dir})", file=out)
    return 0


def _ask_receipts(daemon: DaemonProcess, out) -> list[tuple[str, str, str | bytes]]:
    """Receipts of a sample of operations from the running daemon's admin
    socket: DEMO_RECEIPTS spread over the stream by sequence number, and the
    account of the first of them in its batch.  (what, query, receipt
    bytes or the daemon's refusal)."""
    from zksidecar.prover.orderbook.receipt import decode_receipt

    from .stats import StatsError, fetch_receipt

    ingested = _get(daemon.status(), "ops", "ingested") or 0
    asked = []
    seqs = sorted({1 + k * max(ingested - 1, 0) // max(DEMO_RECEIPTS - 1, 1) for k in range(DEMO_RECEIPTS)})
    for seq in seqs:
        asked.append((f"seq {seq}", f"symbol=0&seq={seq}"))
    results = []
    for what, query in asked:
        try:
            results.append((what, query, fetch_receipt(daemon.socket, query)))
        except StatsError as exc:
            results.append((what, query, str(exc)))
    first = next((r for _, _, r in results if isinstance(r, bytes)), None)
    if first is not None:
        rec = decode_receipt(first)
        account, batch = int(rec.operations[0]["record"]["account"]), rec.batch_id
        query = f"symbol=0&account={account}&batch={batch}"
        try:
            results.append((f"account {account} in batch {batch}", query, fetch_receipt(daemon.socket, query)))
        except StatsError as exc:
            results.append((f"account {account} in batch {batch}", query, str(exc)))
    print(f"asked the admin socket for {len(results)} receipts: "
          + ", ".join(what for what, _, _ in results), file=out, flush=True)
    return results


def _check_receipts(out, daemon: DaemonProcess, receipts: list) -> int:
    """Each receipt checked as a trader would (zksidecar verify-receipt):
    against its batch's proof file in the chain exported from the store,
    the chain verified from the empty book.  0 if all check."""
    from zksidecar.prover.orderbook.receipt import decode_receipt

    from .proofs import export_main
    from .receipts import verify_receipt_main

    chain = os.path.join(daemon.dir, "chain-0")
    quiet = io.StringIO()
    if not receipts or export_main(daemon.store_dir, 0, chain, out=quiet) != 0:
        print(f"FAILED: no receipts, or the chain could not be exported:\n{quiet.getvalue()}", file=out)
        return 1
    problems = 0
    print("\nreceipts, each checked against its batch proof and the whole chain (zksidecar verify-receipt):",
          file=out)
    for k, (what, _, got) in enumerate(receipts):
        if not isinstance(got, bytes):
            print(f"  {what}: not served: {got}", file=out)
            problems += 1
            continue
        path = os.path.join(daemon.dir, f"receipt-{k}.zkr")
        with open(path, "wb") as f:
            f.write(got)
        proof = os.path.join(chain, f"batch-{decode_receipt(got).batch_id:06d}.zkb")
        report = io.StringIO()
        code = verify_receipt_main(path, proof, chain, out=report)
        text = report.getvalue()
        print(f"  {what}: {len(got):,} bytes, " + ("checks" if code == 0 else "REFUSED")
              + f" ({path})", file=out)
        if code != 0:
            print(text, file=out)
            problems += 1
        elif k == 0:
            print("    " + "\n    ".join(text.rstrip().splitlines()[:12]), file=out)
    if problems:
        print(f"FAILED: {problems} of {len(receipts)} receipts not served or not checked", file=out)
        return 1
    print(f"OK: {len(receipts)} receipts served by the daemon and checked against the verified chain", file=out)
    return 0


def add_arguments(p) -> None:
    p.add_argument("--seconds", type=arg_types.positive_seconds, default=None,
                   help=f"how long the engine publishes (default {DEMO_SECONDS:.0f}; "
                        f"{DEMO_ZK_SECONDS:.0f} with --zk)")
    p.add_argument("--rate", type=arg_types.positive_rate, default=None,
                   help=f"operations per second (default {DEMO_RATE:,.0f}; {DEMO_ZK_RATE:,.0f} with --zk)")
    p.add_argument("--zk", action="store_true",
                   help="run the daemon in zk mode and check receipts of a sample of operations "
                        "(a book of 1,024 slots, 2,048-row ops traces)")
    p.add_argument("--ops", type=arg_types.positive, default=None, help="operations in all (default: seconds x rate)")
    p.add_argument("--plot", metavar="PATH", default=None,
                   help="write proof lag and operations over time as a PNG (needs matplotlib, "
                        "the bench extra)")
    p.add_argument("--dir", default=DEMO_DIR,
                   help=f"state directory, wiped first if an earlier demo made it (default {DEMO_DIR})")
