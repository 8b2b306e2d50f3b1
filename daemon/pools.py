"""Where proofs are made, as the service sees it: a ProofPool, opened from
the [workers] configuration.

    backend "local"   WorkerPool (daemon/workers.py): worker processes on
                      this host, pinned to `workers.cores`
    backend "dask"    DaskPool (daemon/cluster.py): tasks on a Dask cluster
                      run by someone else, `workers.max_in_flight` at a time

Both queue jobs in the daemon's own PriorityQueue (daemon/priority.py) and
resolve one Future per job, so the service, the finisher and the metrics do
not know which one runs; each reports itself through status() in one shape
(/status `pool`, the zksidecar_pool_* metrics).  daemon/cluster.py (and with
it the `distributed` package, the optional extra `cluster`) is imported only
for backend "dask".
"""
from __future__ import annotations

from concurrent.futures import Future
from typing import Protocol

from .config import WorkersConfig
from .jobs import ProofJob, ProofResult
from .priority import ProofPriority
from .workers import WorkerPool


class ProofPool(Protocol):
    def submit(self, job: ProofJob, priority: ProofPriority | int | str = ProofPriority.NORMAL
               ) -> Future:
        """Queue `job`; the Future resolves to its ProofResult or fails with
        WorkerCrashed or PoolClosed (daemon/workers.py)."""

    async def prove(self, job: ProofJob, priority: ProofPriority | int | str = ProofPriority.NORMAL
                    ) -> ProofResult:
        """submit() for asyncio callers."""

    @property
    def pending(self) -> int:
        """Jobs submitted whose futures are not done."""

    @property
    def ready(self) -> int:
        """Workers able to take a job now."""

    def status(self) -> dict:
        """The pool's own report, one shape for both backends (docs/ADMIN.md,
        `pool`): backend, workers, threads, in_flight, queued, and its
        metrics.PoolFigures (crashed, resubmitted, round_trip); a Dask pool
        adds scheduler and connected.  Read per /status and per scrape:
        never a blocking call."""

    def close(self, wait: bool = True, cancel_pending: bool = False) -> None:
        """Stop taking jobs (WorkerPool.close says what wait and cancel_pending do)."""


def open_pool(w: WorkersConfig, warm: ProofJob | None = None) -> ProofPool:
    """The pool [workers] `w` describes (a validated configuration)."""
    if w.backend == "dask":
        from .cluster import DaskPool, security

        return DaskPool(w.scheduler, security=security(w), max_in_flight=w.max_in_flight, warm=warm)
    return WorkerPool(w.count, list(w.cores) or None, warm=warm)
