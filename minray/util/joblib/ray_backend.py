"""The joblib backend: joblib's batches run as ``apply_async`` calls of a minray Pool.

``RayBackend`` is joblib's ``MultiprocessingBackend`` (pool management,
auto-batching, callbacks) with the stdlib pool swapped for
``minray.util.multiprocessing.Pool``: one actor per job, created when a
``Parallel`` call starts and stopped when it ends. ``n_jobs=-1`` means every
CPU of the minray cluster.
"""

from __future__ import annotations

from joblib._parallel_backends import (
    FallbackToBackend,
    MultiprocessingBackend,
    SequentialBackend,
)

import minray
from minray.util.multiprocessing import Pool


def _cluster_cpus() -> int:
    if not minray.is_initialized():
        minray.init()
    return max(int(minray.cluster_resources().get("CPU", 0)), 1)


class RayBackend(MultiprocessingBackend):
    """A joblib ParallelBackend that runs batches on minray actors."""

    supports_retrieve_callback = True
    supports_return_generator = False

    def __init__(
        self, nesting_level=None, inner_max_num_threads=None, ray_remote_args=None, **kwargs
    ):
        super().__init__(
            nesting_level=nesting_level, inner_max_num_threads=inner_max_num_threads, **kwargs
        )
        self.ray_remote_args = ray_remote_args

    def effective_n_jobs(self, n_jobs):
        """How many actors run at once: ``n_jobs`` capped by the cluster's CPUs; -1 is all."""
        if n_jobs == 0:
            raise ValueError("n_jobs == 0 in Parallel has no meaning")
        if n_jobs is None:
            return 1
        cpus = _cluster_cpus()
        if n_jobs < 0:
            n_jobs = cpus + 1 + n_jobs
        return max(min(n_jobs, cpus), 1)

    def configure(self, n_jobs=1, parallel=None, prefer=None, require=None, **backend_kwargs):
        """Start a Pool of ``effective_n_jobs(n_jobs)`` actors (backend_kwargs are ignored)."""
        n_jobs = self.effective_n_jobs(n_jobs)
        if n_jobs == 1:  # joblib runs a single job in the caller anyway
            raise FallbackToBackend(SequentialBackend(nesting_level=self.nesting_level))
        self._pool = Pool(processes=n_jobs, ray_remote_args=self.ray_remote_args)
        self.parallel = parallel
        return n_jobs
