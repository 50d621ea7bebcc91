"""The timeline the dashboard draws (pure): each run of a task or actor call as a slice on
the row of the worker that ran it, rows grouped by node, from the head's task table.

A run is an attempt that reached RUNNING. Its slice goes from RUNNING to FINISHED or
FAILED, or to ``now`` while it still runs. An attempt that never ran (cancelled while
pending, or lost before a worker started it) has no slice.

The answer for a time window (by default, everything) is one of two things:

* the slices themselves (``mode`` "slices"), when at most ``max_slices`` runs overlap
  the window;
* a summary (``mode`` "summary"), when more do. The window is cut into ``BINS`` equal
  bins, and each worker row and bin gets its counts: how many runs overlap the bin, how
  many of those failed or still run, and for how many milliseconds they kept it busy.

So the answer stays small and the page readable whatever the table holds. The page
asks again for a narrower window as the user zooms in, until the slices fit. Rows are
those of every run in the table, not only the window's, so they keep their places
while the user zooms.
"""

from __future__ import annotations

from itertools import accumulate
from typing import Any, NamedTuple

from ..timeline_events import span
from .task_table import DONE, TaskTable

#: the bins a summarised window is cut into, for each worker row
BINS = 600
#: runs sent one by one at most, by default; past it the window is summarised
MAX_SLICES = 5000
#: what ``max_slices`` may ask for
MAX_SLICES_LIMIT = 50_000
#: the columns of a slice, as sent (lists, not dicts: a few thousand of them)
SLICE_FIELDS = ("row", "start_ms", "end_ms", "state", "name", "task_id", "attempt", "type", "error")
#: the columns of a summary cell
CELL_FIELDS = ("row", "bin", "runs", "busy_ms", "failed", "running")


class Run(NamedTuple):
    """One run of a task attempt, in milliseconds since the epoch."""

    row: int
    start: float
    end: float
    state: str  #: FINISHED, FAILED or RUNNING
    name: str
    task_id: str
    attempt: int
    type: str
    error: str | None


def runs_of(table: TaskTable, now_ms: float) -> tuple[list[Run], list[dict]]:
    """``(runs, rows)``: every run the table holds, and the worker rows they ran on (each
    ``{"node_id", "worker_id", "pid"}``), grouped by node, in the order first seen."""
    found = []
    first: dict[tuple, float] = {}  # worker row -> its first start
    for record in table.attempts.values():
        times = record.times
        start = times.get("RUNNING")
        if start is None:
            continue
        state = record.state if record.state in DONE else "RUNNING"
        start_ms = start * 1000
        end_ms = times[state] * 1000 if state in DONE else now_ms
        field = record.field
        place = (field("node_id") or "", field("worker_id") or "", field("worker_pid"))
        if place not in first or start_ms < first[place]:
            first[place] = start_ms
        found.append((place, start_ms, max(end_ms, start_ms), state, record))
    node_first: dict[str, float] = {}
    for (node, _, _), start_ms in first.items():
        node_first[node] = min(node_first.get(node, start_ms), start_ms)
    places = sorted(first, key=lambda p: (node_first[p[0]], p[0], first[p], p[1]))
    index = {place: i for i, place in enumerate(places)}
    rows = [{"node_id": node, "worker_id": worker, "pid": pid} for node, worker, pid in places]
    runs = [
        Run(
            index[place],
            start_ms,
            end_ms,  # (at least start_ms: another machine's clock may run behind)
            state,
            record.field("name", ""),
            record.task_id.hex(),
            record.attempt,
            record.field("type", "NORMAL_TASK"),
            record.field("exception_type") or record.field("error_type") or None,
        )
        for place, start_ms, end_ms, state, record in found
    ]
    return runs, rows


class _Fields(NamedTuple):
    """The TaskState fields a Chrome trace event reads (timeline_events.span)."""

    name: str
    node_id: str | None
    worker_id: str | None
    worker_pid: int | None
    state: str
    task_id: str
    attempt_number: int
    type: str
    job_id: str
    actor_id: str | None
    error_type: str | None


