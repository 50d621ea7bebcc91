"""The actors this process owns: their lifetimes, and their restarts.

A mixin of :class:`~minray.runtime.core_worker.CoreWorker`. The creator owns an
actor: it keeps the actor's creation task (to run it again on a restart) while
the actor's lifetime object is referenced, and tells the node when it is not.
A detached actor outlives its creator: the node keeps a copy of its creation
task (KeepCreation) and, once the creator has exited, hands it to one of its
workers (AdoptActor), which owns the actor from then on.
"""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING

import cloudpickle

from ..exceptions import RaySystemError
from ..protocol.connection import Connection
from ..protocol.messages import ActorCreationFailed, ActorOutOfScope, KeepCreation, Ok

if TYPE_CHECKING:
    from .core_worker import CoreWorker


class OwnedActors:
    """``own_actor``, and what happens when an owned actor goes out of scope or restarts."""

    def own_actor(self: CoreWorker, actor_id: bytes, lifetime_id: bytes, creation) -> None:
        """Remember an actor created here; it lives while its lifetime object is referenced."""
        self.owned_actors[actor_id] = creation
        self._actor_lifetimes[lifetime_id] = actor_id

    def keep_creation(self: CoreWorker, spec) -> None:
        """Give the node a copy of a detached actor's creation task, before ``.remote()``
        returns (a creator that exits at once must not take it along); not the loop thread."""
        self.call_node(KeepCreation(spec.actor["actor_id"], cloudpickle.dumps(spec)))

    def handle_AdoptActor(self: CoreWorker, conn: Connection, msg) -> None:
        """Own a detached actor whose creator has exited: run its creation task (again)."""
        spec = cloudpickle.loads(msg.creation)
        if msg.restart:
            spec.actor = {**spec.actor, "restarted": True}
        with self._lock:  # the creation holds its arguments, as at its first submission
            self.refs.add_submitted(
                [[oid, owner] for _, oid, owner in spec.placeholders] + spec.nested_refs
            )
        self.owned_actors[spec.actor["actor_id"]] = spec
        self.submitter.submit(spec)

    def handle_CreationReceived(self: CoreWorker, conn: Connection, msg) -> Ok:
        """From the node: has this actor's creation task reached this worker (its
        owner has exited, and the node creates it anew if not)?"""
        if self.executor is None or self.executor.creation_pushed != msg.actor_id:
            raise ValueError(f"the creation task of actor {msg.actor_id.hex()} is not here")
        return Ok()

    def _actor_out_of_scope(self: CoreWorker, actor_id: bytes) -> None:
        creation = self.owned_actors.get(actor_id)
        if creation is not None and not creation.actor["detached"]:  # detached may restart
            del self.owned_actors[actor_id]
            self.submitter.forget_actor(creation)
            if self.local_runner is not None:
                self.local_runner.forget_actor(actor_id)
        if self.node is not None and not self.node.closed:
            self.node.send(ActorOutOfScope(actor_id))

    def handle_RestartActor(self: CoreWorker, conn: Connection, msg) -> None:
        creation = self.owned_actors.get(msg.actor_id)
        if creation is not None:
            self.submitter.restart_actor(creation)
            return
        error = RaySystemError(
            "the actor cannot restart: its owner no longer has its creation task"
        )
        conn.send(ActorCreationFailed(msg.actor_id, pickle.dumps(error)))
