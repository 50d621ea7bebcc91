"""Placement groups on a node: reserving bundles, and giving them back.

A mixin of :class:`~minray.node.daemon.NodeDaemon`. A group is placed all at once
or not at all: when every bundle fits in what is free, the node takes the
bundles' resources and adds the renamed ones (``CPU_group_<i>_<id>``, see
head/placement.py), which tasks and actors of the group then lease. Until then
the group is PENDING and is tried again whenever resources come back, in the
order groups were created. A group whose strategy can never be met by this
node's totals stays pending and says why.

Removing a group stops the tasks and actors that run in it, as in Ray, and
frees its resources. A group that is not detached is removed when its creator
disconnects.

Today a group is placed on the node of the driver that creates it; placing
bundles across nodes (head/placement.py decides where) comes with cross-node
scheduling.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from ..head.placement import bundle_resources, place_bundles
from ..protocol.connection import Connection
from ..protocol.messages import ErrorReply, PlacementGroups

logger = logging.getLogger("minray.node")


@dataclass
class GroupRecord:
    group_id: bytes
    name: str
    namespace: str
    bundles: list
    strategy: str
    detached: bool
    owner: Connection | None
    state: str = "PENDING"  #: PENDING -> CREATED -> REMOVED (or PENDING -> REMOVED)
    infeasible: str = ""  #: why it can never be placed here ("" if it can)
    adds: dict = field(default_factory=dict)  #: the renamed resources, once CREATED
    created_at: float = 0.0
    waiters: list = field(default_factory=list)  #: futures of WaitPlacementGroup requests

    def need(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for bundle in self.bundles:
            for name, amount in bundle.items():
                total[name] = total.get(name, 0.0) + amount
        return total

    def describe(self, node_id: str) -> dict:
        """The group as placement_group_table() shows it (Ray's keys; lists for msgpack)."""
        return {
            "placement_group_id": self.group_id.hex(),
            "name": self.name,
            "namespace": self.namespace,
            "bundles": [dict(b) for b in self.bundles],  # the API keys them by index
            "bundles_to_node_id": [node_id] * len(self.bundles) if self.state == "CREATED" else [],
            "strategy": self.strategy,
            "state": self.state,
            "is_detached": self.detached,
            "infeasible_reason": self.infeasible,
        }


class PlacementGroupHandlers:
    """``handle_<Message>`` methods for placement groups, mixed into the node daemon."""

    def handle_CreatePlacementGroup(self, conn: Connection, msg) -> PlacementGroups | ErrorReply:
        if msg.name and self._named_group(msg.name, msg.namespace) is not None:
            return ErrorReply(
                "ValueError",
                f"Failed to create placement group '{msg.name}' because a placement group "
                f"with the same name already exists in namespace '{msg.namespace}'.",
            )
        record = GroupRecord(
            msg.group_id, msg.name, msg.namespace, list(msg.bundles), msg.strategy,
            msg.detached, None if msg.detached else conn,
        )  # fmt: skip
        totals = {self.settings.node_id: self.scheduler.total_resources()}
        if place_bundles(record.bundles, record.strategy, totals) is None:
            record.infeasible = (
                f"{record.strategy} placement of {record.bundles} cannot be met by this "
                f"cluster's nodes ({list(totals.values())}); it stays pending until a node "
                "that fits it joins"
            )
            logger.warning("placement group %s: %s", record.group_id.hex(), record.infeasible)
        self.groups[record.group_id] = record
        self._schedule()
        return PlacementGroups([record.describe(self.settings.node_id.hex())])

    def handle_RemovePlacementGroup(self, conn: Connection, msg) -> None:
        record = self.groups.get(msg.group_id)
        if record is not None and record.state != "REMOVED":
            self._remove_group(record, "its placement group was removed")

    def handle_WaitPlacementGroup(self, conn: Connection, msg):
        record = self.groups.get(msg.group_id)
        if record is None:
            return ErrorReply("ValueError", f"no placement group {msg.group_id.hex()} is known")
        if record.state != "PENDING":
            return PlacementGroups([record.describe(self.settings.node_id.hex())])
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        record.waiters.append(fut)
        loop.call_later(max(0.0, msg.timeout_s), self._answer_waiters, record, fut)
        return fut

    def handle_GetPlacementGroups(self, conn: Connection, msg) -> PlacementGroups:
        node = self.settings.node_id.hex()
        if msg.group_id:
            found = [self.groups[msg.group_id]] if msg.group_id in self.groups else []
        elif msg.name:
            named = self._named_group(msg.name, msg.namespace)
            found = [named] if named is not None else []
        else:
            found = list(self.groups.values())
        return PlacementGroups([g.describe(node) for g in found])

    # --- internals -------------------------------------------------------------------------

    def _named_group(self, name: str, namespace: str) -> GroupRecord | None:
        for record in self.groups.values():
            live = record.state != "REMOVED"
            if live and record.name == name and record.namespace == namespace:
                return record
        return None

    def _place_groups(self) -> None:
        """Place every pending group that fits now, oldest first (before leases are granted:
        the node's _schedule calls this first)."""
        for record in self.groups.values():
            if record.state != "PENDING" or record.infeasible:
                continue
            adds = bundle_resources(record.group_id.hex(), record.bundles)
            if self.scheduler.reserve(record.need(), adds):
                record.state, record.adds, record.created_at = "CREATED", adds, time.time()
                self._answer_waiters(record)

    def _remove_group(self, record: GroupRecord, cause: str) -> None:
        if record.state == "CREATED":
            names = set(record.adds)
            for lease in list(self.leases.values()):
                if names & set(lease.alloc.resources):
                    self._end_lease(lease, kill_worker=True)
            for actor in self.actors.holding(names):
                self._actor_died(actor, f"The actor is dead because {cause}.\n{actor.describe()}")
            self.scheduler.unreserve(record.need(), record.adds)
        record.state = "REMOVED"
        self._answer_waiters(record)
        self._schedule()

    def _answer_waiters(self, record: GroupRecord, only: asyncio.Future | None = None) -> None:
        """Tell those waiting on the group (or just ``only``, whose time is up) its state."""
        reply = PlacementGroups([record.describe(self.settings.node_id.hex())])
        for fut in [only] if only is not None else record.waiters:
            if not fut.done():
                fut.set_result(reply)
        record.waiters = [f for f in record.waiters if not f.done()]

    def _groups_owner_gone(self, conn: Connection) -> None:
        for record in list(self.groups.values()):
            if record.owner is conn and record.state != "REMOVED":
                self._remove_group(record, "the placement group's creator exited")
