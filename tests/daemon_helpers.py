"""A real daemon in a subprocess for the end-to-end suites: its own rings,
state directory and admin socket, started, stopped, and killed -9."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

from zksidecar import ringbuf
from zksidecar.tools.demo import toml_text
from zksidecar.tools.stats import StatsError, fetch_status


class Daemon:
    def __init__(self, tmp_path, capacity=64, batch=128, timeout_ms=150, ring=4096, workers=1,
                 fsync="batch", critical_qty=0, settings: dict | None = None):
        tag = uuid.uuid4().hex[:8]
        self.dir = tmp_path
        self.ops_ring, self.completions_ring = f"zkt-{tag}-ops", f"zkt-{tag}-done"
        self.socket = str(tmp_path / "admin.sock")
        self.capacity = capacity
        self.config = tmp_path / "zksidecar.toml"
        config = {
            "ring": {"ops": self.ops_ring, "completions": self.completions_ring, "capacity": ring,
                     "idle": "spin_then_park"},
            "journal": {"dir": str(tmp_path / "journal"), "fsync": fsync},
            "book": {"capacity": capacity},
            "batch": {"max_batch_size": batch, "batch_timeout_ms": timeout_ms,
                      "critical_qty": critical_qty},
            "workers": {"count": workers},
            "store": {"dir": str(tmp_path / "proofs"), "fsync": False},
            "admin": {"socket": self.socket},
        }
        for section, values in (settings or {}).items():
            config.setdefault(section, {}).update(values)
        self.config.write_text(toml_text(config))
        self.proc: subprocess.Popen | None = None
        self.log = tmp_path / "daemon.log"

    def start(self, timeout: float = 60.0, env: dict | None = None, preexec_fn=None,
              command: list[str] | None = None, cwd=None) -> "Daemon":
        """Start the daemon and wait for its admin socket to answer.  `env`
        entries override the inherited environment (None removes one);
        `command` is the `zksidecar` to run (default this interpreter's
        `python -m zksidecar.tools.cli`), `cwd` its working directory."""
        base = dict(os.environ, PYTHONUNBUFFERED="1")
        base.pop("NOTIFY_SOCKET", None)
        env = {k: v for k, v in dict(base, **(env or {})).items() if v is not None}
        command = command or [sys.executable, "-m", "zksidecar.tools.cli"]
        self._log = open(self.log, "ab")
        self.proc = subprocess.Popen([*command, "daemon", "--config", str(self.config)],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     preexec_fn=preexec_fn, cwd=cwd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                fetch_status(self.socket, timeout=1)
                return self
            except StatsError:
                time.sleep(0.05)
        raise RuntimeError(f"the daemon did not come up:\n{self.logs()}")

    def status(self) -> dict:
        return fetch_status(self.socket, timeout=5)

    def stop(self, timeout: float = 60.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._log.close()
        return code

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self._log.close()

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for(self, pred, timeout: float = 120.0, what: str = "condition") -> dict:
        deadline = time.monotonic() + timeout
        st = {}
        while time.monotonic() < deadline:
            st = self.status()
            if pred(st):
                return st
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; last status {st}\n{self.logs()[-4000:]}")

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill9()
        for name in (self.ops_ring, self.completions_ring):
            ringbuf.unlink(name, missing_ok=True)
