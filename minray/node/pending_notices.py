"""Telling owners why their lease requests wait at this node (``LeasePending``).

A mixin of :class:`~minray.node.daemon.NodeDaemon`. When a request is kept (queued,
or granted and waiting for a worker process), a pass runs shortly after and then
every REASON_INTERVAL_S while any request waits: it works out each waiting
request's reason from the node's real state (the scheduler's queue in its order,
the leases, actors and bundles holding resources, the workers starting; the words
are node/pending_reasons.py's) and sends ``LeasePending`` to the owner of each
request whose reason changed since it was last told. A request granted at once
costs nothing here: no pass, no message. The reasons told are kept by request, for
``minray status`` (PendingDemands).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..protocol.messages import ActorState, LeasePending
from . import pending_reasons as words

if TYPE_CHECKING:
    from .daemon import NodeDaemon

#: seconds from a request being kept to the first pass (most waits are shorter)
REASON_DELAY_S = 0.1
#: seconds between passes while requests wait
REASON_INTERVAL_S = 0.5


class PendingNotices:
    """The reason pass, mixed into the node daemon."""

    #: (owner connection, request id) -> the reason it was last told
    told_reasons: dict

    def _init_pending_notices(self: NodeDaemon) -> None:
        self.told_reasons = {}
        self._reason_timer: asyncio.TimerHandle | None = None

    def _reasons_soon(self: NodeDaemon) -> None:
        """A request is kept: make sure a pass comes."""
        if self._reason_timer is None and not self._stopping:
            loop = asyncio.get_running_loop()
            self._reason_timer = loop.call_later(REASON_DELAY_S, self._tell_reasons)

    def _tell_reasons(self: NodeDaemon) -> None:
        self._reason_timer = None
        if self._stopping:
            return
        told, now = self.told_reasons, {}
        for key, reason in self.waiting_reasons():
            now[key] = reason
            owner, request_id = key
            if told.get(key) != reason and not owner.closed:
                owner.send(LeasePending(request_id, reason))
        self.told_reasons = now
        if now:
            loop = asyncio.get_running_loop()
            self._reason_timer = loop.call_later(REASON_INTERVAL_S, self._tell_reasons)

    def waiting_reasons(self: NodeDaemon) -> Iterator[tuple[tuple, str]]:
        """``((owner, request id), reason)`` of every request waiting here, queue order."""
        node = self.settings.node_id.hex()[:12]
        available = self.scheduler.available_resources()
        queued = []  # (key, shape, what this node can never provide of it)
        for key in self.scheduler.queued():
            entry = self._requests.get(key)
            if entry is not None:
                shape = entry[1].resources
                queued.append((key, shape, self.scheduler.missing(shape)))
        asking: Counter = Counter()  # resource name -> queued requests that can use it
        for _, shape, missing in queued:
            if not missing:
                asking.update(name for name, amount in shape.items() if amount > 0)
        ahead: Counter = Counter()  # the same, before this one
        for key, shape, missing in queued:
            yield key, self._queued_reason(shape, missing, node, available, ahead, asking)
            if not missing:
                ahead.update(name for name, amount in shape.items() if amount > 0)
        starting = max(self.starting, 0)
        waiting = [lease for lease in self.waiting if not lease.owner.closed]
        for position, lease in enumerate(waiting, 1):
            reason = words.worker_starting(node, position, len(waiting), starting)
            yield (lease.owner, lease.request_id), reason

    def _queued_reason(self: NodeDaemon, shape: dict, missing: dict, node: str,
                       available: dict, ahead: Counter, asking: Counter) -> str:  # fmt: skip
        if any("_group_" not in name for name in missing):
            return words.infeasible(shape, self._node_totals())
        group = words.group_of(shape)
        if missing:
            return words.group_not_placed(group, *self._group_state(group))
        names = words.short_of(shape, available)
        if not names:
            return words.fits_now(node)
        holders = self._holders(set(names))
        name = max(names, key=lambda n: ahead[n])  # what it waits longest for
        where = words.place(ahead[name] + 1, asking[name], name)
        if group:
            return words.group_busy(group, shape, holders, where)
        return words.busy(node, shape, names, holders, where)

    def _node_totals(self: NodeDaemon) -> list[tuple[str, dict]]:
        return [
            (f"{n['NodeManagerAddress']} ({n['NodeID'][:12]})", n["Resources"])
            for n in self._cluster_nodes()
            if n.get("Alive")
        ]

    def _group_state(self: NodeDaemon, group_hex: str) -> tuple[str, str]:
        """The group's state and why it cannot be placed, when the head is here."""
        if self.head is None:
            return "", ""
        record = self.head.groups.get(bytes.fromhex(group_hex))
        if record is None:
            return "unknown to the head (removed?)", ""
        return record.state, record.infeasible

    def _holders(self: NodeDaemon, names: set[str]) -> list[str]:
        """Who holds some of ``names`` on this node: leases, actors, bundles."""
        out = []
        for lease in self.leases.values():
            if names & set(lease.alloc.resources) and not (lease.blocked and names == {"CPU"}):
                pid = lease.worker.pid if lease.worker is not None else "?"
                out.append(f"task {lease.task_name} (worker pid {pid})")
        for lease in self.waiting:
            if names & set(lease.alloc.resources):
                out.append(f"{lease.task_name} (its worker is starting)")
        for record in self.actors.actors.values():
            alloc = record.alloc if record.state != ActorState.DEAD else None
            if alloc is not None and names & set(alloc.resources):
                out.append(f"actor {record.class_name} (pid {record.pid or '?'})")
        for guest in self.guests.values():
            if guest.alloc is not None and names & set(guest.alloc.resources):
                name = guest.class_name.removesuffix(".__init__")
                out.append(f"actor {name} (pid {guest.worker.pid or '?'})")
        for group_id, held in self.held_bundles.items():
            if names & set(held.need()):
                out.append(f"placement group {group_id.hex()}")
        return out
