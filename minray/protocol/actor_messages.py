"""Actor messages: registration, state, restarts and death, at the actor's home node.

Part of the protocol's one place for messages (re-exported by messages.py).
"""

from __future__ import annotations

import enum
from typing import Any

from .message_base import Message, MsgType, message

# --- actors: the node's actor directory ----------------------------------------------------
#
# An actor is PENDING until its worker has run __init__, then ALIVE; if its worker
# dies and restarts are left it is RESTARTING, else (or when killed) DEAD for good.


class ActorState(enum.IntEnum):
    PENDING = 0
    ALIVE = 1
    RESTARTING = 2
    DEAD = 3


@message
class RegisterActor(Message):
    """Owner -> node, at ``Cls.remote()``: reserve the id (and the name); ActorRegistered."""

    type = MsgType.REGISTER_ACTOR
    actor_id: bytes
    name: str  #: "" for an unnamed actor
    namespace: str
    class_name: str
    detached: bool
    max_restarts: int
    get_if_exists: bool
    handle_blob: bytes  #: pickled handle metadata, for get_actor() in other processes


@message
class ActorRegistered(Message):
    type = MsgType.ACTOR_REGISTERED
    actor_id: bytes  #: with get_if_exists, the id of the actor that already had the name
    created: bool


@message
class ActorStarted(Message):
    """Actor's worker -> node: __init__ finished (``error`` is its pickled error, or None)."""

    type = MsgType.ACTOR_STARTED
    actor_id: bytes
    address: str
    error: Any


@message
class ActorCreationFailed(Message):
    """Owner -> node: the creation task cannot run (an argument failed, it cannot be sent,
    or a restart is impossible); ``error`` is the pickled error callers get."""

    type = MsgType.ACTOR_CREATION_FAILED
    actor_id: bytes
    error: bytes


@message
class GetActorInfo(Message):
    """Caller -> node: answer once the actor is ALIVE at an address other than
    ``stale_address`` (one that just failed), or DEAD."""

    type = MsgType.GET_ACTOR_INFO
    actor_id: bytes
    stale_address: str


@message
class ActorInfo(Message):
    type = MsgType.ACTOR_INFO
    actor_id: bytes
    state: int  #: ActorState
    address: str
    pid: int
    restarts: int  #: how many times the actor was restarted
    death_cause: str  #: why it is DEAD ("" otherwise)
    death_error: Any  #: the pickled error of a failed __init__, or None
    handle_blob: bytes
    restart_cause: str = ""  #: why its worker died the last time it restarted ("" if never)


@message
class GetNamedActor(Message):
    """Answered by ActorInfo, or ErrorReply("ValueError") when no live actor has the name."""

    type = MsgType.GET_NAMED_ACTOR
    name: str
    namespace: str


@message
class ListNamedActors(Message):
    type = MsgType.LIST_NAMED_ACTORS
    namespace: str
    all_namespaces: bool


@message
class NamedActors(Message):
    type = MsgType.NAMED_ACTORS
    actors: list  #: [[name, namespace], ...]


@message
class KillActor(Message):
    type = MsgType.KILL_ACTOR
    actor_id: bytes
    no_restart: bool


@message
class ActorOutOfScope(Message):
    """Owner -> node: every handle of the actor is gone; let it exit."""

    type = MsgType.ACTOR_OUT_OF_SCOPE
    actor_id: bytes


@message
class RestartActor(Message):
    """Node -> owner: the actor's worker died and it may restart: run its creation again."""

    type = MsgType.RESTART_ACTOR
    actor_id: bytes


@message
class KeepCreation(Message):
    """Owner -> node, at the creation of a detached actor: its creation task, pickled
    (opaque to the node), so that the actor can start or restart after its owner exits.
    A request (answered by Ok) so that it is kept before ``.remote()`` returns."""

    type = MsgType.KEEP_CREATION
    actor_id: bytes
    creation: bytes


@message
class AdoptActor(Message):
    """Node -> a worker of the node: the owner of a detached actor has exited; own the
    actor from now on and run its creation task (the one of KeepCreation)."""

    type = MsgType.ADOPT_ACTOR
    actor_id: bytes
    creation: bytes
    restart: bool  #: its worker died (a restart), rather than it never started


@message
class CreationReceived(Message):
    """Node -> the worker given to an actor whose owner has just exited: has the actor's
    creation task reached you? A request: Ok if it has (its ``__init__`` runs, or ran),
    an error if not (the node then stops the worker, and the actor is created anew)."""

    type = MsgType.CREATION_RECEIVED
    actor_id: bytes


@message
class DetachedActor(Message):
    """Home node -> head: a detached actor that may restart, and its creation task (opaque
    to both), kept by the head until the actor dies. Head -> its own node, when the
    actor's home node has died: be its home from now on and start it again."""

    type = MsgType.DETACHED_ACTOR
    actor_id: bytes
    name: str
    namespace: str
    class_name: str
    max_restarts: int
    handle_blob: bytes
    creation: bytes


@message
class ActorExiting(Message):
    """Actor's worker -> node: the actor exits on purpose (exit_actor, __ray_terminate__)."""

    type = MsgType.ACTOR_EXITING
    actor_id: bytes
    reason: str


@message
class ExitActor(Message):
    """Node -> actor's worker: end the actor gracefully (its handles are all gone): let
    running calls end, run ``__ray_shutdown__`` and the atexit handlers, exit (one-way)."""

    type = MsgType.EXIT_ACTOR
    actor_id: bytes
    reason: str  #: what later callers are told
