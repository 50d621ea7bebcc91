"""Checks for exercise 5, actors and a counter: ``make course-check EX=5``."""

import pytest

import minray

pytestmark = pytest.mark.usefixtures("ray_cluster")


def require_an_actor(answer):
    assert hasattr(answer.Counter, "remote"), "Counter is not an actor: add @ray.remote"


def test_counter_is_an_actor(answer):
    require_an_actor(answer)
    counter = answer.Counter.remote()
    assert minray.get(counter.increment.remote(), timeout=30) == 1


def test_calls_from_one_caller_run_in_order(answer):
    require_an_actor(answer)
    counter = answer.Counter.remote()
    assert minray.get([counter.increment.remote() for _ in range(20)]) == list(range(1, 21))
    assert minray.get(counter.get.remote()) == 20


def test_two_counters_keep_their_own_state(answer):
    require_an_actor(answer)
    first, second = answer.Counter.remote(), answer.Counter.remote()
    minray.get([first.increment.remote() for _ in range(3)])
    assert minray.get([first.get.remote(), second.get.remote()]) == [3, 0]


@pytest.mark.parametrize("num_tasks, times", [(4, 25), (3, 1)])
def test_count_with_tasks_counts_every_increment(answer, num_tasks, times):
    result = answer.count_with_tasks(num_tasks, times)
    assert result == num_tasks * times, (
        f"count_with_tasks({num_tasks}, {times}) returned {result}. A plain object passed "
        "to a task is copied: each task counted on its own copy. An actor is one object in "
        "one process that every task reaches through its handle."
    )
