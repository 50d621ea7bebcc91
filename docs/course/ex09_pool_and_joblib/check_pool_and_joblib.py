"""Checks for exercise 9, multiprocessing.Pool and joblib: ``make course-check EX=9``."""

import os
import time

import pytest

from minray.util.multiprocessing import Pool

pytestmark = pytest.mark.usefixtures("ray_cluster")


def slow_pid(_):  # (defined in the check: sent by value, as the answer's functions)
    time.sleep(0.1)
    return os.getpid()


@pytest.fixture
def pool(answer):
    pool = answer.make_pool(2)
    yield pool
    pool.terminate()
    pool.join()


def test_make_pool_makes_a_minray_pool(pool):
    assert isinstance(pool, Pool), (
        f"make_pool returned a {type(pool).__module__}.{type(pool).__name__}: return "
        "minray.util.multiprocessing.Pool(processes)"
    )


def test_pool_map_maps_in_order(answer, pool):
    assert answer.pool_map(pool, lambda x: x * x, range(20)) == [x * x for x in range(20)]


def test_the_pools_work_runs_in_two_other_processes(answer, pool):
    pids = set(answer.pool_map(pool, slow_pid, range(8)))
    assert os.getpid() not in pids, "the pool's work ran in this process (threads?)"
    assert len(pids) == 2, f"8 slow items ran in {len(pids)} processes, expected the pool's 2"


def test_joblib_map_runs_on_the_cluster(answer):
    assert answer.joblib_map(lambda x: x + 1, range(10), n_jobs=2) == list(range(1, 11))
    pids = set(answer.joblib_map(slow_pid, range(8), n_jobs=2))
    assert os.getpid() not in pids, (
        "joblib ran the work in this process: register_ray() and run Parallel inside "
        'joblib.parallel_backend("ray")'
    )
    assert len(pids) == 2, f"n_jobs=2 ran in {len(pids)} processes"
