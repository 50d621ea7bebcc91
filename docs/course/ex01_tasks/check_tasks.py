"""Checks for exercise 1, tasks and futures: ``make course-check EX=1``."""

import asyncio
import time

import pytest

import minray

pytestmark = pytest.mark.usefixtures("ray_cluster")

#: 8 tasks of 0.25 s on 4 CPUs take 0.5 s in parallel and 2 s one after another
PARALLEL_BOUND_S = 1.4


def require_a_task(answer):
    assert hasattr(answer.slow_square, "remote"), "slow_square is not a task: add @ray.remote"


def test_slow_square_is_a_task(answer):
    require_a_task(answer)
    assert minray.get(answer.slow_square.remote(7)) == 49


def test_squares_returns_the_squares_in_order(answer):
    assert answer.squares(5) == [0, 1, 4, 9, 16]


def test_squares_runs_its_tasks_in_parallel(answer):
    require_a_task(answer)
    answer.squares(4)  # the first tasks start the workers; time the next ones
    start = time.perf_counter()
    result = answer.squares(8)
    took = time.perf_counter() - start
    assert result == [i * i for i in range(8)]
    assert took < PARALLEL_BOUND_S, (
        f"squares(8) took {took:.2f} s: the tasks ran one after another. Call .remote() for "
        "every task first, and ray.get only once all of them have started."
    )


def test_squares_async_awaits_the_refs(answer):
    require_a_task(answer)
    assert asyncio.run(answer.squares_async(3)) == [0, 1, 4]
    start = time.perf_counter()
    result = asyncio.run(answer.squares_async(8))
    took = time.perf_counter() - start
    assert result == [i * i for i in range(8)]
    assert took < PARALLEL_BOUND_S, f"squares_async(8) took {took:.2f} s: start every task first"
