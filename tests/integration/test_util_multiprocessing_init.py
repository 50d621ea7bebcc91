"""multiprocessing.Pool created before ``init()``: it starts minray sized to the pool, as Ray's."""

from __future__ import annotations

import os

import psutil
import pytest

import minray
from minray.util.multiprocessing import Pool
from tests.conftest import assert_cleaned_up, runtime_processes


def pid(_=None):
    import time

    time.sleep(0.2)
    return os.getpid()


@pytest.mark.parametrize("address_env", [None, "local"])
def test_a_pool_before_init_starts_a_cluster_with_its_processes_as_cpus(monkeypatch, address_env):
    """More processes than the machine has CPUs: Ray's Pool does init(num_cpus=processes)."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if address_env is None:
        monkeypatch.delenv("MINRAY_ADDRESS", raising=False)
    else:
        monkeypatch.setenv("MINRAY_ADDRESS", address_env)
    assert not minray.is_initialized()
    processes = (psutil.cpu_count() or 1) + 1
    pool = None
    try:
        pool = Pool(processes=processes)
        assert minray.cluster_resources()["CPU"] == processes
        assert len(set(pool.map(pid, range(processes), chunksize=1))) == processes
    finally:
        if pool is not None:
            pool.terminate()
        session_dir = minray.api._state.session_dir
        started = runtime_processes()
        minray.shutdown()
    assert_cleaned_up(started, session_dir)


def test_a_running_cluster_is_used_and_its_cpus_bound_the_pool(cluster):
    with Pool() as pool:
        assert repr(pool) == "<Pool state=RUN pool_size=2>"
    with pytest.raises(ValueError, match="only 2 CPUs in the cluster. Pass at most processes=2"):
        Pool(processes=3)
