"""minray.util.queue.Queue: a queue held by an async actor (SEMANTICS.md section 14)."""

from __future__ import annotations

import queue as stdlib_queue

import pytest

import minray
from minray.exceptions import RayTaskError
from minray.util.queue import Empty, Full, Queue


def test_empty_and_full_subclass_the_stdlib_errors():
    assert issubclass(Empty, stdlib_queue.Empty)
    assert issubclass(Full, stdlib_queue.Full)


def test_put_and_get_are_first_in_first_out(cluster):
    q = Queue()
    for item in ["a", {"b": 1}, 3]:
        q.put(item)
    assert (q.qsize(), q.size(), len(q)) == (3, 3, 3)
    assert [q.get(), q.get(), q.get_nowait()] == ["a", {"b": 1}, 3]
    assert q.empty()


def test_an_unbounded_queue_is_never_full(cluster):
    q = Queue(maxsize=0)
    q.put_nowait_batch(range(100))
    assert not q.full() and q.size() == 100


def test_non_blocking_failures_raise_plain_empty_and_full(cluster):
    q = Queue(maxsize=1)
    with pytest.raises(Empty) as empty:
        q.get_nowait()
    with pytest.raises(Empty):
        q.get(block=False)
    q.put_nowait(1)
    assert q.full()
    with pytest.raises(Full) as full:
        q.put_nowait(2)
    with pytest.raises(Full):
        q.put(2, block=False)
    for info in (empty, full):
        assert not isinstance(info.value, RayTaskError) and str(info.value) == ""


def test_blocking_timeouts_raise_ray_task_errors_that_are_empty_and_full(cluster):
    q = Queue(maxsize=1)
    with pytest.raises(Empty) as empty:
        q.get(timeout=0.01)
    q.put(1)
    with pytest.raises(Full) as full:
        q.put(2, block=True, timeout=0.01)
    assert isinstance(empty.value, RayTaskError) and isinstance(full.value, RayTaskError)
    assert "_QueueActor.put" in str(full.value)  # the remote traceback
    assert q.get() == 1


def test_negative_timeouts_are_rejected(cluster):
    q = Queue()
    with pytest.raises(ValueError, match="'timeout' must be a non-negative number"):
        q.get(timeout=-1)
    with pytest.raises(ValueError, match="'timeout' must be a non-negative number"):
        q.put(1, timeout=-0.5)


def test_batches_are_all_or_nothing(cluster):
    q = Queue(maxsize=2)
    with pytest.raises(
        Full, match=r"Cannot add 3 items to queue of size 0 and maxsize 2\."
    ) as info:
        q.put_nowait_batch([1, 2, 3])
    assert isinstance(info.value, RayTaskError)
    assert q.empty()
    q.put_nowait_batch(x for x in "ab")
    with pytest.raises(Empty, match=r"Cannot get 3 items from queue of size 2\.") as info:
        q.get_nowait_batch(3)
    assert isinstance(info.value, RayTaskError)
    assert q.get_nowait_batch(0) == []
    assert q.get_nowait_batch(2) == ["a", "b"]


def test_batch_arguments_are_checked(cluster):
    q = Queue()
    with pytest.raises(TypeError, match="Argument 'items' must be an Iterable"):
        q.put_nowait_batch(5)
    with pytest.raises(TypeError, match="Argument 'num_items' must be an int"):
        q.get_nowait_batch("2")
    with pytest.raises(ValueError, match="'num_items' must be nonnegative"):
        q.get_nowait_batch(-1)


async def test_async_put_and_get(cluster):
    q = Queue(maxsize=1)
    await q.put_async("x")
    with pytest.raises(Full):
        await q.put_async("y", block=False)
    with pytest.raises(Full):
        await q.put_async("y", timeout=0.01)
    assert await q.get_async() == "x"
    with pytest.raises(Empty):
        await q.get_async(block=False)
    with pytest.raises(Empty):
        await q.get_async(timeout=0)
    with pytest.raises(ValueError):
        await q.get_async(timeout=-1)


@minray.remote
def produce(q, n):
    for i in range(n):
        q.put(i)
    q.put(None)
    return "done"


@minray.remote
def consume(q):
    items = []
    while (item := q.get(timeout=30)) is not None:
        items.append(item)
    return items


@minray.remote
class Collector:
    def __init__(self, q):
        self.q = q

    def drain(self, n):
        return [self.q.get(timeout=30) for _ in range(n)]

    def refill(self, items):
        self.q.put_nowait_batch(items)


def test_tasks_share_a_bounded_queue(cluster):
    q = Queue(maxsize=3)  # the producer blocks until the consumer takes items
    consumed = consume.remote(q)
    assert minray.get(produce.remote(q, 20)) == "done"
    assert minray.get(consumed) == list(range(20))
    assert q.empty()


def test_an_actor_uses_a_queue_it_was_given(cluster):
    q = Queue()
    collector = Collector.remote(q)
    draining = collector.drain.remote(3)
    q.put_nowait_batch([1, 2, 3])
    assert minray.get(draining) == [1, 2, 3]
    minray.get(collector.refill.remote(["r"]))
    assert q.get() == "r"


def test_blocking_get_waits_for_a_later_put(cluster):
    q = Queue()
    waiting = consume.remote(q)
    q.put("late")
    q.put(None)
    assert minray.get(waiting) == ["late"]


def test_actor_options_reach_the_backing_actor(cluster):
    q = Queue(actor_options={"name": "the-queue", "num_cpus": 0})
    q.put(7)
    assert minray.get(minray.get_actor("the-queue").qsize.remote()) == 1


@pytest.mark.parametrize("force", [False, True])
def test_after_shutdown_calls_fail_with_attribute_error(cluster, force):
    q = Queue()
    q.put(1)
    q.shutdown(force=force, grace_period_s=5)
    with pytest.raises(AttributeError):
        q.get()
    q.shutdown()  # a second shutdown does nothing
