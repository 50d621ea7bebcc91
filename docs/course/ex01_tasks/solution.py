"""Exercise 1: tasks and futures. A solution.

Run it:   python docs/course/ex01_tasks/solution.py
Check it: make course-check EX=1 SOLUTION=1
"""

import asyncio
import time

import minray as ray


@ray.remote
def slow_square(x):
    time.sleep(0.25)  # pretend this is real work
    return x * x


def squares(n):
    """[0, 1, 4, ..., (n - 1) ** 2], the n slow squares computed in parallel."""
    refs = [slow_square.remote(i) for i in range(n)]  # all n tasks start now
    return ray.get(refs)  # then wait for all of them at once


async def squares_async(n):
    """The same list, for asyncio code: await the refs instead of blocking in ray.get."""
    refs = [slow_square.remote(i) for i in range(n)]
    return await asyncio.gather(*refs)


if __name__ == "__main__":
    ray.init(num_cpus=4)
    start = time.perf_counter()
    print("squares(8):", squares(8), f"in {time.perf_counter() - start:.2f} s")
    print("squares_async(4):", asyncio.run(squares_async(4)))
    ray.shutdown()
