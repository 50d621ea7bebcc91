"""Chrome trace events of task runs (pure): one span per run, a row per worker, grouped by
node. ``minray.timeline()`` (task_timeline.py) and the dashboard's ``/api/timeline`` (from
the head's table itself, head/timeline_view.trace) use it."""

from __future__ import annotations

from typing import Any


class _Row:
    """A task row (dict) read as attributes, like the state API's TaskState."""

    __slots__ = ("_row",)

    def __init__(self, row: dict):
        self._row = row

    def __getattr__(self, name: str) -> Any:
        return self._row.get(name)


def trace_events(tasks: list) -> list[dict[str, Any]]:
    """Chrome trace "complete" events (``ph: X``, microseconds) of the runs of ``tasks``
    (the state API's TaskState objects, or the head's task rows, dicts of the same)."""
    out = []
    for row in tasks:
        task = _Row(row) if isinstance(row, dict) else row
        times = {event["state"]: event["created_ms"] for event in task.events or []}
        start = times.get("RUNNING")
        end = times.get("FINISHED", times.get("FAILED"))
        if start is None or end is None:
            continue  # not run yet, or still running
        out.append(span(task, start, end))
    return out


def span(task: Any, start_ms: float, end_ms: float) -> dict[str, Any]:
    """One run's event: ``task`` has the TaskState fields it names (attributes)."""
    return {
        "cat": f"task::{task.name}",
        "name": task.name,
        "pid": f"Node {task.node_id or '?'}",
        "tid": f"Worker {task.worker_id or '?'} (pid {task.worker_pid or '?'})",
        "ph": "X",
        "ts": start_ms * 1000,
        "dur": max(0.0, (end_ms - start_ms) * 1000),
        "cname": "rail_load" if task.state == "FAILED" else "generic_work",
        "args": {
            "task_id": task.task_id,
            "attempt_number": task.attempt_number,
            "type": task.type,
            "state": task.state,
            "job_id": task.job_id,
            "actor_id": task.actor_id,
            "error_type": task.error_type,
        },
    }
