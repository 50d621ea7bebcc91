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
next one adopts it the next time it is needed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..protocol.connection import Connection
from ..protocol.messages import ActorState, AdoptActor, RestartActor
from .actor_directory import ActorRecord

if TYPE_CHECKING:
    from .daemon import WorkerRecord

logger = logging.getLogger("minray.node")


class ActorKeepers:
    """KeepCreation, and the adoption of detached actors whose owner has exited."""

    def handle_KeepCreation(self, conn: Connection, msg) -> None:
        record = self.actors.get(msg.actor_id)
        if record is not None and record.owner is conn and record.detached:
            record.creation = msg.creation

    def _run_creation(self, record: ActorRecord) -> None:
        """The actor must start again: its owner runs its creation, or a worker adopts it."""
        if not record.owner.closed:
            record.owner.send(RestartActor(record.actor_id))
        else:
            self._adopt(record, restart=True)

    def _adopt_orphans(self, owner: Connection) -> None:
        """``owner`` has exited: its detached actors waiting for a worker (their creator's
        lease request went with it) are created by a worker of this node instead."""
        for record in self.actors.kept_by(owner):
            if record.worker is None and not record.host and record.state != ActorState.ALIVE:
                self._adopt(record, restart=record.state == ActorState.RESTARTING)

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
