"""The owner's queues of tasks, one per resource shape, and the leases that serve them."""

from __future__ import annotations

import collections
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..protocol.connection import Connection
    from .task_spec import TaskSpec

MAX_LEASE_REQUESTS = 16
#: an idle lease is kept this long before it goes back to the node, so that a
#: caller doing ``get(f.remote())`` in a loop reuses it instead of asking again
LEASE_LINGER_S = 0.001
#: a queue's tasks count as short (pipelined) while the last one took less than this,
#: from the lease's previous reply (or its push) to its own
PIPELINE_BELOW_S = 0.001
#: while a queue's tasks are short, a lease carries about this much of their work: the
#: next tasks are pushed before the reply to the one running, so the worker starts
#: them without a round trip, and its replies and pushes travel several to a read
#: (a pushed task waits at most held_tasks.HOLD_S, 2 ms, then goes back)
PIPELINE_WORK_S = 0.001
#: tasks in flight on one lease: at least two while its queue's tasks are short (the
#: one running and the next), at most this many
MAX_PIPELINE_DEPTH = 16
#: at most this many for a SPREAD queue: its tasks go to every lease its nodes grant,
#: not mostly to the first one
SPREAD_PIPELINE_DEPTH = 2


class Lease:
    """A worker leased from a node, and what runs on it."""

    __slots__ = (
        "lease_id", "worker_address", "conn", "gpu_ids", "linger", "node", "where", "tasks",
        "since", "lost_head",
    )  # fmt: skip

    def __init__(self, grant, conn: Connection, node: Connection, node_id: bytes):
        self.lease_id = grant.lease_id
        self.worker_address = grant.worker_address
        self.conn = conn
        self.gpu_ids = grant.gpu_ids
        self.linger = None  #: timer that returns the lease while it sits idle
        self.node: Connection = node  #: the node that granted it (ours, or one we spilled to)
        #: where its tasks run, for their SUBMITTED_TO_WORKER events
        self.where = {"node_id": node_id.hex(), "worker_id": grant.worker_id.hex()}
        self.tasks: list[TaskSpec] = []  #: pushed, not answered yet (oldest first)
        self.since = 0.0  #: when its oldest task in flight got the worker (loop time)
        #: once its worker is lost: the task that may have been running (the others never
        #: started, and run again without spending a retry)
        self.lost_head: TaskSpec | None = None

    def depth(self, queue: TaskQueue) -> int:
        """How many tasks this lease may have in flight now: one, or while the queue's
        tasks are short, as many as take about PIPELINE_WORK_S by the last one's time
        (2 to MAX_PIPELINE_DEPTH; SPREAD_PIPELINE_DEPTH for a SPREAD queue)."""
        task_s = queue.task_s
        if task_s >= PIPELINE_BELOW_S or queue.actor_id or not queue.tasks:
            return 1
        if queue.tasks[0].generator:
            return 1
        if queue.strategy == "SPREAD":
            return SPREAD_PIPELINE_DEPTH
        return max(2, min(MAX_PIPELINE_DEPTH, int(PIPELINE_WORK_S / max(task_s, 1e-6))))


class TaskQueue:
    """Tasks of one resource shape, and the leases serving them (or one actor's creation)."""

    __slots__ = (
        "resources",
        "strategy",
        "actor_id",
        "actor_resources",
        "tasks",
        "requests",
        "cancelled",
        "idle",
        "retriable",
        "reasons",
        "task_s",
    )

    def __init__(
        self, resources: dict, actor_id: bytes = b"", actor_resources: dict | None = None,
        strategy=None, retriable: bool = True,
    ):  # fmt: skip
        self.resources = resources
        self.retriable = retriable  #: its tasks may run again (the memory monitor asks)
        self.strategy = strategy
        self.actor_id = actor_id
        self.actor_resources = actor_resources or {}
        self.tasks: collections.deque[TaskSpec] = collections.deque()
        self.requests: dict[int, Connection] = {}  #: lease requests not answered yet: node
        self.cancelled: set[int] = set()  #: those of them we no longer need
        self.idle: list[Lease] = []  #: leases about to be returned (see LEASE_LINGER_S)
        #: request id -> why it waits, as its node said (LeasePending; pending_reasons.py)
        self.reasons: dict[int, str] = {}
        #: how long its last task took on a lease (PIPELINE_BELOW_S); infinite before one
        #: replies and after one came back unstarted: not pipelined then
        self.task_s = math.inf
