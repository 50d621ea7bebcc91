"""Exercise 1: tasks and futures. The task is in README.md, next to this file.

Run it:   python docs/course/ex01_tasks/starter.py
Check it: make course-check EX=1
"""

import asyncio
import time

import minray as ray


# TODO: make slow_square a task: decorate it with @ray.remote.
def slow_square(x):
    time.sleep(0.25)  # pretend this is real work
    return x * x


def squares(n):
    """[0, 1, 4, ..., (n - 1) ** 2], the n slow squares computed in parallel."""
    # TODO: start all n tasks first (each slow_square.remote(i) returns an ObjectRef at
    # once), then fetch all the values with a single ray.get(list_of_refs).
    return [slow_square(i) for i in range(n)]


async def squares_async(n):
    """The same list, for asyncio code: await the refs instead of blocking in ray.get."""
    # TODO: start the tasks, then `await asyncio.gather(*refs)`: an ObjectRef is awaitable.
    await asyncio.sleep(0)
    return [slow_square(i) for i in range(n)]


if __name__ == "__main__":
    ray.init(num_cpus=4)
    start = time.perf_counter()
    print("squares(8):", squares(8), f"in {time.perf_counter() - start:.2f} s")
    print("squares_async(4):", asyncio.run(squares_async(4)))
    ray.shutdown()
