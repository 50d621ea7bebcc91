"""Exercise 2: task chains and wait. The task is in README.md, next to this file.

Run it:   python docs/course/ex02_chains_and_wait/starter.py
Check it: make course-check EX=2
"""

import time

import minray as ray


@ray.remote
def add_one(x):
    time.sleep(0.1)
    return x + 1


@ray.remote
def sleeper(seconds):
    time.sleep(seconds)
    return seconds


def chain(start, links):
    """The ref of start + links, computed by `links` add_one tasks, each fed by the last one.

    Returns at once: the caller decides when to wait for the value.
    """
    # TODO: pass each ref straight into the next add_one.remote(...): no ray.get here.
    value = start
    for _ in range(links):
        value = ray.get(add_one.remote(value))
    return ray.put(value)


def first_k(delays, k):
    """Run sleeper(d) for every d in delays; the values of the first k tasks to finish."""
    refs = [sleeper.remote(d) for d in delays]
    # TODO: ray.wait(refs, num_returns=k) returns (ready, not_ready) as soon as k are done.
    return sorted(ray.get(refs))[:k]


def in_finish_order(refs):
    """Yield the values of refs one by one, each as soon as its task finishes."""
    # TODO: loop: ready, refs = ray.wait(refs, num_returns=1); yield the ready value.
    yield from ray.get(refs)


if __name__ == "__main__":
    ray.init(num_cpus=4)
    start = time.perf_counter()
    ref = chain(0, 5)
    print(f"chain(0, 5) returned after {time.perf_counter() - start:.2f} s")
    print("its value:", ray.get(ref), f"after {time.perf_counter() - start:.2f} s")
    print("first_k([1.5, 0.1, 0.8, 0.05], 2):", first_k([1.5, 0.1, 0.8, 0.05], 2))
    start = time.perf_counter()
    for value in in_finish_order([sleeper.remote(d) for d in (0.9, 0.1, 0.5)]):
        print(f"{value} finished after {time.perf_counter() - start:.2f} s")
    ray.shutdown()
