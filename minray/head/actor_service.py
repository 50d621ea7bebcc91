"""The head's actor service: actor homes and names for the whole cluster.

A mixin of :class:`~minray.head.service.HeadService`, over the pure
:class:`~minray.head.actor_homes.ActorHomes`. Member nodes send these messages
over their connection to the head; the head's own node (and an embedded one)
calls the same handlers in-process, with ``conn=None``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..exceptions import ActorAlreadyExistsError
from ..protocol.messages import (
    ActorClaimed,
    ActorGone,
    ActorHome,
    ClaimActor,
    DetachedActor,
    ErrorReply,
    ListNamedActors,
    NamedActors,
    WhereIsActor,
)

if TYPE_CHECKING:
    from .service import HeadService

logger = logging.getLogger("minray.head")


def no_actor_named(name: str) -> str:
    return (
        f"Failed to look up actor with name '{name}'. This could because 1. You are trying to "
        "look up a named actor you didn't create. 2. The named actor died. 3. You did not use "
        "a namespace matching the namespace of the actor."
    )


class ActorService:
    """``handle_<Message>`` methods for actor homes and names, mixed into HeadService."""

    def handle_ClaimActor(self: HeadService, conn, msg: ClaimActor):
        try:
            holder = self.actor_homes.claim(
                msg.actor_id, msg.node_id, msg.name, msg.namespace, msg.get_if_exists
            )
        except ActorAlreadyExistsError as e:
            return ErrorReply("ActorAlreadyExistsError", str(e))
        if holder == msg.actor_id:
            self._save_actor(holder)
        return ActorClaimed(holder)

    def handle_ActorGone(self: HeadService, conn, msg: ActorGone) -> None:
        self.actor_homes.gone(msg.actor_id)
        self._save_actor(msg.actor_id)

    def handle_DetachedActor(self: HeadService, conn, msg: DetachedActor) -> None:
        self.actor_homes.keep(msg.actor_id, msg)
        self._save_actor(msg.actor_id)

    def _rehome_actors(self: HeadService, node_id: bytes) -> None:
        """Node ``node_id`` died: the head's own node takes in its kept detached actors."""
        moved = self.actor_homes.move_kept(node_id, self.local_id) if self.local_node else []
        for actor_id in self.actor_homes.node_died(node_id):  # the others die with it
            self._save_actor(actor_id)
        for kept in moved:
            self._save_actor(kept.actor_id)
            self.local_node.handle_DetachedActor(None, kept)

    def _actors_rejoined(self: HeadService, node_id: bytes, actors: list) -> None:
        """Node ``node_id`` registered again, home to ``actors`` ([[id, namespace, name]...]):
        the actors it no longer runs are dead (their ActorGone was lost with the head), and
        those the head did not know are recorded (if their names are still free)."""
        live = {actor_id for actor_id, _, _ in actors}
        for actor_id in self.actor_homes.homed_at(node_id):
            if actor_id not in live:
                self.actor_homes.gone(actor_id)
                self._save_actor(actor_id)
        for actor_id, namespace, name in actors:
            if self.actor_homes.saved(actor_id) is not None:
                continue
            try:
                self.actor_homes.claim(actor_id, node_id, name, namespace, False)
            except ActorAlreadyExistsError:
                logger.warning("actor %s of a returning node lost its name %r to another actor",
                               actor_id.hex(), name)  # fmt: skip
                self.actor_homes.claim(actor_id, node_id, "", namespace, False)
            self._save_actor(actor_id)

    def handle_WhereIsActor(self: HeadService, conn, msg: WhereIsActor):
        if msg.actor_id:
            actor_id, node_id = msg.actor_id, self.actor_homes.home(msg.actor_id)
            missing = f"no actor with id {msg.actor_id.hex()} is known"
        else:
            found = self.actor_homes.named(msg.name, msg.namespace)
            actor_id, node_id = found if found is not None else (b"", None)
            missing = no_actor_named(msg.name)
        if node_id is None:
            return ErrorReply("ValueError", missing)
        record = self.table.nodes.get(node_id)
        return ActorHome(actor_id, node_id, record is not None and record.alive)

    def handle_ListNamedActors(self: HeadService, conn, msg: ListNamedActors) -> NamedActors:
        namespace = None if msg.all_namespaces else msg.namespace
        return NamedActors(self.actor_homes.list_named(namespace))
