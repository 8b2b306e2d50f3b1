"""What the suites that run daemons share (tools/bench/e2e.py,
tools/bench/restart.py): every core for them, and names of their own."""
from __future__ import annotations

import os

from zksidecar.daemon.config import user_name


def all_cores() -> list[int]:
    """Every core this process may use, after lifting `zksidecar bench`'s
    pin to one core (the daemon and the engine need their own)."""
    import psutil

    try:
        psutil.Process().cpu_affinity([])       # []: every eligible core
    except (psutil.Error, AttributeError, OSError):
        pass
    return sorted(os.sched_getaffinity(0))


def tag(phase: str) -> str:
    """A name for one phase's rings, unique to this run."""
    return f"{user_name()}-bench-{os.getpid()}-{phase}"
