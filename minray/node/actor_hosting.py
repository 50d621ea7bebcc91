"""Actors placed on another node than their home: the host keeps the worker, the home the record.

A mixin of :class:`~minray.node.daemon.NodeDaemon`. An actor's record (state,
address, restarts) stays at its home, the node of the process that created it
(node/actor_handlers.py). Its creation lease may spill to another node like a
task's; that node, the *host*, then keeps only a :class:`GuestActor`: the worker
and the resources it holds. The two tell each other what the other must know:

* host -> home, ``ActorUpdate``: the actor was given a worker here ("placed", a
  request: the home says no if the actor's owner has exited meanwhile, and the
  lease is not granted), it started (its address), its ``__init__`` failed, its
  worker died, or it is exiting; "unplaced": its owner exited before its
  creation task reached the worker, which was stopped (the home creates it anew);
* home -> host, ``KillActorWorker``: the actor was killed, went out of scope
  (``graceful``: the worker gets ExitActor and runs its exit hooks), or its owner
  died (or, without ``no_restart``, kill it so it restarts).

When a host node dies, its guests are lost like a crashed worker: the home
restarts them (anywhere) if ``max_restarts`` allows, else they are dead. When a
home node dies, the host stops its guests: their owner and record are gone.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..protocol.connection import Connection, RemoteError
from ..protocol.messages import (
    ActorState,
    ActorUpdate,
    ErrorReply,
    KillActorWorker,
    LeaseGranted,
    Ok,
)
from .processes import kill as _kill

if TYPE_CHECKING:
    from .daemon import LeaseRecord, NodeDaemon, WorkerRecord

logger = logging.getLogger("minray.node")

CREATION_FAILED = "The actor died because of an error raised in its creation task"


@dataclass(eq=False)
class GuestActor:
    """An actor this node hosts for its home node."""

    actor_id: bytes
    home: bytes  #: the node that keeps its record
    worker: Any  #: the WorkerRecord hosting it
    alloc: Any  #: the resources it holds while it lives
    class_name: str = ""  #: what its creation lease was asked for (for messages)
    retriable: bool = True  #: it may restart (max_restarts != 0), as its home asked
    owner: Any = None  #: the connection of the process that was granted its lease
    started: bool = False  #: its worker said how its __init__ went
    unplaced: bool = False  #: stopped because its creation task never reached it


class ActorHosting:
    """Hosting actors for other nodes, and hearing about ours hosted elsewhere."""

    def _init_hosting(self: NodeDaemon) -> None:
        self.guests: dict[bytes, GuestActor] = {}

    # --- the host's side ------------------------------------------------------------------

    def _host_guest(self: NodeDaemon, lease: LeaseRecord, worker: WorkerRecord) -> None:
        """The worker is a guest actor's from now on (its record is at ``lease.home``)."""
        alloc = self.scheduler.shrink(lease.alloc, lease.actor_resources)
        guest = GuestActor(
            lease.actor_id, lease.home, worker, alloc, lease.task_name, lease.retriable,
            owner=lease.owner,
        )  # fmt: skip
        self.guests[guest.actor_id] = guest
        worker.actor = guest
        asyncio.get_running_loop().call_soon(self._schedule)  # the placement CPU is free
        asyncio.get_running_loop().create_task(self._place_guest(guest, lease))

    async def _place_guest(self: NodeDaemon, guest: GuestActor, lease: LeaseRecord) -> None:
        """Tell the home where its actor is before its owner hears of the lease, so that a
        home whose owner exits meanwhile knows whom to ask; grant it if the home agrees."""
        owner = lease.owner.info.get("address", "")
        placed = ActorUpdate(guest.actor_id, self.settings.node_id, "placed", owner, 0, "", None)
        try:
            await self.peers.request(guest.home, placed)
        except (ConnectionError, RemoteError) as e:
            refused = str(e)
        else:
            if not lease.reply.done():
                lease.reply.set_result(
                    LeaseGranted(0, guest.worker.worker_id, guest.worker.address,
                                 self._gpu_ids(lease))
                )  # fmt: skip
            return
        if self.guests.get(guest.actor_id) is guest:
            self._drop_guest(guest)
            if guest.worker.worker_id in self.workers:
                self._worker_ready(guest.worker)
            asyncio.get_running_loop().call_soon(self._schedule)
        if not lease.reply.done():
            lease.reply.set_result(ErrorReply("ActorDiedError", f"not placed: {refused}"))

    def _guest_started(self: NodeDaemon, guest: GuestActor, msg) -> None:
        guest.started = True
        event = "started" if msg.error is None else "failed"
        self._tell_home(guest, event, msg.address, cause="", error=msg.error)

    def _guest_exiting(self: NodeDaemon, guest: GuestActor, reason: str) -> None:
        self._tell_home(guest, "exiting", "", cause=reason)

    def _kill_guest(self: NodeDaemon, guest: GuestActor) -> None:
        if guest.worker.pid:
            _kill(guest.worker.pid)  # its loss is told home when its connection closes

    def _guest_worker_lost(self: NodeDaemon, worker: WorkerRecord) -> None:
        guest = worker.actor
        self._drop_guest(guest)
        cause = self.oom_cause(worker) or (
            "The actor died unexpectedly before finishing this task.\nThe actor's worker "
            f"process on node {self.settings.node_id.hex()[:12]} ({self.settings.node_ip}) "
            "died: it may have crashed, been killed (by a signal or the out-of-memory killer) "
            f"or called os._exit(); see {self.settings.worker_log(worker.worker_id, 'err')}."
        )
        self._tell_home(guest, "unplaced" if guest.unplaced else "lost", "", cause=cause)

    def _drop_guest(self: NodeDaemon, guest: GuestActor) -> None:
        """Forget a guest: its worker hosts nothing now, and its resources are free."""
        guest.worker.actor = None
        self.guests.pop(guest.actor_id, None)
        if guest.alloc is not None:
            self.scheduler.release(guest.alloc)

    def _check_guests_of(self: NodeDaemon, owner: Connection) -> None:
        """The owner of guests that have not started has exited: each worker is asked
        whether the creation task reached it, and stopped if not (node/actor_keepers.py)."""
        for guest in list(self.guests.values()):
            if guest.owner is owner and not guest.started and guest.worker.conn is not None:
                self._check_creation(guest.worker, guest.actor_id)

    def _tell_home(
        self: NodeDaemon, guest: GuestActor, event: str, address: str, cause: str, error=None
    ) -> None:
        pid = guest.worker.pid or 0
        update = ActorUpdate(
            guest.actor_id, self.settings.node_id, event, address, pid, cause, error
        )
        self.peers.send(guest.home, update)

    def handle_KillActorWorker(self: NodeDaemon, conn: Connection, msg) -> Ok:
        guest = self.guests.get(msg.actor_id)
        if guest is not None and msg.graceful and guest.worker.pid:
            self._exit_gracefully(guest.worker, guest.actor_id, msg.reason)
        elif guest is not None:
            self._kill_guest(guest)
        if guest is not None and guest.alloc is not None:  # free for others now
            self.scheduler.release(guest.alloc)
            guest.alloc = None
            asyncio.get_running_loop().call_soon(self._schedule)
        return Ok()  # (to a request: the worker is gone now)

    # --- the home's side ------------------------------------------------------------------

    def handle_ActorUpdate(self: NodeDaemon, conn: Connection, msg: ActorUpdate) -> Ok | None:
        record = self.actors.get(msg.actor_id)
        host = msg.node_id
        if record is None or record.state == ActorState.DEAD:
            if msg.event == "started":  # killed while it was starting
                conn.send(KillActorWorker(msg.actor_id))
            if msg.event == "placed":
                raise ValueError("the actor is dead")
            return None
        if msg.event == "placed":  # (a request: the lease is granted only on Ok)
            return self._guest_placed(record, host, msg.address)
        if msg.event == "started":
            record.host = host
            if self.actors.started(msg.actor_id, msg.address, msg.pid) is not None:
                self._notify_actor(record)
            return
        record.host = b""
        if msg.event == "unplaced":  # its creation never reached its worker there
            if record.owner.closed:
                self._adopt(record, restart=record.state == ActorState.RESTARTING)
        elif msg.event == "failed":
            self._actor_died(record, CREATION_FAILED, msg.error)
        elif msg.event == "lost":
            self._actor_lost(record, msg.cause)
        elif msg.event == "exiting":
            self.actors.died(msg.actor_id, f"{msg.cause}\n{record.describe()}")
            self._notify_actor(record)

    def _guest_placed(self: NodeDaemon, record, host: bytes, owner: str) -> Ok:
        """A worker of ``host`` was given to the actor, leased by ``owner``: agree, unless
        that owner is no longer the actor's (it exited, and the actor was adopted)."""
        if record.owner.closed or record.owner.info.get("address") != owner:
            raise ValueError("the actor's owner has exited; its home creates it instead")
        record.host = host
        return Ok()

    def _stop_remote_actor(self: NodeDaemon, record, graceful: bool = False, reason="") -> None:
        """Stop the worker of an actor of ours hosted on another node (``graceful``: let
        it run its exit hooks first)."""
        if record.host:
            self.peers.send(record.host, KillActorWorker(record.actor_id, graceful, reason))

    async def _stopped_on_host(self: NodeDaemon, host: bytes, actor_id: bytes) -> Ok:
        """Answer once the host has killed the actor's worker (as a local kill is done
        before its answer), so a call made after ``kill`` returns fails."""
        try:
            await self.peers.request(host, KillActorWorker(actor_id))
        except (ConnectionError, RemoteError):
            pass  # the host is gone, and the worker with it
        return Ok()

    # --- a node died --------------------------------------------------------------------

    def _actors_of_dead_node(self: NodeDaemon, node_id: bytes) -> None:
        """Actors of ours hosted there are lost; guests whose home it was are stopped."""
        for record in list(self.actors.actors.values()):
            if record.host == node_id and record.state != ActorState.DEAD:
                record.host = b""
                cause = (
                    "The actor died unexpectedly: the node hosting it "
                    f"({node_id.hex()[:12]}) died.\n{record.describe()}"
                )
                self._actor_lost(record, cause)
        for guest in list(self.guests.values()):
            if guest.home == node_id and guest.worker.pid:
                logger.info("stopping actor %s: its home node died", guest.actor_id.hex())
                _kill(guest.worker.pid)
