"""The cluster side of actors at a node: names claimed at the head, lookups forwarded home.

A mixin of :class:`~minray.node.daemon.NodeDaemon`. An actor's record lives at
its home, the node of the process that created it (node/actor_handlers.py);
the head knows every actor's home and the cluster's names (head/actor_homes.py).

* Registering an actor first claims it at the head, so a name is unique across
  the cluster (and ``get_if_exists`` finds an actor of another node).
* A question about an actor this node does not keep (``GetActorInfo`` for a
  handle passed here, ``KillActor``, ``GetNamedActor``) goes to its home, found
  through the head, and the home's answer comes back unchanged. An actor whose
  home node died is dead.
* An actor's death frees its name at the head.

On the head (and an embedded node) the head's handlers are called in-process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..head.actor_service import no_actor_named
from ..protocol.connection import ConnectionLost, RemoteError
from ..protocol.messages import (
    ActorGone,
    ActorInfo,
    ActorState,
    ErrorReply,
    GetActorInfo,
    GetNamedActor,
    KillActor,
    Message,
    Ok,
    WhereIsActor,
)

if TYPE_CHECKING:
    from .daemon import NodeDaemon


class ActorForwarding:
    """Asking the head and other nodes about actors, mixed into the node daemon."""

    async def _ask_head(self: NodeDaemon, msg: Message) -> Message:
        """The head's answer (an ErrorReply rather than an exception)."""
        if self.head is not None:
            return getattr(self.head, f"handle_{type(msg).__name__}")(None, msg)
        try:
            conn = await self.head_client.connection()  # (waits while it reconnects)
            return await conn.request(msg)
        except RemoteError as e:
            return ErrorReply(e.error, str(e))
        except ConnectionLost as e:
            return ErrorReply("RaySystemError", f"the head is unreachable: {e}")

    def _tell_head(self: NodeDaemon, msg: Message) -> None:
        if self.head is not None:
            getattr(self.head, f"handle_{type(msg).__name__}")(None, msg)
        elif self.head_client is not None:
            self.head_client.tell(msg)  # (kept while the head is away)

    def _actor_gone(self: NodeDaemon, actor_id: bytes) -> None:
        """The directory's death hook: the actor's name is free cluster-wide."""
        self._tell_head(ActorGone(actor_id))

    async def _forward_home(self: NodeDaemon, msg: Message, where: WhereIsActor) -> Message:
        """Answer ``msg`` about an actor this node does not keep, from the actor's home."""
        home = await self._ask_head(where)
        if type(home) is ErrorReply:
            return home
        if home.node_id == self.settings.node_id:  # ours, but forgotten or renamed since
            return _missing(msg)
        if home.node_alive:
            try:
                return await self.peers.request(home.node_id, msg)
            except RemoteError as e:
                return ErrorReply(e.error, str(e))
            except ConnectionError:
                pass  # it died just now
        return _home_died(msg, home.actor_id, home.node_id)


def _missing(msg: Message) -> ErrorReply:
    if type(msg) is GetNamedActor:
        return ErrorReply("ValueError", no_actor_named(msg.name))
    return ErrorReply("ValueError", f"no actor with id {msg.actor_id.hex()} is known")


def _home_died(msg: Message, actor_id: bytes, node_id: bytes) -> Message:
    """The answer for an actor whose home node is dead: so is the actor."""
    if type(msg) is KillActor:
        return Ok()
    if type(msg) is GetNamedActor:
        return ErrorReply("ValueError", no_actor_named(msg.name))
    assert type(msg) is GetActorInfo
    cause = (
        f"The actor died because its node ({node_id.hex()[:12]}) died: the node that "
        "created it and kept its record is gone."
    )
    return ActorInfo(actor_id, ActorState.DEAD, "", 0, 0, cause, None, b"")
