"""The head's task table: the latest state of each task attempt, from task events (pure).

Events come from owners (pending, submitted, finished, failed) and from the
workers that run tasks (running), in batches and in no particular order
between processes. Each attempt keeps its latest state by the order states
happen in (a late ``RUNNING`` never replaces ``FINISHED``), the time it entered
each state, and what the events told about it (name, kind, job, node, worker,
error). A worker's event names no attempt (-1): it applies to the latest one.
A pending attempt also keeps the latest reason it waits (``pending_reason``, from
its owner, which heard it from the node that decided: runtime/pending_reasons.py),
dropped when it moves on.

The table keeps at most ``capacity`` tasks; past that, the oldest finished ones
go first (then the oldest). Events dropped by processes and tasks evicted here
are counted, so ``list_tasks`` can say what it does not show.

A head that saves its tables (head/saved_tables.py) turns on ``changed``: the
attempts changed since the last save, and ``forgotten``, those evicted; a
restarted head takes the saved attempts back with :meth:`TaskTable.restore`.
"""

from __future__ import annotations

from collections import OrderedDict
from itertools import islice

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
_FIELD_INDEX = {name: i for i, name in enumerate(INFO_FIELDS)}
DONE_RANK = 4


class TaskAttempt:
    """One run of a task: its latest state, when it entered each, and what events told."""

    __slots__ = ("task_id", "attempt", "state", "rank", "times", "told", "extra")

    def __init__(self, task_id: bytes, attempt: int):
        self.task_id = task_id
        self.attempt = attempt
        self.state = ""  #: the latest by ORDER (set by the first event)
        self.rank = -1  #: ORDER of ``state``
        self.times: dict[str, float] = {}  #: state -> seconds since the epoch
        self.told: list | None = None  #: a first event's INFO_FIELDS values, as sent
        self.extra: dict | None = None  #: other events' info (place, error), merged

    @property
    def info(self) -> dict:
        """What the events told (converted here, when asked, not as they arrive)."""
        info = dict(zip(INFO_FIELDS, self.told)) if self.told else {}
        info.update(self.extra or {})
        for name in ("job_id", "actor_id"):  # sent as bytes: less to encode
            if type(info.get(name)) is bytes:
                info[name] = info[name].hex()
        for name in ("waiting_for", "args"):
            if info.get(name):
                info[name] = [o.hex() if type(o) is bytes else o for o in info[name]]
        return info

    def field(self, name: str, default=None):
        """One thing the events told, as sent (ids as bytes), without converting the rest
        as ``info`` does: for the head's answers that read a few fields of every attempt."""
        extra = self.extra
        if extra and name in extra:
            return extra[name]
        index = _FIELD_INDEX.get(name)
        told = self.told
        if told and index is not None and index < len(told):
            return told[index]
        return default

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
            "exception_type": info.get("exception_type") or None,
            "required_resources": info.get("required_resources") or {},
            "waiting_for": info.get("waiting_for") or None,
            "attempt_reason": info.get("attempt_reason") or None,
            # why it waits, as the owner or the node that decided it said (while pending)
            "pending_reason": (info.get("pending_reason") or None) if self.rank < 2 else None,
            "events": [
                {"state": state, "created_ms": round(at * 1000, 3)}
                for state, at in sorted(self.times.items(), key=lambda item: item[1])
            ],
            "creation_time_ms": int(min(self.times.values(), default=0) * 1000),
            "start_time_ms": int(self.times.get("RUNNING", 0) * 1000) or None,
            "end_time_ms": int(max(self.times.get(s, 0) for s in DONE) * 1000) or None,
        }


def _forget_reason(record: TaskAttempt, info) -> None:
    """The attempt moves to a later state: the reason it waited before no longer holds,
    unless the event that moves it brings a new one."""
    if not (type(info) is dict and "pending_reason" in info):
        record.extra = {k: v for k, v in record.extra.items() if k != "pending_reason"}


