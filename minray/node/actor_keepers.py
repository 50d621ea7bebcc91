"""Detached actors outlive their creator: the node keeps their creation task for them.

A mixin of :class:`~minray.node.daemon.NodeDaemon`. An actor's owner (the process
that created it) runs its creation task again when its worker dies. A detached
actor must start and restart after that process has exited, as in Ray, where the
GCS owns detached actors. Here the owner sends the node a pickled copy of the
creation task when it creates the actor (KeepCreation; the node never unpickles
it). When the actor needs its creation run and its owner has exited (it was still
waiting for a worker, or its worker died with restarts left), the node hands the
copy to one of its workers (AdoptActor), which owns the actor from then on and
runs the creation as the creator would have. Should that worker exit too, the
next one adopts it the next time it is needed. A creator may exit after a worker
was given to its actor but before it sent the worker the creation task: the node
holding that worker asks it (CreationReceived) and, if the task never came, stops
it, so the actor is created anew exactly once.

A detached actor that may restart also outlives its home node: the home gives the
head a copy of its record and creation (DetachedActor); when the home dies, the
head's node becomes its home and starts it again (its host node, if another,
stops it, as for any actor whose home died). Its restarts are counted afresh
there, from that one. A head that saves its tables keeps those of its own node's
detached actors too: a restarted head's node takes them in.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..protocol.connection import Connection, RemoteError
from ..protocol.messages import (
    ActorState,
    AdoptActor,
    CreationReceived,
    DetachedActor,
    Ok,
    RestartActor,
)
from .actor_directory import ActorRecord
from .processes import kill as _kill

if TYPE_CHECKING:
    from .daemon import WorkerRecord

logger = logging.getLogger("minray.node")

#: how long a worker has to say whether an actor's creation task reached it
CREATION_CHECK_TIMEOUT_S = 10.0


class _NoOwner:
    """The owner of an actor taken in from a dead node, until a worker here adopts it."""

    closed = True
    info: dict = {}  # (no address: no lease is ever its)


_NO_OWNER = _NoOwner()


class ActorKeepers:
    """KeepCreation, and the adoption of detached actors whose owner has exited."""

    def handle_KeepCreation(self, conn: Connection, msg) -> Ok:
        record = self.actors.get(msg.actor_id)
        if record is None or record.owner is not conn or not record.detached:
            return Ok()
        record.creation = msg.creation
        # (an embedded head's node dies with it; a head that saves its tables comes back)
        saved = self.head is None or self.head.store is not None
        if saved and record.max_restarts != 0:
            kept = DetachedActor(
                record.actor_id,
                record.name,
                record.namespace,
                record.class_name,
                record.max_restarts,
                record.handle_blob,
                record.creation,
            )
            self._tell_head(kept)
        return Ok()

    def handle_DetachedActor(self, conn: Connection | None, msg: DetachedActor) -> None:
        """From the head: the home of this detached actor died; this node is its home now."""
        record, _ = self.actors.register(
            msg.actor_id,
            _NO_OWNER,
            name=msg.name,
            namespace=msg.namespace,
            class_name=msg.class_name,
            detached=True,
            max_restarts=msg.max_restarts,
            handle_blob=msg.handle_blob,
        )
        record.creation = msg.creation
        record.state, record.restarts = ActorState.RESTARTING, 1
        record.restart_cause = "The actor's home node (where it was created) died."
        logger.info("detached actor %s moved here: its home node died", msg.actor_id.hex())
        self._adopt(record, restart=True)

    def _run_creation(self, record: ActorRecord) -> None:
        """The actor must start again: its owner runs its creation, or a worker adopts it."""
        if not record.owner.closed:
            record.owner.send(RestartActor(record.actor_id))
        else:
            self._adopt(record, restart=True)

    def _adopt_orphans(self, owner: Connection) -> None:
        """``owner`` has exited: its detached actors that have not started are created by a
        worker of this node instead, unless their creation task reached their worker.

        An actor still waiting for a worker (its creator's lease request went with the
        creator) is adopted at once. One given a worker here is adopted if that worker
        says its creation task never came (the worker is stopped first). One placed on
        another node is that node's to check: it says "unplaced" if the creation never
        came there either. So the actor is created once, never twice."""
        for record in self.actors.kept_by(owner):
            if record.state == ActorState.ALIVE or record.host:
                continue
            if record.worker is None:
                self._adopt(record, restart=record.state == ActorState.RESTARTING)
            elif record.worker.conn is not None:
                self._check_creation(record.worker, record.actor_id)

    def _check_creation(self, worker: WorkerRecord, actor_id: bytes) -> None:
        """Ask the worker given to an actor whose owner has exited if the actor's creation
        reached it; if not, stop it, and the actor is created anew (``_recreate``)."""

        async def check() -> None:
            try:
                await asyncio.wait_for(
                    worker.conn.request(CreationReceived(actor_id)), CREATION_CHECK_TIMEOUT_S
                )
                return  # its __init__ runs there: it reports as any actor does
            except RemoteError:
                why = "its creation task never reached it"
            except (ConnectionError, asyncio.TimeoutError) as e:
                why = f"it did not answer ({e!r})"
            if worker.pid and worker.actor is not None:
                logger.info(
                    "the creator of actor %s exited, and %s: stopping worker %d, the actor "
                    "is created anew", actor_id.hex(), why, worker.pid,
                )  # fmt: skip
                self._recreate.add(actor_id)
                _kill(worker.pid)

        asyncio.get_running_loop().create_task(check())

    def _adopt(self, record: ActorRecord, restart: bool) -> None:
        worker = self._adopter()
        if worker is None:  # none yet: the next worker to register adopts it
            self._adoptions.append((record.actor_id, restart))
            if self.starting <= len(self.waiting):
                self._start_worker()
            return
        self._hand_over(record, worker, restart)

    def _adopter(self) -> WorkerRecord | None:
        """A worker that can own an actor: idle if any, else one running tasks (its event
        loop answers while its task runs); not one hosting an actor (it may die with it)."""
        for worker in self.idle:
            if worker.conn is not None and not worker.conn.closed:
                return worker
        for worker in self.workers.values():
            if worker.actor is None and worker.conn is not None and not worker.conn.closed:
                return worker
        return None

    def _hand_over(self, record: ActorRecord, worker: WorkerRecord, restart: bool) -> None:
        if record.state == ActorState.DEAD or not record.creation:
            return
        logger.info(
            "the creator of detached actor %s has exited: worker %d owns it now",
            record.actor_id.hex(),
            worker.pid or 0,
        )
        record.owner = worker.conn
        worker.conn.send(AdoptActor(record.actor_id, record.creation, restart))

    def _adopt_waiting(self, worker: WorkerRecord) -> None:
        """A worker registered: it adopts the actors that waited for one."""
        adoptions, self._adoptions = self._adoptions, []
        for actor_id, restart in adoptions:
            record = self.actors.get(actor_id)
            if record is not None:
                self._hand_over(record, worker, restart)
