"""A first tour of minray: tasks, a chain of dependent tasks, objects, wait and await.

Run it with ``make demo`` (or ``python examples/quickstart.py``).
"""

import asyncio
import time

import numpy as np

import minray as ray


@ray.remote
def square(x):
    return x * x


@ray.remote
def add(a, b):
    return a + b


@ray.remote
def slow(seconds):
    time.sleep(seconds)
    return seconds


@ray.remote
def total(array):
    print(
        f"summing an array of {array.nbytes / 2**20:.0f} MiB, read-only={not array.flags.writeable}"
    )
    return float(array.sum())


def main():
    start = time.perf_counter()
    ray.init(num_cpus=2)
    first = ray.get(square.remote(4))
    print(
        f"init() and the first task took {time.perf_counter() - start:.2f} s -> square(4) = {first}"
    )

    # Parallel tasks: refs come back at once, values when ready.
    refs = [square.remote(i) for i in range(10)]
    print("squares:", ray.get(refs))

    # A chain: refs passed as arguments are resolved to values before the task runs.
    a = square.remote(3)
    b = square.remote(4)
    c = add.remote(a, b)
    print("3*3 + 4*4 =", ray.get(c))

    # Objects: a 200 MiB array goes to shared memory once; tasks and get() read it without copying.
    array = np.ones(25_000_000)
    t = time.perf_counter()
    array_ref = ray.put(array)
    put_s = time.perf_counter() - t
    t = time.perf_counter()
    view = ray.get(array_ref)
    get_ms = (time.perf_counter() - t) * 1000
    print(
        f"put of {array.nbytes / 2**20:.0f} MiB: {put_s * 1000:.0f} ms, get: {get_ms:.2f} ms "
        f"(zero-copy, read-only={not view.flags.writeable})"
    )
    print("sum computed by a task:", ray.get(total.remote(array_ref)))

    # wait: the first ready refs, in submission order; the rest stay pending.
    waiting = [slow.remote(0.5), slow.remote(0.05), slow.remote(1.0)]
    ready, not_ready = ray.wait(waiting, num_returns=1, timeout=2)
    print(f"wait: {len(ready)} ready ({ray.get(ready)}), {len(not_ready)} still running")

    # Errors surface at get() as the task's own exception type, with the remote traceback.
    @ray.remote
    def fails():
        raise ValueError("this task failed on purpose")

    try:
        ray.get(fails.remote())
    except ValueError as error:
        print("caught the task's ValueError:", str(error).splitlines()[-1])

    # asyncio: refs are awaitable.
    async def gather_squares():
        return await asyncio.gather(*[square.remote(i) for i in range(5)])

    print("awaited:", asyncio.run(gather_squares()))

    t = time.perf_counter()
    ray.shutdown()
    print(f"shutdown took {time.perf_counter() - t:.2f} s; nothing is left running")


if __name__ == "__main__":
    main()
