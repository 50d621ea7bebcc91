"""The worker's held tasks (pipelining) and the owner's choice of how many to push."""

from __future__ import annotations

import asyncio
import collections
import math
from types import SimpleNamespace

import pytest

from minray.runtime.held_tasks import HOLD_S, HeldTasks
from minray.runtime.task_leases import (
    MAX_PIPELINE_DEPTH,
    PIPELINE_BELOW_S,
    SPREAD_PIPELINE_DEPTH,
    Lease,
    TaskQueue,
)


class Reply:
    """Stands for protocol.connection.Reply: one per push, hashed by identity."""


def push(task_id: bytes) -> SimpleNamespace:
    return SimpleNamespace(task_id=task_id)


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def pause(loop) -> None:
    """Let the loop run longer than a task may be held."""
    loop.run_until_complete(asyncio.sleep(HOLD_S * 3))


def held_tasks(loop) -> tuple[HeldTasks, list]:
    back: list = []
    return HeldTasks(SimpleNamespace(loop=loop), lambda msg, reply: back.append((msg, reply))), back


def test_a_task_taken_in_time_runs_and_never_goes_back(loop) -> None:
    held, back = held_tasks(loop)
    reply = Reply()
    held.hold(push(b"a"), reply)
    assert held.take(reply)
    pause(loop)
    assert back == []
    assert not held.give_back(b"a")


def test_a_task_held_too_long_goes_back_once_and_cannot_be_taken(loop) -> None:
    held, back = held_tasks(loop)
    msg, reply = push(b"a"), Reply()
    held.hold(msg, reply)
    pause(loop)
    assert back == [(msg, reply)]
    assert not held.take(reply)
    pause(loop)
    assert len(back) == 1


def test_only_the_second_push_of_a_task_handed_back_may_run(loop) -> None:
    held, back = held_tasks(loop)
    first, second = Reply(), Reply()
    held.hold(push(b"a"), first)
    pause(loop)
    held.hold(push(b"a"), second)  # (the first still sits in the main thread's queue)
    assert not held.take(first)
    assert held.take(second)


def test_a_cancel_hands_back_the_held_task_it_names(loop) -> None:
    held, back = held_tasks(loop)
    a, b = (push(b"a"), Reply()), (push(b"b"), Reply())
    held.hold(*a)
    held.hold(*b)
    assert held.give_back(b"b")
    assert back == [b]
    assert held.take(a[1]) and not held.take(b[1])


def lease_and_queue(
    short: bool, actor_id: bytes = b"", generator=None, task_s: float = 0.0005
) -> tuple[Lease, TaskQueue]:
    grant = SimpleNamespace(lease_id=1, worker_address="w", gpu_ids=[], worker_id=b"\0")
    queue = TaskQueue({"CPU": 1.0}, actor_id)
    if short:
        queue.task_s = task_s
    queue.tasks = collections.deque([SimpleNamespace(generator=generator)])
    return Lease(grant, None, None, b"\1"), queue


def test_a_lease_pipelines_only_short_plain_tasks() -> None:
    assert lease_and_queue(short=True)[0].depth(lease_and_queue(short=True)[1]) == 2
    for lease, queue in (
        lease_and_queue(short=False),
        lease_and_queue(short=True, actor_id=b"actor"),  # an actor's creation
        lease_and_queue(short=True, generator=object()),  # a streaming generator
    ):
        assert lease.depth(queue) == 1


@pytest.mark.parametrize(
    ("task_s", "depth"),
    [(0.0009, 2), (0.0005, 2), (0.0002, 5), (0.0001, 10), (0.00005, MAX_PIPELINE_DEPTH),
     (0.0, MAX_PIPELINE_DEPTH), (PIPELINE_BELOW_S, 1), (math.inf, 1)],
)  # fmt: skip
def test_a_lease_carries_about_a_millisecond_of_short_tasks(task_s, depth) -> None:
    lease, queue = lease_and_queue(short=True, task_s=task_s)
    assert lease.depth(queue) == depth


def test_a_spread_queue_keeps_two_short_tasks_in_flight_per_lease() -> None:
    """So its tasks go to every lease its nodes grant, not mostly to the first."""
    lease, queue = lease_and_queue(short=True, task_s=0.00001)
    queue.strategy = "SPREAD"
    assert lease.depth(queue) == SPREAD_PIPELINE_DEPTH == 2
    queue.strategy = ("affinity", b"node", False)  # (pinned to a node: pipelined as usual)
    assert lease.depth(queue) == MAX_PIPELINE_DEPTH
