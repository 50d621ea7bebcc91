"""minray.util.ActorPool: Ray's pool of actors (SEMANTICS.md section 13)."""

from __future__ import annotations

import pytest

import minray
from minray.exceptions import ActorDiedError, RayTaskError
from minray.util.actor_pool import ActorPool


@minray.remote
class Worker:
    def __init__(self):
        self.calls = 0

    def double(self, x):
        self.calls += 1
        return 2 * x

    def double_after(self, gate, x):
        return 2 * x  # given a ref as gate, the call starts once the gate is ready

    def fail_on(self, bad, x):
        if x == bad:
            raise ValueError(f"bad value {x}")
        return x

    def die(self, x):
        minray.actor.exit_actor()

    def count(self):
        return self.calls


@minray.remote
class Signal:
    """An async actor whose ``wait`` returns once ``send`` was called."""

    def __init__(self):
        import asyncio

        self.event = asyncio.Event()

    async def send(self):
        self.event.set()

    async def wait(self):
        await self.event.wait()


def double(actor, v):
    return actor.double.remote(v)


def test_map_yields_results_in_input_order_and_uses_every_actor(cluster):
    actors = [Worker.remote(), Worker.remote()]
    pool = ActorPool(actors)
    assert list(pool.map(double, range(10))) == [2 * i for i in range(10)]
    assert sum(minray.get([a.count.remote() for a in actors])) == 10
    assert all(minray.get([a.count.remote() for a in actors]))
    assert not pool.has_next()


def test_map_unordered_yields_every_result(cluster):
    pool = ActorPool([Worker.remote(), Worker.remote()])
    assert sorted(pool.map_unordered(double, range(7))) == [2 * i for i in range(7)]


def test_map_unordered_yields_results_in_completion_order(cluster):
    signal = Signal.remote()
    pool = ActorPool([Worker.remote(), Worker.remote()])
    gate = signal.wait.remote()
    results = pool.map_unordered(
        lambda a, v: a.double_after.remote(gate if v == 0 else 0, v), [0, 1]
    )
    assert next(results) == 2  # item 0 is still waiting for the signal
    minray.get(signal.send.remote())
    assert next(results) == 0


def test_map_submits_at_call_time_and_discards_unfetched_results(cluster):
    pool = ActorPool([Worker.remote()])
    pool.submit(double, 100)
    pool.submit(double, 200)  # queued: the only actor is busy
    results = pool.map(double, [1, 2])
    assert pool.has_next()  # submitted before the generator is touched
    assert list(results) == [2, 4]  # 200 and 400 were discarded


def test_submit_queues_when_no_actor_is_free_and_get_next_keeps_order(cluster):
    pool = ActorPool([Worker.remote(), Worker.remote()])
    for v in range(5):
        pool.submit(double, v)
    assert not pool.has_free()
    assert [pool.get_next() for _ in range(5)] == [0, 2, 4, 6, 8]
    assert pool.has_free()


def test_get_next_unordered_returns_each_result_once(cluster):
    pool = ActorPool([Worker.remote(), Worker.remote()])
    for v in range(4):
        pool.submit(double, v)
    got = []
    while pool.has_next():
        got.append(pool.get_next_unordered())
    assert sorted(got) == [0, 2, 4, 6]


def test_nothing_pending_raises_stop_iteration(cluster):
    pool = ActorPool([Worker.remote()])
    with pytest.raises(StopIteration, match="No more results to get"):
        pool.get_next()
    with pytest.raises(StopIteration, match="No more results to get"):
        pool.get_next_unordered()


def test_timeouts_raise_builtin_timeout_error_and_keep_the_item(cluster):
    signal = Signal.remote()
    gate = signal.wait.remote()
    pool = ActorPool([Worker.remote()])
    pool.submit(lambda a, v: a.double_after.remote(gate, v), 21)
    for get_one in (pool.get_next, pool.get_next_unordered):
        with pytest.raises(TimeoutError, match="^Timed out waiting for result$") as info:
            get_one(timeout=0.01)
        assert type(info.value) is TimeoutError
    assert pool.has_next()
    minray.get(signal.send.remote())
    assert pool.get_next(timeout=30) == 42


@pytest.mark.parametrize("method", ["get_next", "get_next_unordered"])
def test_ignore_if_timedout_drops_the_item_and_says_so(cluster, method):
    signal = Signal.remote()
    gate = signal.wait.remote()
    pool = ActorPool([Worker.remote()])
    pool.submit(lambda a, v: a.double_after.remote(gate, v), 1)
    with pytest.raises(TimeoutError, match=r"Timed out waiting for result\. The task ObjectRef"):
        getattr(pool, method)(timeout=0, ignore_if_timedout=True)
    assert not pool.has_next() and pool.has_free()
    minray.get(signal.send.remote())
    pool.submit(double, 5)  # the actor is back in the pool
    assert pool.get_next() == 10


def test_get_next_after_get_next_unordered_is_refused(cluster):
    signal = Signal.remote()
    gate = signal.wait.remote()
    pool = ActorPool([Worker.remote(), Worker.remote()])
    pool.submit(lambda a, v: a.double_after.remote(gate, v), 0)
    pool.submit(double, 1)
    assert pool.get_next_unordered() == 2  # item 1 finished first
    minray.get(signal.send.remote())
    pool.submit(double, 2)
    assert pool.get_next() == 4  # in order after item 1 ...
    with pytest.raises(ValueError, match=r"not allowed to call get_next\(\) after"):
        pool.get_next()  # ... but item 0 was passed over
    assert pool.get_next_unordered() == 0


def test_a_failing_item_raises_and_the_rest_stay_in_the_pool(cluster):
    pool = ActorPool([Worker.remote(), Worker.remote()])
    results = pool.map(lambda a, v: a.fail_on.remote(1, v), [0, 1, 2, 3])
    assert next(results) == 0
    with pytest.raises(ValueError, match="bad value 1") as info:
        next(results)
    assert isinstance(info.value, RayTaskError)
    assert pool.has_next()
    assert [pool.get_next(), pool.get_next()] == [2, 3]


def test_an_actor_that_died_leaves_the_pool(cluster):
    doomed, healthy = Worker.remote(), Worker.remote()
    pool = ActorPool([healthy, doomed])  # submit() takes the last idle actor first
    pool.submit(lambda a, v: a.die.remote(v), 0)
    with pytest.raises(ActorDiedError):
        pool.get_next()
    assert pool.pop_idle() == healthy
    assert pool.pop_idle() is None


def test_fn_that_does_not_return_a_ref_fails_in_get(cluster):
    pool = ActorPool([Worker.remote()])
    pool.submit(lambda a, v: v, 3)
    with pytest.raises(ValueError, match="Invalid type of object refs"):
        pool.get_next()


def test_pop_idle_push_and_has_free(cluster):
    a, b = Worker.remote(), Worker.remote()
    pool = ActorPool([a])
    assert pool.has_free()
    assert pool.pop_idle() == a
    assert not pool.has_free() and pool.pop_idle() is None
    pool.submit(double, 4)  # waits for an actor
    assert not pool.has_next()
    pool.push(b)  # takes the waiting item at once
    assert pool.has_next() and not pool.has_free()
    assert pool.get_next() == 8
    with pytest.raises(ValueError, match="Actor already belongs to current ActorPool"):
        pool.push(b)
    pool.push(a)
    assert pool.has_free()
