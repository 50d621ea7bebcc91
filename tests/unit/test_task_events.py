"""Task events: the per-process buffer (runtime/task_events.py) and the head's task table
(head/task_table.py), pure."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from minray.head.task_table import TaskTable
from minray.protocol.messages import TaskEvents
from minray.runtime.task_events import (
    INFO_FIELDS,
    MAX_ARG_IDS,
    MAX_ERROR_CHARS,
    TaskEventBuffer,
    argument_ids,
    bounded,
    failure,
    raised,
    task_info,
)
from minray.runtime.task_spec import TaskSpec

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
    assert not buffer.has_room()
    buffer.drop()
    sent: list = []
    buffer.flush(sent.append)
    assert sent == []


def test_an_event_dropped_before_its_info_is_built_is_counted_as_record_counts_it():
    buffer = TaskEventBuffer(capacity=2)
    for _ in range(3):
        if buffer.has_room():
            buffer.record(T1, 0, "PENDING_NODE_ASSIGNMENT", ("f",))
        else:
            buffer.drop()
    buffer.record(T1, 0, "FINISHED")  # full: dropped by record itself
    sent: list[TaskEvents] = []
    buffer.flush(sent.append)
    assert len(sent[0].events) == 2 and sent[0].dropped == 2
    assert buffer.has_room()  # sent: room again


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


def test_each_attempt_says_why_it_ran_retry_or_reconstruction():
    spec = spec_taking([], [])
    first = task_info(spec, "NORMAL_TASK", b"\1" * 4)
    spec.attempts, spec.attempt_reason = 1, "RETRY"
    retry = task_info(spec, "NORMAL_TASK", b"\1" * 4)
    spec.attempts, spec.attempt_reason = 2, "RECONSTRUCTION"
    rebuild = task_info(spec, "NORMAL_TASK", b"\1" * 4)
    table = TaskTable()
    table.add([[T1, 0, "PENDING_NODE_ASSIGNMENT", 1.0, first], [T1, 0, "FAILED", 2.0, None]])
    table.add([[T1, 1, "PENDING_NODE_ASSIGNMENT", 3.0, retry], [T1, 1, "FINISHED", 4.0, None]])
    table.add([[T1, 2, "PENDING_NODE_ASSIGNMENT", 5.0, rebuild]])
    reasons = [(r["attempt_number"], r["attempt_reason"]) for r in table.rows(T1)]
    assert reasons == [(0, None), (1, "RETRY"), (2, "RECONSTRUCTION")]


def test_the_newest_and_oldest_rows_are_described_alone_oldest_first():
    table = TaskTable()
    ids = [bytes([n]) * 24 for n in range(1, 6)]
    table.add([[task, 0, "RUNNING", float(n), None] for n, task in enumerate(ids)])
    assert [r["task_id"] for r in table.newest(2)] == [ids[3].hex(), ids[4].hex()]
    assert table.newest(10) == table.rows() and table.newest(0) == []
    assert [r["task_id"] for r in table.oldest(2)] == [ids[0].hex(), ids[1].hex()]
    assert table.oldest(10) == table.rows() and table.oldest(-1) == []


def test_tasks_are_counted_by_function_and_the_state_of_their_latest_attempt():
    table = TaskTable()
    info = {"name": "f", "type": "NORMAL_TASK"}
    table.add([[T1, 0, "FAILED", 1.0, info], [T1, 1, "RUNNING", 2.0, info]])  # retried
    table.add([[T2, 0, "FINISHED", 1.0, info]])
    table.add([[b"\x03" * 24, 0, "FINISHED", 1.0, {"name": "A.m", "type": "ACTOR_TASK"}]])
    counts = {(r["func_or_class_name"], r["type"], r["state"]): r["count"]
              for r in table.function_counts()}  # fmt: skip
    assert counts == {("f", "NORMAL_TASK", "RUNNING"): 1, ("f", "NORMAL_TASK", "FINISHED"): 1,
                      ("A.m", "ACTOR_TASK", "FINISHED"): 1}  # fmt: skip


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


def spec_taking(placeholders: list, nested: list) -> TaskSpec:
    return TaskSpec(
        T1, "f", b"", b"", b"", placeholders, nested, 1, [T1 + b"\1\0\0\0"], {"CPU": 1.0}, 0, False,
        None,
    )  # fmt: skip


def test_a_tasks_first_event_names_the_objects_it_takes_ids_only_and_bounded():
    o1, o2 = T2 + b"\1\0\0\0", T2 + b"\2\0\0\0"
    info = task_info(spec_taking([(0, o1, "owner")], [[o2, "owner"]]), "NORMAL_TASK", b"\1" * 4)
    assert dict(zip(INFO_FIELDS, info))["args"] == [o1, o2]
    assert argument_ids(spec_taking([], [])) == ()
    many = [(i, T2 + i.to_bytes(4, "little"), "owner") for i in range(MAX_ARG_IDS + 5)]
    assert len(argument_ids(spec_taking(many, [[o2, "owner"]]))) == MAX_ARG_IDS


def test_a_worker_tells_what_a_task_raised_with_its_traceback():
    from minray.exceptions import RayTaskError, TaskCancelledError

    error = RayTaskError("add", '  File "x.py", line 1, in add\nTypeError: nope', TypeError("nope"),
                         pid=7, ip="127.0.0.1")  # fmt: skip
    info = raised(error)
    assert (
        info["error_type"] == "TASK_EXECUTION_EXCEPTION" and info["exception_type"] == "TypeError"
    )
    assert info["error_message"].startswith("minray::add() (pid=7, ip=127.0.0.1)\n")
    assert info["error_message"].endswith("TypeError: nope") and "\x1b" not in info["error_message"]
    cancelled = RayTaskError("add", "", TaskCancelledError())
    assert raised(cancelled)["error_type"] == "TASK_CANCELLED"
    huge = RayTaskError("add", "x" * 10 * MAX_ERROR_CHARS + "\nValueError: the end", ValueError())
    text = raised(huge)["error_message"]
    assert len(text) < MAX_ERROR_CHARS + 100 and text.endswith("ValueError: the end")
    assert text.startswith("minray::add()") and "characters left out" in text


@given(st.text(max_size=300), st.integers(8, 200))
def test_bounded_text_keeps_its_start_and_end_within_the_limit_and_says_what_it_left_out(
    text, limit
):
    kept = bounded(text, limit)
    if len(text) <= limit:
        assert kept == text
    else:
        left_out = len(text) - limit
        assert kept.startswith(text[: limit // 4]) and kept.endswith(text[-(limit - limit // 4) :])
        assert f"({left_out} characters left out)" in kept
        assert len(kept) == limit + len(f"\n... ({left_out} characters left out) ...\n")


def test_the_head_keeps_the_workers_error_text_beside_the_owners_error_type():
    table = TaskTable()
    table.add(
        [[T1, 0, "PENDING_NODE_ASSIGNMENT", 1.0, ["f", "NORMAL_TASK", b"j" * 4, b"", {}, ()]]]
    )
    worker = {"error_type": "TASK_EXECUTION_EXCEPTION", "exception_type": "TypeError",
              "error_message": "minray::f()\nTypeError: nope"}  # fmt: skip
    table.add([[T1, 0, "FAILED", 2.0, worker]])
    table.add([[T1, 0, "FAILED", 2.1, {"error_type": "TASK_EXECUTION_EXCEPTION"}]])
    (row,) = table.rows()
    assert row["state"] == "FAILED" and row["exception_type"] == "TypeError"
    assert row["error_message"].endswith("TypeError: nope")
    assert table.state_counts()["FAILED"] == 1


def test_an_actor_calls_owner_says_more_than_its_worker_whichever_comes_first():
    owner = ["A.m", "ACTOR_TASK", b"j" * 4, b"a" * 16, {}, [T2 + b"\1\0\0\0"]]
    worker = ["A.m", "ACTOR_TASK", b"j" * 4, b"a" * 16, {}, ()]
    for order in ([owner, worker], [worker, owner]):
        table = TaskTable()
        for told in order:
            state = "FINISHED" if told is owner else "RUNNING"
            table.add([[T1, 0, state, 1.0, told]], source={"node_id": "n"})
        assert table.latest(T1).info["args"] == [(T2 + b"\1\0\0\0").hex()]
    assert table.latest(T2) is None and [r.task_id for r in table.latest_attempts()] == [T1]
