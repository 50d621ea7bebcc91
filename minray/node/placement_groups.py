"""Placement groups at a node: drivers' requests go to the head; bundles are held here.

A mixin of :class:`~minray.node.daemon.NodeDaemon`. The head decides where each
bundle goes (head/placement_service.py); a node does two things:

* It passes its clients' requests (create, remove, wait, look up) to the head,
  and remembers which groups each client created: when a client disconnects, its
  groups that are not detached are removed, as in Ray.
* It holds the bundles the head places here, in two phases: ``PrepareBundles``
  takes their resources (all or nothing), ``CommitBundles`` adds the renamed
  resources (``CPU_group_<i>_<id>``, see head/placement.py) that the group's tasks
  and actors lease. ``ReturnBundles`` stops the tasks and actors running in them
  and gives everything back.
* When it registers again after losing the head, it says which bundles it holds
  (:meth:`PlacementGroupHandlers.held_bundles_report`); the head answers with
  ``ReturnBundles`` or ``CommitBundles`` where its groups disagree
  (head/bundle_reconcile.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..head.placement import bundle_resources
from ..protocol.connection import Connection
from ..protocol.messages import ErrorReply, Message, Ok, RemovePlacementGroup

if TYPE_CHECKING:
    from .daemon import NodeDaemon


@dataclass
class HeldBundles:
    """The bundles of one group held on this node."""

    prepared: dict = field(default_factory=dict)  #: index -> bundle, resources taken
    committed: dict = field(default_factory=dict)  #: index -> bundle, renamed resources added
    adds: dict = field(default_factory=dict)  #: the renamed resources added so far

    def need(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for bundle in [*self.prepared.values(), *self.committed.values()]:
            for name, amount in bundle.items():
                total[name] = total.get(name, 0.0) + amount
        return total


class PlacementGroupHandlers:
    """``handle_<Message>`` methods for placement groups, mixed into the node daemon."""

    # --- clients' requests: the head answers ----------------------------------------------

    def handle_CreatePlacementGroup(self: NodeDaemon, conn: Connection, msg):
        if not msg.detached:
            conn.info.setdefault("groups", []).append(msg.group_id)
        return self._head_answer(msg)

    def handle_RemovePlacementGroup(self: NodeDaemon, conn: Connection, msg) -> None:
        self._tell_head(msg)  # in order with what the client asks next

    def handle_WaitPlacementGroup(self: NodeDaemon, conn: Connection, msg):
        return self._head_answer(msg)

    def handle_GetPlacementGroups(self: NodeDaemon, conn: Connection, msg):
        return self._head_answer(msg)

    def _head_answer(self: NodeDaemon, msg: Message):
        """The head's answer: at once (or a future) on the head node, else a coroutine."""
        if self.head is not None:
            return getattr(self.head, f"handle_{type(msg).__name__}")(None, msg)
        return self._ask_head(msg)

    def _groups_owner_gone(self: NodeDaemon, conn: Connection) -> None:
        for group_id in conn.info.get("groups", ()):
            self._tell_head(RemovePlacementGroup(group_id))

    # --- bundles held here (the head asks) ------------------------------------------------

    def handle_PrepareBundles(self: NodeDaemon, conn: Connection | None, msg) -> Message:
        bundles = {int(index): dict(bundle) for index, bundle in msg.bundles}
        held = self.held_bundles.get(msg.group_id)
        if held is not None:  # asked again (a retry): what is held already stays
            bundles = {i: b for i, b in bundles.items() if i not in held.prepared | held.committed}
        need = HeldBundles(bundles).need()
        if not self.scheduler.reserve(need, {}):
            free = self.scheduler.available_resources()
            return ErrorReply(
                "ResourcesBusy",
                f"node {self.settings.node_id.hex()[:12]} has {free} free, the bundles need {need}",
            )
        self.held_bundles.setdefault(msg.group_id, HeldBundles()).prepared.update(bundles)
        return Ok()

    def handle_CommitBundles(self: NodeDaemon, conn: Connection | None, msg) -> None:
        held = self.held_bundles.get(msg.group_id)
        if held is None or not held.prepared:
            return
        adds = bundle_resources(msg.group_id.hex(), held.prepared)
        self.scheduler.reserve({}, adds)
        for name, amount in adds.items():
            held.adds[name] = held.adds.get(name, 0.0) + amount
        held.committed.update(held.prepared)
        held.prepared.clear()
        asyncio.get_running_loop().call_soon(self._schedule)  # leases waiting for them

    def handle_ReturnBundles(self: NodeDaemon, conn: Connection | None, msg) -> None:
        held = self.held_bundles.pop(msg.group_id, None)
        if held is None:
            return
        names = set(held.adds)
        if names:
            self._stop_users_of(names, msg.cause or "its placement group was removed")
        self.scheduler.unreserve(held.need(), held.adds)
        self._schedule()

    def held_bundles_report(self: NodeDaemon) -> list[list]:
        """[[group id, bundle index, bundle, committed, {resource: amount in use}], ...] of
        the bundles held here (told to the head when this node registers again)."""
        free = self.scheduler.available_resources()
        report = []
        for group_id, held in self.held_bundles.items():
            group_hex = group_id.hex()
            for index, bundle in held.prepared.items():
                report.append([group_id, index, bundle, False, {}])
            for index, bundle in held.committed.items():
                used = {}
                for name, amount in bundle.items():
                    taken = amount - free.get(f"{name}_group_{index}_{group_hex}", 0.0)
                    if taken > 1e-9:
                        used[name] = taken
                report.append([group_id, index, bundle, True, used])
        return report

    def _stop_users_of(self: NodeDaemon, names: set[str], cause: str) -> None:
        """End the leases, and kill the actors (ours and guests), holding these resources."""
        for lease in list(self.leases.values()):
            if names & set(lease.alloc.resources):
                self._end_lease(lease, kill_worker=True)
        for actor in self.actors.holding(names):
            self._actor_died(actor, f"The actor is dead because {cause}.\n{actor.describe()}")
        for guest in list(self.guests.values()):
            if guest.alloc is not None and names & set(guest.alloc.resources):
                self._guest_exiting(guest, f"The actor is dead because {cause}.")
                self._kill_guest(guest)
