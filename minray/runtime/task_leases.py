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


class Lease:
    """A worker leased from a node, and what runs on it."""

    __slots__ = ("lease_id", "worker_address", "conn", "gpu_ids", "linger", "node", "where")

    def __init__(self, grant, conn: Connection, node: Connection, node_id: bytes):
        self.lease_id = grant.lease_id
        self.worker_address = grant.worker_address
        self.conn = conn
        self.gpu_ids = grant.gpu_ids
        self.linger = None  #: timer that returns the lease while it sits idle
        self.node: Connection = node  #: the node that granted it (ours, or one we spilled to)
        #: where its tasks run, for their SUBMITTED_TO_WORKER events
        self.where = {"node_id": node_id.hex(), "worker_id": grant.worker_id.hex()}


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
