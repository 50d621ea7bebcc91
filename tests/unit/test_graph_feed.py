"""The task graph's live feed (head/graph_feed.py): changes gathered per flush, offered
to every listener, bounded per listener, never waiting for one; with a fake timer."""

from __future__ import annotations

import asyncio
import json

import pytest

from minray.head.graph_feed import GraphFeed, Listener, TooManyListeners
from minray.head.task_table import TaskTable

T1, T2 = b"\x01" * 24, b"\x02" * 24


class FakeTimer:
    """call_later that runs nothing until told to."""

    def __init__(self):
        self.pending: list = []

    def __call__(self, delay: float, callback):
        self.pending.append(callback)
        return self

    def cancel(self) -> None:
        self.pending.clear()

    def fire(self) -> None:
        pending, self.pending = self.pending, []
        for callback in pending:
            callback()


def events_of(task: bytes, state: str) -> list:
    return [[task, 0, state, 1.0, ["f", "NORMAL_TASK", b"j" * 4, b"", {}, ()]]]


def feed_with(table: TaskTable, **kwargs) -> tuple[GraphFeed, FakeTimer]:
    timer = FakeTimer()
    return GraphFeed(table, call_later=timer, **kwargs), timer


def note(feed: GraphFeed, table: TaskTable, events: list) -> None:
    """What the head does with a batch: apply it, then tell the feed."""
    table.add(events)
    feed.note(events)


def test_without_listeners_the_feed_does_nothing():
    table = TaskTable()
    feed, timer = feed_with(table)
    note(feed, table, events_of(T1, "RUNNING"))
    assert timer.pending == [] and feed._changed == {}


def test_changes_of_a_flush_go_to_every_listener_once_per_task_as_the_table_has_it():
    table = TaskTable()
    feed, timer = feed_with(table)
    first, second = feed.listen(), feed.listen()
    note(feed, table, events_of(T1, "PENDING_NODE_ASSIGNMENT"))
    note(feed, table, events_of(T1, "RUNNING") + events_of(T2, "PENDING_NODE_ASSIGNMENT"))
    assert len(timer.pending) == 1  # one flush for both batches
    timer.fire()
    for listener in (first, second):
        ((name, data),) = listener.queue
        nodes = json.loads(data)["nodes"]
        assert name == "changes"
        assert [(n["id"], n["state"]) for n in nodes] == [
            (T1.hex(), "RUNNING"),
            (T2.hex(), "PENDING_NODE_ASSIGNMENT"),
        ]


def test_too_many_changes_at_once_tell_listeners_to_reload_instead():
    table = TaskTable()
    feed, timer = feed_with(table, max_changed=3)
    listener = feed.listen()
    many = [e for n in range(5) for e in events_of(bytes([n]) * 24, "RUNNING")]
    note(feed, table, many)
    timer.fire()
    ((name, data),) = listener.queue
    assert name == "reload" and json.loads(data) == {"changed_more_than": 3}
    note(feed, table, events_of(T1, "FINISHED"))
    timer.fire()
    assert listener.queue[-1][0] == "changes"  # the next flush is back to nodes


def test_a_listener_that_reads_too_slowly_loses_its_changes_for_one_reset():
    listener = Listener(capacity=3)
    for n in range(3):
        listener.offer(("changes", str(n)))
    listener.offer(("changes", "3"))
    assert [name for name, _ in listener.queue] == ["reset"] and listener.resets == 1
    listener.offer(("changes", "4"))
    assert len(listener.queue) == 2


def test_a_page_beyond_the_limit_is_refused_and_one_that_leaves_makes_room():
    feed, _ = feed_with(TaskTable(), max_listeners=2)
    first = feed.listen()
    feed.listen()
    with pytest.raises(TooManyListeners, match="2 pages already follow the task graph"):
        feed.listen()
    feed.leave(first)
    assert first.closed
    feed.listen()


def test_a_listener_wakes_for_a_change_times_out_when_quiet_and_ends_when_closed():
    async def main() -> None:
        listener = Listener()
        assert await listener.next(0.01) is None
        asyncio.get_running_loop().call_later(0.01, listener.offer, ("changes", "{}"))
        assert await asyncio.wait_for(listener.next(5.0), 2.0) == ("changes", "{}")
        asyncio.get_running_loop().call_later(0.01, listener.close)
        assert await asyncio.wait_for(listener.next(5.0), 2.0) is None

    asyncio.run(main())


def test_closing_the_feed_closes_its_listeners_and_stops_its_timer():
    table = TaskTable()
    feed, timer = feed_with(table)
    listener = feed.listen()
    note(feed, table, events_of(T1, "RUNNING"))
    feed.close()
    assert listener.closed and feed.listeners == set() and timer.pending == []