def trace(table: TaskTable) -> list[dict[str, Any]]:
    """The Chrome trace of the runs that ended, as ``trace_events(table.rows())`` gives it,
    without describing every attempt in full (the dashboard's ``/api/timeline``)."""
    out = []
    for record in table.attempts.values():
        times = record.times
        start, end = times.get("RUNNING"), times.get("FINISHED", times.get("FAILED"))
        if start is None or end is None:
            continue
        field = record.field
        job, actor = field("job_id", ""), field("actor_id")
        task = _Fields(
            field("name", ""),
            field("node_id") or None,
            field("worker_id") or None,
            field("worker_pid") or None,
            record.state,
            record.task_id.hex(),
            record.attempt,
            field("type", "NORMAL_TASK"),
            job.hex() if type(job) is bytes else job,
            (actor.hex() if type(actor) is bytes else actor) or None,
            field("error_type") or None,
        )
        out.append(span(task, round(start * 1000, 3), round(end * 1000, 3)))
    return out


def view(
    table: TaskTable,
    now_ms: float,
    window: tuple[float, float] | None = None,
    max_slices: int = MAX_SLICES,
) -> dict[str, Any]:
    """The timeline of ``window`` (``(start_ms, end_ms)``; None: every run): its slices, or
    its summary past ``max_slices`` runs (module docstring)."""
    runs, rows = runs_of(table, now_ms)
    starts, ends = [r.start for r in runs], [r.end for r in runs]
    span = [min(starts, default=now_ms), max(ends, default=now_ms)]
    lo, hi = window if window is not None else span
    hi = max(hi, lo + 0.001)  # (one run of no length: a microsecond, so bins have a width)
    shown = [r for r in runs if r.start <= hi and r.end >= lo]
    answer: dict[str, Any] = {
        "rows": rows,
        "span": span,
        "window": [lo, hi],
        "now_ms": now_ms,
        "total_runs": len(runs),
        "runs": len(shown),
        "done": sum(1 for r in shown if r.state != "RUNNING"),
        "failed": sum(1 for r in shown if r.state == "FAILED"),
        "running": sum(1 for r in shown if r.state == "RUNNING"),
        "max_slices": max_slices,
        "dropped": table.dropped,
    }
    if len(shown) <= max_slices:
        slices = [list(r) for r in shown]
        return {**answer, "mode": "slices", "fields": SLICE_FIELDS, "slices": slices}
    cells = summarize(shown, len(rows), lo, hi, BINS)
    return {**answer, "mode": "summary", "bins": BINS, "fields": CELL_FIELDS, "cells": cells}


def summarize(runs: list[Run], rows: int, lo: float, hi: float, bins: int) -> list[list]:
    """Per row and bin of ``[lo, hi]`` cut in ``bins``: ``[row, bin, runs, busy_ms, failed,
    running]``, for the bins some run overlaps. A run counts in every bin it overlaps;
    busy_ms is its time inside the bin (runs that overlap each other add up)."""
    width = (hi - lo) / bins
    cells: dict[tuple[int, int], list] = {}  # (row, bin) -> [runs, busy_ms, failed, running]
    # a run over many bins: the bins between its first and last, through difference
    # arrays per row (a few entries, not one per bin), summed once at the end
    spans: dict[int, list[list[int]]] = {}  # row -> [runs, failed, running] differences
    for run in runs:
        a, b = max(run.start, lo), min(run.end, hi)
        i = min(int((a - lo) / width), bins - 1)
        j = max(i, min(int((b - lo) / width), bins - 1))
        failed, running = run.state == "FAILED", run.state == "RUNNING"
        ends = (i,) if i == j else (i, j)
        for k in ends:
            cell = cells.get((run.row, k))
            if cell is None:
                cell = cells[(run.row, k)] = [0, 0.0, 0, 0]
            cell[0] += 1
            cell[1] += max(0.0, min(b, lo + (k + 1) * width) - max(a, lo + k * width))
            cell[2] += failed
            cell[3] += running
        if j - i > 1:
            diff = spans.get(run.row)
            if diff is None:
                diff = spans[run.row] = [[0] * (bins + 1) for _ in range(3)]
            for k, on in enumerate((True, failed, running)):
                if on:
                    diff[k][i + 1] += 1
                    diff[k][j] -= 1
    for row, diff in spans.items():
        totals = zip(*(accumulate(d[:bins]) for d in diff))
        for bin_, (n, failed, running) in enumerate(totals):
            if n:
                cell = cells.get((row, bin_))
                if cell is None:
                    cell = cells[(row, bin_)] = [0, 0.0, 0, 0]
                cell[0] += n
                cell[1] += n * width  # busy all through
                cell[2] += failed
                cell[3] += running
    return [[row, bin_, n, round(busy, 3), failed, running]
            for (row, bin_), (n, busy, failed, running) in sorted(cells.items())]  # fmt: skip
