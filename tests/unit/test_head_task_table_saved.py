"""The task table across a head restart, without processes: the head saves its changed
attempts in batches (head/saved_tables.py), a restarted head takes them back, and a
member node sends again the task events of the last seconds (node/head_client.py)."""

from __future__ import annotations

import asyncio
import sqlite3

from minray.head.task_table import TaskTable
from minray.node.head_client import HeadClient
from minray.protocol.messages import ActorGone, GetTasks, TaskEvents

from .test_head_store import NEW_HEAD, OLD_HEAD, FakeConn, HeadNode, head

T1, T2, T3 = b"\x01" * 24, b"\x02" * 24, b"\x03" * 24
INFO = ["f", "NORMAL_TASK", b"\x01\0\0\0", b"", {"CPU": 1.0}, []]


def rows_by_id(service) -> dict[str, dict]:
    return {r["task_id"]: r for r in service.handle_GetTasks(None, GetTasks(b"")).rows}


async def test_a_restarted_head_lists_the_attempts_the_dead_one_saved(tmp_path):
    old = head(OLD_HEAD, HeadNode(1))
    old.open_store(str(tmp_path / "old.sqlite3"))
    member = {"node_id": "ab" * 28, "worker_pid": 7}
    here = {"node_id": OLD_HEAD.hex(), "worker_pid": 8}
    owners = [[T1, 0, "PENDING_NODE_ASSIGNMENT", 1.0, INFO], [T1, 0, "FINISHED", 3.0, None]]
    owners += [[t, 0, "PENDING_NODE_ASSIGNMENT", 1.5, INFO] for t in (T2, T3)]
    old.handle_TaskEvents(None, TaskEvents(owners, 0, None))
    ran = [[T1, 0, "RUNNING", 2.0, None], [T2, 0, "RUNNING", 2.5, None]]
    old.handle_TaskEvents(None, TaskEvents(ran, 0, member))
    old.handle_TaskEvents(None, TaskEvents([[T3, 0, "RUNNING", 2.6, None]], 0, here))
    saved = rows_by_id(old)
    old._save_tasks()  # (its timer would, within a second)
    await asyncio.sleep(0)  # written at the end of the loop iteration
    # the old head's process dies here

    new = head(NEW_HEAD, HeadNode(1))
    summary = new.open_store(str(tmp_path / "new.sqlite3"), str(tmp_path / "old.sqlite3"))
    assert "3 task attempt(s)" in summary
    rows = rows_by_id(new)
    assert rows[T1.hex()] == saved[T1.hex()]  # finished: as it was
    assert rows[T2.hex()] == saved[T2.hex()] and rows[T2.hex()]["state"] == "RUNNING"
    # it ran on the old head's node, gone with it (and its owner with it)
    assert rows[T3.hex()]["state"] == "FAILED" and rows[T3.hex()]["error_type"] == "NODE_DIED"
    assert rows[T3.hex()]["name"] == "f"
    # the running one goes on in the new table
    new.handle_TaskEvents(None, TaskEvents([[T2, 0, "FINISHED", 9.0, None]], 0, None))
    assert rows_by_id(new)[T2.hex()]["state"] == "FINISHED"
    new.close()
    old.close()


async def test_the_saved_attempts_are_bounded_by_the_tables_capacity(tmp_path):
    service = head(OLD_HEAD, HeadNode(1))
    service.tasks = TaskTable(capacity=2)
    service.open_store(str(tmp_path / "head.sqlite3"))
    for i, task_id in enumerate([T1, T2, T3]):
        service.handle_TaskEvents(None, TaskEvents([[task_id, 0, "FINISHED", i, INFO]], 0, None))
        service._save_tasks()
        await asyncio.sleep(0)
    service.close()
    db = sqlite3.connect(tmp_path / "head.sqlite3")
    assert db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0] == 2
    db.close()


def test_each_attempt_is_saved_once_per_batch_however_many_events_it_had():
    table = TaskTable()
    table.changed = set()
    table.add([[T1, 0, "PENDING_NODE_ASSIGNMENT", 1.0, INFO], [T1, 0, "SUBMITTED_TO_WORKER", 2.0,
               None], [T1, 0, "FINISHED", 3.0, None]])  # fmt: skip
    assert table.changed == {(T1, 0)}


def test_the_task_events_sent_just_before_the_head_was_lost_are_sent_again():
    client = HeadClient(b"n" * 28, "127.0.0.1:1", b"token", dict, lambda why: None)
    client.conn = FakeConn()
    client.connected.set()
    first = TaskEvents([[T1, 0, "RUNNING", 1.0, None]], 3, {"node_id": "n"})
    client.tell(first)
    client.tell(ActorGone(b"a" * 16))
    client.conn = FakeConn()  # the head restarted; the node registered again
    client._send_recent()
    assert client.conn.sent == [TaskEvents(first.events, 0, first.source)]  # counted once
    client._send_recent()
    assert len(client.conn.sent) == 1  # (only once)
