"""The head's node table: which nodes are in the cluster, what each has, and which died.

A pure state machine with no clock and no I/O of its own: every change takes
``now`` (seconds, any monotonic clock), so tests drive it with a fake clock.

The rule it keeps: **a node is dead once nothing was heard from it for longer
than ``death_timeout_s``**, or once it said goodbye. Death is final: a node that
comes back after being declared dead must register again under a new id (as
in Ray, where a raylet that lost its GCS lease exits), because the cluster has
already failed over its tasks, actors and objects.

Each change bumps ``version``; the head pushes the resource view to nodes only
when the version moved, so an idle cluster sends nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class NodeState(enum.Enum):
    ALIVE = "ALIVE"  #: registered and heard from within the death timeout
    DEAD = "DEAD"  #: timed out, or left; never alive again under this id


@dataclass
class NodeRecord:
    node_id: bytes
    address: str  #: "HOST:PORT" of the node's TCP listener
    total: dict[str, float]
    available: dict[str, float]
    labels: dict[str, str] = field(default_factory=dict)
    info: dict = field(default_factory=dict)  #: how the node describes itself (nodes() keys)
    state: NodeState = NodeState.ALIVE
    last_seen: float = 0.0
    registered_at: float = 0.0
    death_reason: str = ""  #: empty while alive; else why it is dead, in plain words

    @property
    def alive(self) -> bool:
        return self.state is NodeState.ALIVE


class NodeTable:
    """Registered nodes, their resources, and the heartbeat death detector."""

    def __init__(self, death_timeout_s: float):
        if death_timeout_s <= 0:
            raise ValueError(f"death_timeout_s must be positive, got {death_timeout_s}")
        self.death_timeout_s = death_timeout_s
        self.nodes: dict[bytes, NodeRecord] = {}
        self.version = 0

    # --- queries -------------------------------------------------------------------------

    def alive(self) -> list[NodeRecord]:
        return [n for n in self.nodes.values() if n.alive]

    def get(self, node_id: bytes) -> NodeRecord | None:
        return self.nodes.get(node_id)

    def resource_view(self) -> dict[bytes, tuple[dict[str, float], dict[str, float]]]:
        """``{node_id: (total, available)}`` of the live nodes: what schedulers choose from."""
        return {n.node_id: (dict(n.total), dict(n.available)) for n in self.alive()}

    def next_deadline(self) -> float | None:
        """When the next live node times out if nothing is heard (None: no live node)."""
        seen = [n.last_seen for n in self.nodes.values() if n.alive]
        return min(seen) + self.death_timeout_s if seen else None

    # --- changes -------------------------------------------------------------------------

    def register(
        self,
        node_id: bytes,
        address: str,
        total: dict[str, float],
        now: float,
        labels: dict[str, str] | None = None,
    ) -> NodeRecord:
        """Add a node. A dead node's id cannot come back; an alive one re-registering
        (a reconnect after a short network cut) keeps its record and is refreshed."""
        record = self.nodes.get(node_id)
        if record is not None and not record.alive:
            raise ValueError(
                f"node {node_id.hex()[:12]} was declared dead ({record.death_reason}); "
                "a node that died must restart and join with a new id"
            )
        if record is None:
            record = NodeRecord(node_id, address, dict(total), dict(total), registered_at=now)
            self.nodes[node_id] = record
        record.address, record.total = address, dict(total)
        record.labels = dict(labels or {})
        record.last_seen = now
        self.version += 1
        return record

    def heartbeat(
        self,
        node_id: bytes,
        now: float,
        available: dict[str, float] | None = None,
        pending: list | None = None,
        total: dict[str, float] | None = None,
    ) -> bool:
        """A node says it is alive (and, if they changed, what it has free, what it has
        in all, what waits there). False when the node is unknown or already dead: it
        must stop or re-join."""
        record = self.nodes.get(node_id)
        if record is None or not record.alive:
            return False
        record.last_seen = max(record.last_seen, now)
        if total is not None and total != record.total:
            record.total = dict(total)
            self.version += 1
        if available is not None and available != record.available:
            record.available = dict(available)
            self.version += 1
        if pending is not None and pending != record.info.get("PendingDemands"):
            record.info["PendingDemands"] = pending
            self.version += 1
        return True

    def adjust(self, node_id: bytes, total: dict[str, float], available: dict[str, float]) -> None:
        """Correct a live node's figures before its next heartbeat (the head itself
        just reserved or freed some of them)."""
        record = self.nodes.get(node_id)
        if record is not None and record.alive:
            record.total, record.available = dict(total), dict(available)
            self.version += 1

    def remove(self, node_id: bytes, reason: str) -> NodeRecord | None:
        """Mark a node dead now (it left, or its connection closed for good).
        Returns the record if this call killed it, None if it was unknown or dead."""
        record = self.nodes.get(node_id)
        if record is None or not record.alive:
            return None
        record.state, record.death_reason = NodeState.DEAD, reason
        record.available = {}
        self.version += 1
        return record

    def expire(self, now: float) -> list[NodeRecord]:
        """Declare dead every live node not heard from for longer than the timeout."""
        dead = []
        for record in list(self.nodes.values()):
            if record.alive and now - record.last_seen > self.death_timeout_s:
                silent = now - record.last_seen
                self.remove(record.node_id, f"no heartbeat for {silent:.1f} s")
                dead.append(record)
        return dead
