"""Exercise 9: multiprocessing.Pool and joblib on minray. A solution.

Run it:   python docs/course/ex09_pool_and_joblib/solution.py
Check it: make course-check EX=9 SOLUTION=1
"""

import os
import time

import joblib

import minray as ray
from minray.util.joblib import register_ray
from minray.util.multiprocessing import Pool


def make_pool(processes):
    """A pool of `processes` worker processes on the minray cluster."""
    return Pool(processes)  # each process is a minray actor


def pool_map(pool, fn, items):
    """[fn(item) for item in items], computed by the pool's processes."""
    return pool.map(fn, items)


def joblib_map(fn, items, n_jobs):
    """[fn(item) for item in items], computed by joblib on the minray cluster."""
    register_ray()
    with joblib.parallel_backend("ray"):
        return joblib.Parallel(n_jobs=n_jobs)(joblib.delayed(fn)(item) for item in items)


def slow_pid(x):
    time.sleep(0.1)
    return os.getpid()


if __name__ == "__main__":
    ray.init(num_cpus=4)
    pool = make_pool(2)
    print("squares:", pool_map(pool, lambda x: x * x, range(10)))
    print("pool processes:", sorted(set(pool_map(pool, slow_pid, range(8)))))
    pool.close()
    pool.join()
    print("joblib processes:", sorted(set(joblib_map(slow_pid, range(8), n_jobs=2))))
    print("this process:", os.getpid())
    ray.shutdown()
