"""Checks for exercise 2, task chains and wait: ``make course-check EX=2``."""

import time

import pytest

import minray

pytestmark = pytest.mark.usefixtures("ray_cluster")


@pytest.fixture(scope="module", autouse=True)
def warm_workers(ray_cluster, answer):
    """Start the cluster's 4 workers before anything is timed."""
    minray.get([answer.sleeper.remote(0.05) for _ in range(4)])


def test_chain_returns_a_ref_at_once_and_its_value_later(answer):
    start = time.perf_counter()
    ref = answer.chain(10, 6)
    returned = time.perf_counter() - start
    assert isinstance(ref, minray.ObjectRef), "chain must return an ObjectRef, not a value"
    assert minray.get(ref, timeout=30) == 16
    assert returned < 0.3, (
        f"chain(10, 6) took {returned:.2f} s to return (6 links of 0.1 s): it waited for "
        "each link. Pass the ref of one add_one task to the next; do not ray.get in between."
    )


def test_chain_of_zero_links_is_the_start_value(answer):
    assert minray.get(answer.chain(3, 0), timeout=30) == 3


def test_first_k_returns_as_soon_as_k_tasks_are_done(answer):
    start = time.perf_counter()
    values = answer.first_k([1.5, 0.1, 0.8, 0.05], 2)
    took = time.perf_counter() - start
    assert sorted(values) == [0.05, 0.1]
    assert took < 0.7, (
        f"first_k took {took:.2f} s: it waited for slower tasks. ray.wait(refs, num_returns=k) "
        "returns as soon as k of the refs are ready."
    )


def test_in_finish_order_yields_each_value_when_its_task_ends(answer):
    refs = [answer.sleeper.remote(d) for d in (1.0, 0.1, 0.5)]
    start = time.perf_counter()
    seen = []
    for value in answer.in_finish_order(refs):
        seen.append((value, time.perf_counter() - start))
    assert [value for value, _ in seen] == [0.1, 0.5, 1.0], "values in the order tasks finish"
    assert seen[0][1] < 0.45, (
        f"the first value came after {seen[0][1]:.2f} s, though a task took 0.1 s: "
        "yield each value as soon as ray.wait says it is ready"
    )
