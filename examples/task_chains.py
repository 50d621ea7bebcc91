"""Chains of tasks: refs returned by one task go straight into the next.

The first lines are Ray's first example: ``zeros`` makes two arrays, ``dot``
multiplies them, and the caller passes the refs without waiting for either
array. minray runs ``dot`` once both inputs exist and hands it their values.
Then a longer chain: each task's result is the argument of the next one, so
the tasks run one after another, and the time per link is the cost of one
dependent task (submit, wait for the argument, run, return).

Run: ``python examples/task_chains.py``
"""

import time

import numpy as np

import minray as ray


@ray.remote
def zeros(shape):
    return np.zeros(shape)


@ray.remote
def dot(a, b):
    return np.dot(a, b)


@ray.remote
def add_one(array):
    return array + 1


def main(links=200):
    ray.init(num_cpus=2)

    # The seeds' chain: no ray.get between the calls; refs are arguments.
    c = dot.remote(zeros.remote([10, 10]), zeros.remote([10, 10]))
    product = ray.get(c)
    print(f"dot(zeros, zeros): shape {product.shape}, sum {product.sum()}")

    # A chain that grows: the identity matrix times itself, many times over.
    identity = ray.put(np.eye(10))
    ref = identity
    for _ in range(10):
        ref = dot.remote(ref, identity)
    print("identity^11 is the identity:", bool(np.array_equal(ray.get(ref), np.eye(10))))

    # A longer chain, timed: each link waits for the one before it.
    start = time.perf_counter()
    ref = zeros.remote([100])
    for _ in range(links):
        ref = add_one.remote(ref)
    result = ray.get(ref)
    elapsed = time.perf_counter() - start
    print(
        f"a chain of {links + 1} dependent tasks took {elapsed * 1000:.0f} ms "
        f"({elapsed / (links + 1) * 1000:.2f} ms per task)"
    )

    ray.shutdown()
    print(f"chain finished: every element is {result[0]:.0f} (expected {links})")


if __name__ == "__main__":
    main()
