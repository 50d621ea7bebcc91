"""Task events: the per-process buffer (runtime/task_events.py) and the head's task table
(head/task_table.py), pure."""

from __future__ import annotations

from minray.head.task_table import TaskTable
from minray.protocol.messages import TaskEvents
from minray.runtime.task_events import TaskEventBuffer, failure

T1, T2 = b"\x01" * 24, b"\x02" * 24


def test_the_buffer_sends_in_batches_and_counts_what_it_could_not_keep():
    buffer = TaskEventBuffer(capacity=3)
    for state in ("PENDING_NODE_ASSIGNMENT", "SUBMITTED_TO_WORKER", "RUNNING", "FINISHED"):
        buffer.record(T1, 0, state)
    sent: list[TaskEvents] = []
    buffer.flush(sent.append)
    assert [e[2] for e in sent[0].events] == ["PENDING_NODE_ASSIGNMENT", "SUBMITTED_TO_WORKER",
                                              "RUNNING"]  # fmt: skip
    assert sent[0].dropped == 1
    buffer.flush(sent.append)
    assert len(sent) == 1  # nothing new: nothing sent


def test_a_disabled_buffer_records_nothing():
    buffer = TaskEventBuffer(enabled=False)
    buffer.record(T1, 0, "RUNNING")
    sent: list = []
    buffer.flush(sent.append)
    assert sent == []


def test_failures_carry_rays_error_types():
    from minray.exceptions import TaskCancelledError, WorkerCrashedError

    assert failure(None) == {"error_type": "TASK_EXECUTION_EXCEPTION"}
    assert failure(WorkerCrashedError())["error_type"] == "WORKER_DIED"
    assert failure(TaskCancelledError())["error_type"] == "TASK_CANCELLED"
    assert failure(KeyError("x"))["error_type"] == "KeyError"


def test_the_table_keeps_each_attempts_latest_state_whatever_order_events_come_in():
    table = TaskTable()
    info = {"name": "f", "type": "NORMAL_TASK", "job_id": "01000000"}
    table.add([[T1, 0, "PENDING_NODE_ASSIGNMENT", 1.0, info], [T1, 0, "FINISHED", 4.0, None]])
    table.add([[T1, -1, "RUNNING", 3.0, {"worker_pid": 7, "node_id": "n"}]])  # late, a worker's
    (row,) = table.rows()
    assert row["state"] == "FINISHED" and row["worker_pid"] == 7 and row["name"] == "f"
    assert [e["state"] for e in row["events"]] == ["PENDING_NODE_ASSIGNMENT", "RUNNING", "FINISHED"]
    assert (row["creation_time_ms"], row["start_time_ms"], row["end_time_ms"]) == (1000, 3000, 4000)


def test_a_retry_is_a_new_attempt_and_a_workers_event_goes_to_the_latest():
    table = TaskTable()
    table.add([[T1, 0, "FAILED", 1.0, failure(None)], [T1, 1, "PENDING_NODE_ASSIGNMENT", 2.0, {}]])
    table.add([[T1, -1, "RUNNING", 3.0, None]])
    rows = table.rows(T1)
    assert [(r["attempt_number"], r["state"]) for r in rows] == [(0, "FAILED"), (1, "RUNNING")]
    assert rows[0]["error_type"] == "TASK_EXECUTION_EXCEPTION"


def test_a_full_table_lets_finished_tasks_go_first_and_counts_them():
    table = TaskTable(capacity=2)
    table.add([[T1, 0, "RUNNING", 1.0, None], [T2, 0, "FINISHED", 1.0, None]], dropped=5)
    table.add([[b"\x03" * 24, 0, "RUNNING", 2.0, None]])
    assert {r["task_id"] for r in table.rows()} == {T1.hex(), ("03" * 24)}
    assert table.dropped == 6


def test_a_task_waiting_for_its_arguments_says_so():
    table = TaskTable()
    table.add([[T1, 0, "PENDING_ARGS_AVAIL", 1.0, {"waiting_for": [T2 + b"\x00" * 4]}]])
    (row,) = table.rows()
    assert row["state"] == "PENDING_ARGS_AVAIL" and row["waiting_for"] == [(T2 + b"\0" * 4).hex()]


def test_an_actor_calls_worker_says_what_it_runs_and_its_place():
    table = TaskTable()
    told = ["A.m", "ACTOR_TASK", b"\x01\x00\x00\x00", b"a" * 16, {}]
    table.add([[T1, 0, "RUNNING", 1.0, told]], source={"node_id": "n", "worker_pid": 9})
    (row,) = table.rows()
    assert (row["name"], row["type"], row["job_id"], row["worker_pid"]) == (
        "A.m",
        "ACTOR_TASK",
        "01000000",
        9,
    )
    table.add([[T1, 0, "FINISHED", 2.0, told]])
    assert table.rows()[0]["state"] == "FINISHED" and table.rows()[0]["actor_id"] == ("61" * 16)
