"""The timeline the dashboard draws (head/timeline_view.py), pure: a slice per run on its
worker's row, rows grouped by node, and the summary by bins past a number of runs; and
the query of its route (head/dashboard_timeline.parse_query)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minray.head.dashboard_timeline import parse_query
from minray.head.task_table import TaskTable
from minray.head.timeline_view import SLICE_FIELDS, summarize, trace, view
from minray.timeline_events import trace_events

JOB = b"\x01\0\0\0"
#: the most a cell's busy_ms is off by (rounded to the microsecond)
ROUNDED = 0.0005
A = {"node_id": "aa" * 28, "worker_id": "01" * 28, "worker_pid": 11}
B = {"node_id": "bb" * 28, "worker_id": "02" * 28, "worker_pid": 22}


def task_id(n: int) -> bytes:
    return n.to_bytes(20, "little") + JOB


def ran(table: TaskTable, n: int, name: str, where: dict, start: float, end: float | None,
        state: str = "FINISHED", error: dict | None = None) -> None:  # fmt: skip
    """A task's events as its owner and its worker send them (seconds since the epoch)."""
    table.add([[task_id(n), 0, "PENDING_NODE_ASSIGNMENT", start - 0.5,
                [name, "NORMAL_TASK", JOB, b"", {}, []]]])  # fmt: skip
    table.add([[task_id(n), -1, "RUNNING", start, None]], source=where)
    if end is not None:
        table.add([[task_id(n), 0, state, end, error]])


def slices_of(answer: dict) -> list[dict]:
    return [dict(zip(SLICE_FIELDS, s)) for s in answer["slices"]]


def test_each_run_is_a_slice_on_its_workers_row_and_rows_are_grouped_by_node():
    table = TaskTable()
    ran(table, 1, "load", A, 10.0, 11.0)
    ran(table, 2, "train", B, 10.5, 12.0, "FAILED", {"exception_type": "TypeError"})
    ran(table, 3, "save", A, 11.5, None)  # still running
    never = ["never", "NORMAL_TASK", JOB, b"", {}, []]
    table.add([[task_id(4), 0, "PENDING_NODE_ASSIGNMENT", 9.0, never]])  # never ran: no slice
    answer = view(table, now_ms=13_000.0)
    assert answer["mode"] == "slices"
    assert [r["pid"] for r in answer["rows"]] == [11, 22]  # node A's worker first: it ran first
    got = {s["name"]: s for s in slices_of(answer)}
    assert set(got) == {"load", "train", "save"}
    load, train = got["load"], got["train"]
    assert (load["row"], load["start_ms"], load["end_ms"]) == (0, 10_000, 11_000)
    assert (train["state"], train["error"], train["row"]) == ("FAILED", "TypeError", 1)
    assert (got["save"]["state"], got["save"]["end_ms"]) == ("RUNNING", 13_000.0)  # until now
    assert got["load"]["task_id"] == task_id(1).hex()
    assert (answer["runs"], answer["done"], answer["failed"], answer["running"]) == (3, 2, 1, 1)
    assert answer["span"] == [10_000, 13_000.0]


def test_a_window_keeps_the_runs_that_overlap_it_and_every_row():
    table = TaskTable()
    ran(table, 1, "early", A, 1.0, 2.0)
    ran(table, 2, "late", B, 5.0, 6.0)
    ran(table, 3, "across", A, 2.5, 5.5)
    answer = view(table, now_ms=7_000.0, window=(4_000.0, 4_500.0))
    assert {s["name"] for s in slices_of(answer)} == {"across"}
    assert len(answer["rows"]) == 2 and answer["window"] == [4_000.0, 4_500.0]


def test_past_max_slices_the_window_is_summarised_in_bins_per_row():
    table = TaskTable()
    for n in range(10):  # ten runs of 100 ms back to back on A, from 0 to 1 s
        ran(table, n, "step", A, n * 0.1, n * 0.1 + 0.1, "FAILED" if n == 9 else "FINISHED")
    answer = view(table, now_ms=2_000.0, window=(0.0, 1_000.0), max_slices=5)
    assert answer["mode"] == "summary" and answer["runs"] == 10
    cells = answer["cells"]
    # busy all through (each cell's busy_ms is rounded to the microsecond)
    assert sum(c[3] for c in cells) == pytest.approx(1_000.0, abs=ROUNDED * len(cells))
    assert all(c[0] == 0 for c in cells) and len(cells) == answer["bins"]
    assert sum(c[4] for c in cells) >= 1 and cells[-1][4] == 1  # the last bin saw the failure
    assert cells[0][4] == 0


