"""The node's answers to actor messages: registration, placement, state, restarts, death.

A mixin of :class:`~minray.node.daemon.NodeDaemon` (it uses the daemon's
scheduler, requests and workers); the actor states themselves live in the pure
``ActorDirectory``. The record of an actor lives at its home, the node of the
process that created it; what other nodes ask about it is forwarded there
(node/actor_forwarding.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..config import CONFIG
from ..protocol.connection import Connection
from ..protocol.messages import (
    ActorInfo,
    ActorRegistered,
    ActorState,
    ClaimActor,
    ErrorReply,
    ExitActor,
    LeaseGranted,
    Ok,
    WhereIsActor,
)
from .actor_directory import ActorRecord
from .actor_hosting import GuestActor
from .processes import kill as _kill

if TYPE_CHECKING:
    from .daemon import LeaseRecord, WorkerRecord

logger = logging.getLogger("minray.node")


class ActorHandlers:
    """``handle_<Message>`` methods for actor messages, mixed into the node daemon."""

    def handle_RegisterActor(self, conn: Connection, msg):
        claim = ClaimActor(
            msg.actor_id, self.settings.node_id, msg.name, msg.namespace, msg.get_if_exists
        )
        if self.head is not None:  # in-process: no wait
            return self._register_claimed(conn, msg, self.head.handle_ClaimActor(None, claim))
        return self._register_at_head(conn, msg, claim)

    async def _register_at_head(self, conn: Connection, msg, claim: ClaimActor):
        return self._register_claimed(conn, msg, await self._ask_head(claim))

    def _register_claimed(self, conn: Connection, msg, claimed):
        """The head's answer to the claim: keep the record here, or name the holder."""
        if type(claimed) is ErrorReply:
            return claimed
        if claimed.actor_id != msg.actor_id:  # get_if_exists: a live actor has the name
            return ActorRegistered(claimed.actor_id, False)
        try:
            record, created = self.actors.register(
                msg.actor_id,
                conn,
                name=msg.name,
                namespace=msg.namespace,
                class_name=msg.class_name,
                detached=msg.detached,
                max_restarts=msg.max_restarts,
                handle_blob=msg.handle_blob,
                get_if_exists=msg.get_if_exists,
            )
        except ValueError as e:
            return ErrorReply("ActorAlreadyExistsError", str(e))
        return ActorRegistered(record.actor_id, created)

    def _grant_to_actor(self, lease: LeaseRecord, worker: WorkerRecord) -> None:
        """The worker is the actor's from now on; it holds only the actor's own resources."""
        record = self.actors.get(lease.actor_id)
        if record is None and lease.home:  # an actor of another node, placed here
            self._host_guest(lease, worker)
            return
        if record is None or record.state == ActorState.DEAD:
            self.scheduler.release(lease.alloc)
            lease.reply.set_result(ErrorReply("ActorDiedError", "the actor is dead"))
            self._worker_ready(worker)
            asyncio.get_running_loop().call_soon(self._schedule)  # what it held is free
            return
        record.alloc = self.scheduler.shrink(lease.alloc, lease.actor_resources)
        record.worker, worker.actor = worker, record
        lease.reply.set_result(
            LeaseGranted(0, worker.worker_id, worker.address, self._gpu_ids(lease))
        )
        asyncio.get_running_loop().call_soon(self._schedule)  # the placement CPU is free again

    def handle_ActorStarted(self, conn: Connection, msg) -> Ok:
        worker = conn.info.get("worker")
        guest = self.guests.get(msg.actor_id)
        if guest is not None and worker is not None and guest.worker is worker:
            self._guest_started(guest, msg)
            return Ok()
        record = self.actors.get(msg.actor_id)
        if worker is None or record is None or record.worker is not worker:
            raise ValueError("ActorStarted from a worker that does not host this actor")
        if msg.error is not None:
            cause = "The actor died because of an error raised in its creation task"
            self._actor_died(record, cause, msg.error)
        elif self.actors.started(msg.actor_id, msg.address, worker.pid or 0) is None:
            _kill(worker.pid)  # killed while it was starting
        else:
            self._notify_actor(record)
        return Ok()

    def handle_GetActorInfo(self, conn: Connection, msg):
        record = self.actors.get(msg.actor_id)
        if record is None:  # a handle passed here: its home knows
            return self._forward_home(msg, WhereIsActor(msg.actor_id, "", ""))
        if _settled(record, msg.stale_address):
            return _actor_info(record)
        fut = asyncio.get_running_loop().create_future()
        self._actor_waiters.setdefault(record.actor_id, []).append((msg.stale_address, fut))
        return fut

    def _notify_actor(self, record: ActorRecord) -> None:
        waiters = self._actor_waiters.pop(record.actor_id, [])
        for stale, fut in waiters:
            if fut.done():
                continue
            if _settled(record, stale):
                fut.set_result(_actor_info(record))
            else:
                self._actor_waiters.setdefault(record.actor_id, []).append((stale, fut))

    def handle_GetNamedActor(self, conn: Connection, msg):
        record = self.actors.named(msg.name, msg.namespace)
        if record is None:  # perhaps an actor of another node
            return self._forward_home(msg, WhereIsActor(b"", msg.name, msg.namespace))
        return _actor_info(record)

    def handle_ListNamedActors(self, conn: Connection, msg):
        return self._ask_head(msg)  # the names of the whole cluster

    def handle_KillActor(self, conn: Connection, msg):
        record = self.actors.get(msg.actor_id)
        if record is None:
            return self._forward_home(msg, WhereIsActor(msg.actor_id, "", ""))
        if record.state == ActorState.DEAD:
            return Ok()
        if msg.no_restart:
            host = record.host
            self._actor_died(record, f"The actor was killed by `minray.kill`.\n{record.describe()}")
            if host:
                return self._stopped_on_host(host, record.actor_id)
        elif record.worker is not None and record.worker.pid:
            _kill(record.worker.pid)  # it restarts if it may
        else:
            self._stop_remote_actor(record)
        return Ok()

    def handle_ActorOutOfScope(self, conn: Connection, msg) -> None:
        record = self.actors.get(msg.actor_id)
        if record is not None and not record.detached:
            self._actor_died(
                record,
                "The actor is dead because all references to the actor were removed "
                f"(its handles went out of scope).\n{record.describe()}",
                graceful=True,  # it runs __ray_shutdown__ and its atexit handlers, as in Ray
            )

    def handle_ActorExiting(self, conn: Connection, msg) -> Ok:
        guest = self.guests.get(msg.actor_id)
        if guest is not None and guest.worker is conn.info.get("worker"):
            self._guest_exiting(guest, msg.reason)
            return Ok()
        record = self.actors.get(msg.actor_id)
        if record is not None and record.worker is conn.info.get("worker"):
            self.actors.died(msg.actor_id, f"{msg.reason}\n{record.describe()}")
            self._notify_actor(record)
        return Ok()

    def handle_ActorCreationFailed(self, conn: Connection, msg) -> None:
        record = self.actors.get(msg.actor_id)
        if record is not None and record.owner is conn:
            self._actor_died(record, "The actor's creation task failed", msg.error)

    def _actor_died(
        self, record: ActorRecord, cause: str, error: bytes | None = None, graceful: bool = False
    ) -> None:
        """Mark the actor dead for good, stop its worker, drop its lease requests.
        ``graceful`` (a running actor only): let it run its exit hooks first."""
        graceful = graceful and record.state == ActorState.ALIVE
        if self.actors.died(record.actor_id, cause, error) is None:
            return
        if record.worker is not None and record.worker.pid:
            if graceful:
                self._exit_gracefully(record.worker, record.actor_id, cause)
            else:
                _kill(record.worker.pid)
        if record.alloc is not None:  # free for others now, not once its worker has gone
            self.scheduler.release(record.alloc)
            record.alloc = None
            asyncio.get_running_loop().call_soon(self._schedule)
        self._stop_remote_actor(record, graceful, cause)
        for key, (reply, request) in list(self._requests.items()):
            if request.actor_id == record.actor_id and self.scheduler.cancel(key):
                del self._requests[key]
                reply.set_result(ErrorReply("ActorDiedError", "the actor is dead"))
        self._notify_actor(record)

    def _exit_gracefully(self, worker: WorkerRecord, actor_id: bytes, reason: str) -> None:
        """Ask an actor's worker to exit (ExitActor); kill it if it has not within
        ``actor_graceful_shutdown_s`` (its __ray_shutdown__ or atexit handlers hang)."""
        if worker.conn is None or worker.conn.closed:
            _kill(worker.pid)
            return
        worker.conn.send(ExitActor(actor_id, reason))
        conn, pid = worker.conn, worker.pid

        def kill_if_still_there() -> None:
            if not conn.closed:
                logger.warning(
                    "actor %s did not exit within %.0f s of being asked (its __ray_shutdown__ "
                    "or atexit handlers hang?): killing its worker %d",
                    actor_id.hex(),
                    CONFIG.actor_graceful_shutdown_s,
                    pid,
                )
                _kill(pid)

        asyncio.get_running_loop().call_later(CONFIG.actor_graceful_shutdown_s, kill_if_still_there)

    def _actor_worker_lost(self, worker: WorkerRecord) -> None:
        if isinstance(worker.actor, GuestActor):
            self._guest_worker_lost(worker)
            return
        record = worker.actor
        worker.actor = None
        if record.alloc is not None:
            self.scheduler.release(record.alloc)
        if record.actor_id in self._recreate:  # stopped by us: its creation never came
            self._recreate.discard(record.actor_id)
            record.worker = record.alloc = None
            self._adopt(record, restart=record.state == ActorState.RESTARTING)
            return
        cause = self.oom_cause(worker) or (
            "The actor died unexpectedly before finishing this task.\n"
            f"{record.describe()}\nThe actor's worker process died: it may have crashed, been "
            "killed (by a signal or the out-of-memory killer) or called os._exit(); see "
            f"{self.settings.worker_log(worker.worker_id, 'err')}."
        )
        self._actor_lost(record, cause)

    def _actor_lost(self, record: ActorRecord, cause: str) -> None:
        """The actor's worker is gone (here or on its host): restart it if it may."""
        can_create = not record.owner.closed or bool(record.creation)  # (actor_keepers.py)
        state = self.actors.worker_lost(record.actor_id, cause, owner_alive=can_create)
        if state == ActorState.RESTARTING:
            logger.info("restarting actor %s (restart %d)", record.actor_id.hex(), record.restarts)
            self._run_creation(record)
        self._notify_actor(record)


def _settled(record: ActorRecord, stale_address: str) -> bool:
    """Whether a caller that saw ``stale_address`` fail can be answered now."""
    if record.state == ActorState.DEAD:
        return True
    return record.state == ActorState.ALIVE and record.address != stale_address


def _actor_info(record: ActorRecord) -> ActorInfo:
    return ActorInfo(
        record.actor_id,
        record.state,
        record.address,
        record.pid,
        record.restarts,
        record.death_cause,
        record.death_error,
        record.handle_blob,
        record.restart_cause,
    )
