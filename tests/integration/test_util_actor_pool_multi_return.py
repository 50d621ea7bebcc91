"""ActorPool items whose fn returns several refs (a method with ``num_returns=2``), as in Ray."""

from __future__ import annotations

import pytest

import minray
from minray.util.actor_pool import ActorPool


@minray.remote
class Pair:
    @minray.method(num_returns=2)
    def two(self, x):
        return x, 10 * x

    @minray.method(num_returns=2)
    def two_after(self, gate, x):
        return x, 10 * x  # given a ref as gate, the call starts once the gate is ready


@minray.remote
class Signal:
    def __init__(self):
        import asyncio

        self.event = asyncio.Event()

    async def send(self):
        self.event.set()

    async def wait(self):
        await self.event.wait()


def two(actor, v):
    return actor.two.remote(v)


def test_get_next_and_map_give_the_list_of_values(cluster):
    pool = ActorPool([Pair.remote(), Pair.remote()])
    pool.submit(two, 1)
    pool.submit(two, 2)
    pool.submit(two, 3)  # queued until an actor is free
    assert [pool.get_next(), pool.get_next(), pool.get_next()] == [[1, 10], [2, 20], [3, 30]]
    assert list(pool.map(two, [4, 5])) == [[4, 40], [5, 50]]
    assert sorted(pool.map_unordered(two, [6, 7, 8])) == [[6, 60], [7, 70], [8, 80]]


def test_timeouts_and_unordered_wait_for_all_refs_of_an_item(cluster):
    signal = Signal.remote()
    gate = signal.wait.remote()
    pool = ActorPool([Pair.remote(), Pair.remote()])
    pool.submit(lambda a, v: a.two_after.remote(gate, v), 1)
    pool.submit(two, 2)
    with pytest.raises(TimeoutError, match="Timed out waiting for result"):
        pool.get_next(timeout=0.2)
    assert pool.get_next_unordered(timeout=10) == [2, 20]  # item 1 is still waiting
    with pytest.raises(TimeoutError):
        pool.get_next_unordered(timeout=0.2)
    minray.get(signal.send.remote())
    assert pool.get_next_unordered(timeout=10) == [1, 10]
    assert not pool.has_next() and pool.has_free()


def test_get_next_with_a_timeout_waits_for_every_ref(cluster):
    pool = ActorPool([Pair.remote()])
    pool.submit(two, 1)
    pool.submit(two, 2)
    assert [pool.get_next(timeout=10), pool.get_next(timeout=10)] == [[1, 10], [2, 20]]
