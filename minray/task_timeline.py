"""``minray.timeline()``: which worker ran what, when, as a Chrome trace (as ``ray.timeline``).

Built from the head's task table (task events, see runtime/task_events.py):
each run of a task or actor call is a span from RUNNING to FINISHED or FAILED,
on a row per worker, grouped by node. Open the file in ``chrome://tracing`` or
https://ui.perfetto.dev.
"""

from __future__ import annotations

import json
from typing import Any

from .util.state import list_tasks


def timeline(filename: str | None = None, address: str | None = None) -> list[dict] | None:
    """The trace events of the tasks the head knows; written to ``filename`` (JSON) if
    given, else returned."""
    events = trace_events(list_tasks(address, limit=10**9, detail=True))
    if filename is None:
        return events
    with open(filename, "w") as f:
        json.dump(events, f)
    return None


def trace_events(tasks: list) -> list[dict[str, Any]]:
    """Chrome trace "complete" events (``ph: X``, microseconds) of the runs of ``tasks``."""
    out = []
    for task in tasks:
        times = {event["state"]: event["created_ms"] for event in task.events or []}
        start = times.get("RUNNING")
        end = times.get("FINISHED", times.get("FAILED"))
        if start is None or end is None:
            continue  # not run yet, or still running
        out.append(
            {
                "cat": f"task::{task.name}",
                "name": task.name,
                "pid": f"Node {task.node_id or '?'}",
                "tid": f"Worker {task.worker_id or '?'} (pid {task.worker_pid or '?'})",
                "ph": "X",
                "ts": start * 1000,
                "dur": max(0.0, (end - start) * 1000),
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
        )
    return out
