"""What the suites that run daemons share (tools/bench/e2e.py,
tools/bench/restart.py): names of their own (every core for them is
runner.all_cores)."""
from __future__ import annotations

import os

from zksidecar.daemon.config import user_name


def tag(phase: str) -> str:
    """A name for one phase's rings, unique to this run."""
    return f"{user_name()}-bench-{os.getpid()}-{phase}"