def test_a_long_run_counts_in_every_bin_it_covers():
    table = TaskTable()
    ran(table, 1, "long", A, 0.0, 10.0)
    ran(table, 2, "blip", B, 5.0, 5.001)
    answer = view(table, now_ms=11_000.0, window=(0.0, 10_000.0), max_slices=1)
    long = [c for c in answer["cells"] if c[0] == 0]
    assert len(long) == answer["bins"]
    width = 10_000.0 / answer["bins"]
    assert all(c[2] == 1 and c[3] == pytest.approx(width, abs=ROUNDED) for c in long)
    (blip,) = [c for c in answer["cells"] if c[0] == 1]
    assert blip[2] == 1 and blip[3] == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.floats(0, 1000), st.floats(0, 500), st.booleans()),
        min_size=1,
        max_size=40,
    ),
    st.integers(1, 50),
)
def test_a_summary_keeps_each_runs_time_inside_the_window(runs, bins):
    from minray.head.timeline_view import Run

    made = [Run(row, s, s + d, "FAILED" if f else "FINISHED", "f", "t", 0, "NORMAL_TASK", None)
            for row, s, d, f in runs]  # fmt: skip
    lo, hi = 100.0, 900.0
    inside = [r for r in made if r.start <= hi and r.end >= lo]
    cells = summarize(inside, 4, lo, hi, bins)
    for row in range(4):
        want = sum(min(r.end, hi) - max(r.start, lo) for r in inside if r.row == row)
        got = sum(c[3] for c in cells if c[0] == row)
        cells_of_row = sum(1 for c in cells if c[0] == row)
        assert got == pytest.approx(want, abs=ROUNDED * cells_of_row + 1e-6 * len(inside))
        assert all(c[2] <= len(inside) for c in cells if c[0] == row)
    assert sum(c[4] for c in cells) >= sum(1 for r in inside if r.state == "FAILED")


def test_the_heads_chrome_trace_is_the_one_built_from_the_task_rows():
    table = TaskTable()
    ran(table, 1, "load", A, 10.0, 11.0)
    ran(table, 2, "train", B, 10.5, 12.0, "FAILED", {"error_type": "TASK_EXECUTION_EXCEPTION"})
    ran(table, 3, "save", A, 11.5, None)  # still running: not in the trace
    actor = b"\x07" * 16
    table.add([[task_id(4), 0, "PENDING_NODE_ASSIGNMENT", 12.0,
                ["Pid.pid", "ACTOR_TASK", JOB, actor, {}, []]]])  # fmt: skip
    table.add([[task_id(4), -1, "RUNNING", 12.5, None]], source=B)
    table.add([[task_id(4), 0, "FINISHED", 12.75, None]])
    events = trace(table)
    assert events == trace_events(table.rows())
    assert [e["name"] for e in events] == ["load", "train", "Pid.pid"]
    assert events[2]["args"]["actor_id"] == actor.hex() and events[0]["args"]["actor_id"] is None


def test_an_empty_table_is_an_empty_timeline():
    answer = view(TaskTable(), now_ms=5.0)
    assert (answer["mode"], answer["slices"], answer["rows"]) == ("slices", [], [])
    assert answer["runs"] == 0


def test_the_query_says_what_is_wrong_with_it():
    assert parse_query({}) == (None, 5000)
    assert parse_query({"start_ms": "10", "end_ms": "20.5", "max_slices": "7"}) == ((10.0, 20.5), 7)
    for query, said in [
        ({"max_slices": "0"}, "max_slices must be a whole number from 1 to 50000"),
        ({"max_slices": "lots"}, "max_slices"),
        ({"start_ms": "10"}, "give both start_ms and end_ms"),
        ({"start_ms": "a", "end_ms": "b"}, "milliseconds since the epoch"),
        ({"start_ms": "20", "end_ms": "10"}, "end after it starts"),
        ({"start_ms": "nan", "end_ms": "10"}, "milliseconds from 0 to 1e"),
        ({"start_ms": "0", "end_ms": "1e400"}, "milliseconds from 0 to 1e"),
    ]:
        with pytest.raises(ValueError, match=said):
            parse_query(query)
