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
    found: list[tuple[tuple, Run]] = []
    for record in table.attempts.values():
        times = record.times
        start = times.get("RUNNING")
        if start is None:
            continue
        state = record.state if record.state in DONE else "RUNNING"
        start_ms = start * 1000
        end_ms = times[state] * 1000 if state in DONE else now_ms
        info = record.info
        place = (info.get("node_id") or "", info.get("worker_id") or "", info.get("worker_pid"))
        run = Run(
            -1,
            round(start_ms, 3),
            round(max(end_ms, start_ms), 3),  # (another machine's clock may run behind)
            state,
            info.get("name", ""),
            record.task_id.hex(),
            record.attempt,
            info.get("type", "NORMAL_TASK"),
            info.get("exception_type") or info.get("error_type") or None,
        )
        found.append((place, run))
    first: dict[tuple, float] = {}
    node_first: dict[str, float] = {}
    for place, run in found:
        first[place] = min(first.get(place, run.start), run.start)
        node_first[place[0]] = min(node_first.get(place[0], run.start), run.start)
    places = sorted(first, key=lambda p: (node_first[p[0]], p[0], first[p], p[1]))
    index = {place: i for i, place in enumerate(places)}
    rows = [{"node_id": node, "worker_id": worker, "pid": pid} for node, worker, pid in places]
    return [run._replace(row=index[place]) for place, run in found], rows


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
    # (difference arrays: a long run costs two entries, not one per bin it covers)
    counts: dict[int, list[list[int]]] = {}  # row -> [runs, failed, running, full bins]
    busy: dict[int, list[float]] = {}
    for run in runs:
        a, b = max(run.start, lo), min(run.end, hi)
        i = min(int((a - lo) / width), bins - 1)
        j = max(i, min(int((b - lo) / width), bins - 1))
        if run.row not in counts:
            counts[run.row] = [[0] * (bins + 1) for _ in range(4)]
            busy[run.row] = [0.0] * bins
        diff, partial = counts[run.row], busy[run.row]
        for k, on in enumerate((True, run.state == "FAILED", run.state == "RUNNING")):
            if on:
                diff[k][i] += 1
                diff[k][j + 1] -= 1
        if i == j:
            partial[i] += b - a
        else:
            partial[i] += lo + (i + 1) * width - a
            partial[j] += b - (lo + j * width)
            diff[3][i + 1] += 1  # the bins between are busy all through
            diff[3][j] -= 1
    cells = []
    for row in sorted(counts):
        totals = [accumulate(diff[:bins]) for diff in counts[row]]
        for bin_, (n, failed, running, full, part) in enumerate(zip(*totals, busy[row])):
            if n:
                cells.append([row, bin_, n, round(part + full * width, 3), failed, running])
    return cells
