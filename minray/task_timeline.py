"""``minray.timeline()``: which worker ran what, when, as a Chrome trace (as ``ray.timeline``).

Built from the head's task table (task events, see runtime/task_events.py):
each run of a task or actor call is a span from RUNNING to FINISHED or FAILED,
on a row per worker, grouped by node. Open the file in ``chrome://tracing`` or
https://ui.perfetto.dev.
"""

from __future__ import annotations

import json

from .timeline_events import trace_events
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