class TaskTable:
    """Task attempts by (task id, attempt), oldest first."""

    def __init__(self, capacity: int = 20_000):
        self.capacity = capacity
        self.attempts: OrderedDict[tuple[bytes, int], TaskAttempt] = OrderedDict()
        self._done: OrderedDict[tuple[bytes, int], None] = OrderedDict()  #: finished, oldest first
        self._latest: dict[bytes, int] = {}  #: task id -> its latest attempt
        self.dropped = 0  #: events dropped by processes, plus attempts evicted here
        #: keys of the attempts changed since the last save (None: the table is not saved)
        self.changed: set[tuple[bytes, int]] | None = None
        self.forgotten: list[tuple[bytes, int]] = []  #: evicted since the last save

    def add(self, events: list, dropped: int = 0, source: dict | None = None) -> None:
        """Apply a batch of ``[task_id, attempt, state, time, info]`` events; ``source``
        (where the sender runs) is the place of its RUNNING events. The hot path of the
        head under load: it does the least it can, and converts when asked (``rows``)."""
        self.dropped += dropped
        attempts, latest, done, changed = self.attempts, self._latest, self._done, self.changed
        for task_id, attempt, state, at, info in events:
            if attempt < 0:  # a worker's: the latest attempt the owner told of
                attempt = latest.get(task_id, 0)
            key = (task_id, attempt)
            if changed is not None:
                changed.add(key)
            record = attempts.get(key)
            if record is None:
                record = attempts[key] = TaskAttempt(task_id, attempt)
                if attempt >= latest.get(task_id, -1):
                    latest[task_id] = attempt
                if len(attempts) > self.capacity:
                    self._evict()
            if state == "RUNNING" and source:
                if info and type(info) is not dict and record.told is None:
                    record.told = info  # an actor call's worker says what it is (its owner more)
                info = source
            if info:
                if type(info) is dict:
                    record.extra = {**record.extra, **info} if record.extra else info
                else:  # a first event's: INFO_FIELDS' values
                    record.told = info
            times = record.times
            if state not in times:
                times[state] = at
            rank = ORDER.get(state, 0)
            if rank >= record.rank and record.state not in DONE:
                if rank > record.rank and record.extra and "pending_reason" in record.extra:
                    _forget_reason(record, info)  # (it was the earlier state's)
                record.state, record.rank = state, rank
                if rank == DONE_RANK:
                    done[key] = None

    def restore(self, saved: list) -> None:
        """Take back saved attempts, ``[task_id, attempt, state, times, told, extra]``
        each (any order: they are put back oldest first)."""
        for task_id, attempt, state, times, told, extra in sorted(saved, key=_first_time):
            key = (task_id, attempt)
            record = self.attempts[key] = TaskAttempt(task_id, attempt)
            record.state, record.rank = state, ORDER.get(state, 0)
            record.times, record.told, record.extra = dict(times), told, extra
            if attempt >= self._latest.get(task_id, -1):
                self._latest[task_id] = attempt
            if state in DONE:
                self._done[key] = None
        self._evict()

    def node_died(self, node_hex: str, at: float, why: str) -> int:
        """The attempts running on a node whose processes all died with it (owners
        included, so none will say): FAILED, NODE_DIED. Returns how many."""
        ended = 0
        for key, record in self.attempts.items():
            if record.state in DONE or (record.extra or {}).get("node_id") != node_hex:
                continue
            record.state, record.rank = "FAILED", DONE_RANK
            record.times.setdefault("FAILED", at)
            record.extra = {**record.extra, "error_type": "NODE_DIED", "error_message": why}
            self._done[key] = None
            if self.changed is not None:
                self.changed.add(key)
            ended += 1
        return ended

    def rows(self, task_id: bytes = b"") -> list[dict]:
        if task_id:
            return [r.describe() for key, r in self.attempts.items() if key[0] == task_id]
        return [record.describe() for record in self.attempts.values()]

    def oldest(self, limit: int) -> list[dict]:
        """The rows of the first ``limit`` attempts (only those described)."""
        return [record.describe() for record in islice(self.attempts.values(), max(limit, 0))]

    def newest(self, limit: int) -> list[dict]:
        """The rows of the ``limit`` attempts seen last, oldest first (only those described:
        the dashboard's table asks for 200 of up to ``capacity``)."""
        if limit <= 0:
            return []
        found = list(islice(reversed(self.attempts.values()), limit))
        return [record.describe() for record in reversed(found)]

    def latest(self, task_id: bytes) -> TaskAttempt | None:
        """A task's latest attempt, or None when the table does not hold it."""
        attempt = self._latest.get(task_id)
        return None if attempt is None else self.attempts.get((task_id, attempt))

    def pending_reason(self, task_id: bytes) -> str | None:
        """Why the task's latest attempt waits, if it is pending and that was told."""
        record = self.latest(task_id)
        if record is None or record.rank >= ORDER["SUBMITTED_TO_WORKER"] or not record.extra:
            return None
        return record.extra.get("pending_reason")

    def first_starting_with(self, prefix: bytes) -> bytes:
        """The id of a task the table holds that starts with ``prefix`` (b"": none); a
        scan, for the rare question (an actor's creation task, its job not known)."""
        return next((t for t in self._latest if t.startswith(prefix)), b"")

    def latest_attempts(self) -> list[TaskAttempt]:
        """Each task's latest attempt, in the order the tasks were first seen."""
        attempts = self.attempts
        found = (attempts.get(key) for key in self._latest.items())
        return [record for record in found if record is not None]

    def function_counts(self) -> list[dict]:
        """Each task's latest attempt counted by function (or method), kind and state."""
        counts: dict[tuple, int] = {}
        for record in self.latest_attempts():
            key = (record.field("name", ""), record.field("type", "NORMAL_TASK"), record.state)
            counts[key] = counts.get(key, 0) + 1
        return [
            {"func_or_class_name": name, "type": kind, "state": state, "count": n}
            for (name, kind, state), n in counts.items()
        ]

    def state_counts(self) -> dict[str, int]:
        """How many tasks are in each state, by their latest attempt (every state named)."""
        counts = dict.fromkeys(ORDER, 0)
        attempts = self.attempts
        for task_id, attempt in self._latest.items():
            record = attempts.get((task_id, attempt))
            if record is not None and record.state:
                counts[record.state] = counts.get(record.state, 0) + 1
        return counts

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
            if self.changed is not None:
                self.changed.discard(victim)
                self.forgotten.append(victim)


def _first_time(saved: list) -> float:
    return min(saved[3].values(), default=0.0)
