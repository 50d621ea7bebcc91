"""The head's placement groups: which node holds each bundle, reserved in two phases,
and placed again when a node dies.

A mixin of :class:`~minray.head.service.HeadService`. Drivers' requests reach it
through their node (node/placement_groups.py); it answers with group records in
the shape ``placement_group_table()`` shows.

1. ``CreatePlacementGroup``: the name must be free in the namespace across the
   cluster. The group is PENDING; if no set of live nodes could ever hold it, it
   says why (the driver logs that) and waits for a node that fits to join.
2. The placement pass (:meth:`PlacementService.place_pending`; run when the view
   changes, when the head node frees resources, and at least every second while
   groups wait): for each waiting group, oldest first, head/placement.py picks
   nodes from their free resources. Each picked node is asked to *prepare* its
   bundles (take their resources, all or nothing: ``PrepareBundles``); once every
   node said yes, each is told to *commit* (add the ``CPU_group_<i>_<id>``
   resources the group's tasks and actors lease: ``CommitBundles``). If a node
   refuses (the view was stale), the others give their bundles back and the group
   waits for the next change. A group whose bundles all go to the head's own node
   is placed within the call, so on one node a group never waits behind tasks.
3. ``RemovePlacementGroup``, or the end of its creator (not for detached groups):
   ``ReturnBundles`` to each node holding a bundle; those stop the tasks and actors
   running in them.
4. A node dies: its bundles are placed again on live nodes (RESCHEDULING, as Ray
   calls it) while the group's other bundles keep running. A group that is not
   detached and whose creator was on that node is removed.
5. A member registers again (the head restarted, or the connection was cut) and
   says which bundles it holds: head/bundle_reconcile.py makes the groups and the
   node agree (bundles of unknown groups given back, lost commits sent again,
   bundles the head had there but the node does not hold placed again).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..protocol.connection import Connection, RemoteError
from ..protocol.messages import (
    CommitBundles,
    ErrorReply,
    Message,
    PlacementGroups,
    PrepareBundles,
    ReturnBundles,
)
from .bundle_reconcile import reconcile
from .placement import Plan, plan_missing

logger = logging.getLogger("minray.head")

#: seconds a node has to answer PrepareBundles before the attempt is given up
PREPARE_TIMEOUT_S = 5.0
#: removed groups kept for placement_group_table(), newest (Ray keeps some too)
KEEP_REMOVED = 1000
WAITING = ("PENDING", "RESCHEDULING")


@dataclass
class GroupRecord:
    group_id: bytes
    name: str
    namespace: str
    bundles: list
    strategy: str
    detached: bool
    creator: bytes  #: the node of the process that created it
    nodes: list = field(default_factory=list)  #: each bundle's node (b"": not placed)
    state: str = "PENDING"  #: PENDING -> CREATED (<-> RESCHEDULING) -> REMOVED
    infeasible: str = ""  #: why it can never be placed on the live nodes ("" if it can)
    checked_at: int = -1  #: the node table's version when found infeasible
    waiters: list = field(default_factory=list)  #: futures of WaitPlacementGroup requests

    def bundles_on(self, node: bytes) -> dict:
        return {i: self.bundles[i] for i, n in enumerate(self.nodes) if n == node}

    def describe(self) -> dict:
        """The group as ``placement_group_table()`` shows it (Ray's keys; lists for msgpack)."""
        placed = any(self.nodes)
        return {
            "placement_group_id": self.group_id.hex(),
            "name": self.name,
            "namespace": self.namespace,
            "bundles": [dict(b) for b in self.bundles],  # the API keys them by index
            "bundles_to_node_id": [n.hex() for n in self.nodes] if placed else [],
            "strategy": self.strategy,
            "state": self.state,
            "is_detached": self.detached,
            "infeasible_reason": self.infeasible,
        }


class PlacementService:
    """``handle_<Message>`` methods for placement groups, and the placement pass."""

    local_id: bytes
    members: dict[bytes, Connection]
    table: Any  #: the node table (head/node_table.py)
    #: the head node's daemon: PrepareBundles & co. are called on it in-process
    local_node: Any = None

    def _init_placement(self) -> None:
        self.groups: dict[bytes, GroupRecord] = {}  #: in creation order
        #: ids of the groups PENDING or RESCHEDULING, oldest first
        self._waiting: dict[bytes, None] = {}
        self._removed: deque[bytes] = deque()  #: ids of removed groups still shown
        self._placing: asyncio.Task | None = None  #: the two-phase placement in flight
        self._placing_id = b""  #: the group it places
        self._place_again = False

    @property
    def groups_waiting(self) -> bool:
        return bool(self._waiting)

    # --- requests (conn None: from the head's own node) -----------------------------------

    def handle_CreatePlacementGroup(self, conn: Connection | None, msg) -> Message:
        if msg.name and self._named_group(msg.name, msg.namespace) is not None:
            return ErrorReply(
                "ValueError",
                f"Failed to create placement group '{msg.name}' because a placement group "
                f"with the same name already exists in namespace '{msg.namespace}'.",
            )
        creator = self.local_id if conn is None else conn.info.get("node_id", b"")
        record = GroupRecord(
            msg.group_id, msg.name, msg.namespace, list(msg.bundles), msg.strategy,
            msg.detached, creator, [b""] * len(msg.bundles),
        )  # fmt: skip
        self.groups[record.group_id] = record
        self._waiting[record.group_id] = None
        self._save_group(record)
        self.place_pending()
        if self._placing is not None and record.state in WAITING:  # it was not looked at
            view = self._placement_view()
            record.infeasible = plan_missing(record.bundles, record.nodes, msg.strategy, view)[1]
        if record.infeasible:
            logger.warning("placement group %s: %s", record.group_id.hex(), record.infeasible)
        return PlacementGroups([record.describe()])

    def handle_RemovePlacementGroup(self, conn: Connection | None, msg) -> None:
        record = self.groups.get(msg.group_id)
        if record is not None and record.state != "REMOVED":
            self._remove_group(record, "its placement group was removed")

    def handle_WaitPlacementGroup(self, conn: Connection | None, msg) -> Message:
        record = self.groups.get(msg.group_id)
        if record is None:
            return ErrorReply("ValueError", f"no placement group {msg.group_id.hex()} is known")
        if record.state not in WAITING:
            return PlacementGroups([record.describe()])
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        record.waiters.append(fut)
        loop.call_later(max(0.0, msg.timeout_s), self._answer_waiters, record, fut)
        return fut

    def handle_GetPlacementGroups(self, conn: Connection | None, msg) -> PlacementGroups:
        if msg.group_id:
            found = [self.groups[msg.group_id]] if msg.group_id in self.groups else []
        elif msg.name:
            named = self._named_group(msg.name, msg.namespace)
            found = [named] if named is not None else []
        else:
            found = list(self.groups.values())
        return PlacementGroups([g.describe() for g in found])

    # --- the placement pass ---------------------------------------------------------------

    def place_pending(self) -> None:
        """Place every waiting group that fits now, oldest first (see the module doc)."""
        if self._placing is not None:
            self._place_again = True
            return
        view = None
        for record in [self.groups[group_id] for group_id in list(self._waiting)]:
            if record.infeasible and record.checked_at == self.table.version:
                continue  # nothing changed since it was found infeasible
            view = view or self._placement_view()
            plan, reason = plan_missing(record.bundles, record.nodes, record.strategy, view)
            record.infeasible, record.checked_at = reason, self.table.version
            if plan is None:
                continue
            if list(plan) == [self.local_id]:
                if self._prepare_here(record, plan[self.local_id]):
                    self._commit(record, plan)
                    view = None  # the head node's figures changed
                continue
            self._place_again = False
            self._placing_id = record.group_id
            self._placing = asyncio.get_running_loop().create_task(self._place_across(record, plan))
            return

    async def _place_across(self, record: GroupRecord, plan: Plan) -> None:
        """Prepare on every node of ``plan``, then commit; or give back what was taken."""
        try:
            prepared = await asyncio.gather(
                *(self._prepare(node, record, bundles) for node, bundles in plan.items())
            )
            if all(prepared) and record.state in WAITING:
                self._commit(record, plan)
                self._place_again = True  # others may fit now too
            else:
                for node, ok in zip(plan, prepared):
                    if ok:
                        self._to_node(node, ReturnBundles(record.group_id, ""))
        finally:
            self._placing, self._placing_id = None, b""
        if self._place_again:
            self.place_pending()

    async def _prepare(self, node: bytes, record: GroupRecord, bundles: dict) -> bool:
        msg = PrepareBundles(record.group_id, [[i, b] for i, b in bundles.items()])
        if node == self.local_id:
            return self._prepare_here(record, bundles)
        conn = self.members.get(node)
        if conn is None:
            return False
        try:
            await asyncio.wait_for(conn.request(msg), PREPARE_TIMEOUT_S)
            return True
        except asyncio.TimeoutError:  # it may still prepare: make sure it gives them back
            conn.send(ReturnBundles(record.group_id, ""))
        except (RemoteError, ConnectionError):
            pass
        return False

    def _prepare_here(self, record: GroupRecord, bundles: dict) -> bool:
        msg = PrepareBundles(record.group_id, [[i, b] for i, b in bundles.items()])
        return type(self.local_node.handle_PrepareBundles(None, msg)) is not ErrorReply

    def _commit(self, record: GroupRecord, plan: Plan) -> None:
        for node, bundles in plan.items():
            for index in bundles:
                record.nodes[index] = node
            self._to_node(node, CommitBundles(record.group_id))
            if node != self.local_id:
                self._bundles_added(node, record.group_id.hex(), bundles)
        record.state = "CREATED"
        self._waiting.pop(record.group_id, None)
        self._save_group(record)
        self._answer_waiters(record)

    # --- removal and node death -----------------------------------------------------------

    def _remove_group(self, record: GroupRecord, cause: str) -> None:
        logger.info("placement group %s removed: %s", record.group_id.hex(), cause)
        for node in dict.fromkeys(n for n in record.nodes if n):
            self._to_node(node, ReturnBundles(record.group_id, cause))
            if node != self.local_id:
                self._bundles_gone(node, record.group_id.hex(), record.bundles_on(node))
        record.state = "REMOVED"
        record.nodes = [b""] * len(record.bundles)
        self._waiting.pop(record.group_id, None)
        self._save_group(record)
        self._removed.append(record.group_id)
        if len(self._removed) > KEEP_REMOVED:
            self.groups.pop(self._removed.popleft(), None)
        self._answer_waiters(record)
        self.place_pending()

    def _groups_of_dead_node(self, node_id: bytes) -> None:
        """A dead node's bundles are placed again; its creators' groups are removed."""
        for record in list(self.groups.values()):
            if record.state == "REMOVED":
                continue
            if record.creator == node_id and not record.detached:
                self._remove_group(record, "the node of the placement group's creator died")
            elif node_id in record.nodes:
                record.nodes = [b"" if n == node_id else n for n in record.nodes]
                record.state = "RESCHEDULING"
                self._waiting[record.group_id] = None
                self._save_group(record)
        self.place_pending()

    def _bundles_rejoined(self, node_id: bytes, held: list) -> None:
        """A member registered again holding ``held`` (RegisterNode.bundles): make the
        groups and the node agree (head/bundle_reconcile.py)."""
        placing = self._placing_id if self._placing is not None else b""
        outcome = reconcile(node_id, held, self.groups, placing)
        for group_id, cause in outcome.release.items():
            self._to_node(node_id, ReturnBundles(group_id, cause))
        for group_id, indices in outcome.replace.items():
            record = self.groups[group_id]
            for index in indices:
                record.nodes[index] = b""
            if record.state == "CREATED":
                record.state = "RESCHEDULING"
            self._waiting[group_id] = None
            self._save_group(record)
        for group_id, indices in outcome.adopt.items():
            record = self.groups[group_id]
            for index in indices:
                record.nodes[index] = node_id
            if all(record.nodes):
                record.state = "CREATED"
                self._waiting.pop(group_id, None)
                self._answer_waiters(record)
            self._save_group(record)
        for group_id in outcome.commit:
            self._to_node(node_id, CommitBundles(group_id))
        if outcome.changed:
            logger.warning(
                "node %s re-joined holding %d bundle(s): %d group(s) given back (%d bundle(s) "
                "of them in use: their tasks and actors are stopped), %d committed again, %d "
                "adopted, %d placed again", node_id.hex()[:12], len(held), len(outcome.release),
                outcome.in_use, len(outcome.commit), len(outcome.adopt), len(outcome.replace),
            )  # fmt: skip
        if outcome.replace:
            self.place_pending()

    # --- internals ------------------------------------------------------------------------

    def _named_group(self, name: str, namespace: str) -> GroupRecord | None:
        for record in self.groups.values():
            live = record.state != "REMOVED"
            if live and record.name == name and record.namespace == namespace:
                return record
        return None

    def _answer_waiters(self, record: GroupRecord, only: asyncio.Future | None = None) -> None:
        """Tell those waiting on the group (or just ``only``, whose time is up) its state."""
        reply = PlacementGroups([record.describe()])
        for fut in [only] if only is not None else record.waiters:
            if not fut.done():
                fut.set_result(reply)
        record.waiters = [f for f in record.waiters if not f.done()]

    def _to_node(self, node: bytes, msg: Message) -> None:
        if node == self.local_id:
            getattr(self.local_node, f"handle_{type(msg).__name__}")(None, msg)
        elif node in self.members:
            self.members[node].send(msg)

    # provided by HeadService
    _placement_view: Callable[[], dict]
    _bundles_added: Callable[[bytes, str, dict], None]
    _bundles_gone: Callable[[bytes, str, dict], None]
    _save_group: Callable[[GroupRecord], None]
