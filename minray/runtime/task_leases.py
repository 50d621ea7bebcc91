"""The owner's queues of tasks, one per resource shape, and the leases that serve them."""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..protocol.connection import Connection
    from .task_spec import TaskSpec

MAX_LEASE_REQUESTS = 16
#: an idle lease is kept this long before it goes back to the node, so that a
#: caller doing ``get(f.remote())`` in a loop reuses it instead of asking again
LEASE_LINGER_S = 0.001
#: tasks in flight on one lease while its queue's tasks are short: the next is pushed
#: before the reply to the one running, so the worker starts it without a round trip
#: (it holds it at most held_tasks.HOLD_S, then hands it back)
PIPELINE_DEPTH = 2
#: a queue's tasks count as short (pipelined) while the last one took less than this,
#: from the lease's previous reply (or its push) to its own
PIPELINE_BELOW_S = 0.001


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
        """How many tasks this lease may have in flight now."""
        if not queue.short or queue.actor_id or not queue.tasks or queue.tasks[0].generator:
            return 1
        return PIPELINE_DEPTH


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
        "short",
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
        self.short = False  #: its last task was short: pipeline (see PIPELINE_BELOW_S)
