"""The head's task table: the latest state of each task attempt, from task events (pure).

Events come from owners (pending, submitted, finished, failed) and from the
workers that run tasks (running), in batches and in no particular order
between processes. Each attempt keeps its latest state by the order states
happen in (a late ``RUNNING`` never replaces ``FINISHED``), the time it entered
each state, and what the events told about it (name, kind, job, node, worker,
error). A worker's event names no attempt (-1): it applies to the latest one.

The table keeps at most ``capacity`` tasks; past that, the oldest finished ones
go first (then the oldest). Events dropped by processes and tasks evicted here
are counted, so ``list_tasks`` can say what it does not show.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from ..runtime.task_events import INFO_FIELDS

#: the order of a task's states; a state never goes back
ORDER = {
    "PENDING_ARGS_AVAIL": 0,
    "PENDING_NODE_ASSIGNMENT": 1,
    "SUBMITTED_TO_WORKER": 2,
    "RUNNING": 3,
    "FINISHED": 4,
    "FAILED": 4,
}
DONE = ("FINISHED", "FAILED")


@dataclass
class TaskAttempt:
    task_id: bytes
    attempt: int
    state: str = ""  #: the latest by ORDER (set by the first event)
    times: dict = field(default_factory=dict)  #: state -> seconds since the epoch
    info: dict = field(default_factory=dict)  #: name, type, job_id, node_id, error_type...

    def describe(self) -> dict:
        """The attempt with Ray's ``TaskState`` column names (times in milliseconds)."""
        info = self.info
        return {
            "task_id": self.task_id.hex(),
            "attempt_number": self.attempt,
            "name": info.get("name", ""),
            "state": self.state,
            "job_id": info.get("job_id", ""),
            "actor_id": info.get("actor_id") or None,
            "type": info.get("type", "NORMAL_TASK"),
            "func_or_class_name": info.get("name", ""),
            "node_id": info.get("node_id") or None,
            "worker_id": info.get("worker_id") or None,
            "worker_pid": info.get("worker_pid") or None,
            "error_type": info.get("error_type") or None,
            "error_message": info.get("error_message") or None,
            "required_resources": info.get("required_resources") or {},
            "waiting_for": info.get("waiting_for") or None,
            "events": [
                {"state": state, "created_ms": round(at * 1000, 3)}
                for state, at in sorted(self.times.items(), key=lambda item: item[1])
            ],
            "creation_time_ms": int(min(self.times.values(), default=0) * 1000),
            "start_time_ms": int(self.times.get("RUNNING", 0) * 1000) or None,
            "end_time_ms": int(max(self.times.get(s, 0) for s in DONE) * 1000) or None,
        }


class TaskTable:
    """Task attempts by (task id, attempt), oldest first."""

    def __init__(self, capacity: int = 20_000):
        self.capacity = capacity
        self.attempts: OrderedDict[tuple[bytes, int], TaskAttempt] = OrderedDict()
        self._done: OrderedDict[tuple[bytes, int], None] = OrderedDict()  #: finished, oldest first
        self._latest: dict[bytes, int] = {}  #: task id -> its latest attempt
        self.dropped = 0  #: events dropped by processes, plus attempts evicted here

    def add(self, events: list, dropped: int = 0, source: dict | None = None) -> None:
        """Apply a batch of ``[task_id, attempt, state, time, info]`` events; ``source``
        (where the sender runs) is the place of its RUNNING events."""
        self.dropped += dropped
        for task_id, attempt, state, at, info in events:
            if state == "RUNNING" and source:
                info = source
            if attempt < 0:  # a worker's: the latest attempt the owner told of
                attempt = self._latest.get(task_id, 0)
            key = (task_id, attempt)
            record = self.attempts.get(key)
            if record is None:
                record = self.attempts[key] = TaskAttempt(task_id, attempt)
                if attempt >= self._latest.get(task_id, -1):
                    self._latest[task_id] = attempt
                self._evict()
            if info:
                if type(info) is not dict:  # a first event's: INFO_FIELDS' values
                    info = dict(zip(INFO_FIELDS, info))
                for key in ("job_id", "actor_id"):  # sent as bytes: less to encode
                    if type(info.get(key)) is bytes:
                        info[key] = info[key].hex()
                if "waiting_for" in info:
                    info["waiting_for"] = [o.hex() for o in info["waiting_for"]]
                record.info.update(info)
            record.times.setdefault(state, at)
            if ORDER.get(state, 0) >= ORDER.get(record.state, -1) and record.state not in DONE:
                record.state = state
                if state in DONE:
                    self._done[key] = None

    def rows(self, task_id: bytes = b"") -> list[dict]:
        if task_id:
            return [r.describe() for key, r in self.attempts.items() if key[0] == task_id]
        return [record.describe() for record in self.attempts.values()]

    def _evict(self) -> None:
        while len(self.attempts) > self.capacity:
            if self._done:
                victim = self._done.popitem(last=False)[0]
            else:
                victim = next(iter(self.attempts))
            record = self.attempts.pop(victim)
            if self._latest.get(record.task_id) == record.attempt:
                del self._latest[record.task_id]
            self.dropped += 1
