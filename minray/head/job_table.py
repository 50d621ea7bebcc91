"""The head's job table: one job per driver that connects to the cluster.

A pure state machine with no clock and no I/O: every change takes ``now``.

As in Ray, each driver gets a job id of its own when it connects (4 bytes, the
first job ``01000000``), which its tasks and actors carry. A job ends when its
driver disconnects or when the node it connected through dies. Finished jobs
are kept, newest last, up to ``keep_finished`` of them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..ids import JOB_ID_SIZE


@dataclass
class JobRecord:
    job_id: bytes
    node_id: bytes  #: the node the driver connected through
    info: dict = field(default_factory=dict)  #: driver pid, address, namespace, entrypoint
    start_time: float = 0.0
    end_time: float = 0.0  #: 0 while it runs
    is_dead: bool = False

    def describe(self) -> dict:
        """The job in the shape of Ray's job table (times in milliseconds)."""
        return {
            "JobID": self.job_id.hex(),
            "DriverNodeID": self.node_id.hex(),
            "DriverIPAddress": self.info.get("address", ""),
            "DriverPid": self.info.get("pid", 0),
            "Namespace": self.info.get("namespace", ""),
            "Entrypoint": self.info.get("entrypoint", ""),
            "StartTime": int(self.start_time * 1000),
            "EndTime": int(self.end_time * 1000),
            "IsDead": self.is_dead,
        }


class JobTable:
    """Jobs by id, in the order they started."""

    def __init__(self, keep_finished: int = 1000):
        self.jobs: dict[bytes, JobRecord] = {}
        self.keep_finished = keep_finished
        self._finished: deque[bytes] = deque()
        self._next = 1
        #: ids of finished jobs forgotten since the caller last emptied this list
        self.dropped: list[bytes] = []

    def add(self, node_id: bytes, info: dict, now: float) -> bytes:
        """A driver connected through ``node_id``: its new job id."""
        job_id = self._next.to_bytes(JOB_ID_SIZE, "little")
        self._next += 1
        self.jobs[job_id] = JobRecord(job_id, node_id, dict(info), start_time=now)
        return job_id

    def finish(self, job_id: bytes, now: float) -> bool:
        """The job's driver is gone; False if it was unknown or already finished."""
        record = self.jobs.get(job_id)
        if record is None or record.is_dead:
            return False
        record.is_dead, record.end_time = True, now
        self._finished.append(job_id)
        while len(self._finished) > self.keep_finished:
            old = self._finished.popleft()
            self.jobs.pop(old, None)
            self.dropped.append(old)
        return True

    def restore(self, record: JobRecord) -> None:
        """Take back a job a previous head had (head/saved_tables.py); later ids follow it."""
        self.jobs[record.job_id] = record
        if record.is_dead:
            self._finished.append(record.job_id)
        self._next = max(self._next, int.from_bytes(record.job_id, "little") + 1)

    def node_died(self, node_id: bytes, now: float) -> list[bytes]:
        """Finish the jobs whose drivers connected through a node that died."""
        ended = [j.job_id for j in self.jobs.values() if j.node_id == node_id and not j.is_dead]
        for job_id in ended:
            self.finish(job_id, now)
        return ended

    def describe(self) -> list[dict]:
        return [record.describe() for record in self.jobs.values()]
