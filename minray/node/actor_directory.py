"""The actor directory: every actor's state, address and name (pure; the node wires it up).

An actor is registered when ``Cls.remote()`` is called (so a taken name fails
at once), becomes ALIVE when its worker has run ``__init__``, and ends DEAD:
killed, out of scope, its owner gone, ``__init__`` raised, or its worker died
with no restarts left. A worker that dies while restarts are left makes the
actor RESTARTING until its owner has run the creation task again. Names are
unique per namespace among actors that are not DEAD.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from ..exceptions import ActorAlreadyExistsError
from ..protocol.messages import ActorState


@dataclass(eq=False)
class ActorRecord:
    actor_id: bytes
    owner: Hashable  #: the owner's connection (non-detached actors die with it)
    name: str
    namespace: str
    class_name: str
    detached: bool
    max_restarts: int
    handle_blob: bytes
    state: ActorState = ActorState.PENDING
    address: str = ""
    pid: int = 0
    restarts: int = 0
    death_cause: str = ""
    restart_cause: str = ""  #: why its worker died the last time it restarted
    death_error: Any = None
    worker: Any = None  #: the node's record of the worker hosting the actor
    alloc: Any = None  #: the resources the actor holds while it lives
    ip: str = "127.0.0.1"  #: the address of the node that hosts it
    host: bytes = b""  #: the node hosting it, when not this one (node/actor_hosting.py)
    #: a detached actor's pickled creation task, for when its owner has exited (opaque here;
    #: node/actor_keepers.py)
    creation: bytes = b""

    def describe(self) -> str:
        """The lines Ray prints about a dead actor."""
        return (
            f"\tclass_name: {self.class_name}\n\tactor_id: {self.actor_id.hex()}\n"
            f"\tpid: {self.pid}\n\tname: {self.name or '(none)'}\n"
            f"\tnamespace: {self.namespace}\n\tip: {self.ip}"
        )


class ActorDirectory:
    def __init__(
        self, ip: str = "127.0.0.1", on_death: Callable[[bytes], None] | None = None
    ) -> None:
        self.actors: dict[bytes, ActorRecord] = {}
        self._names: dict[tuple[str, str], bytes] = {}
        self.ip = ip  #: this node's address, for describe()
        self._on_death = on_death  #: called with the id of each actor that dies

    def register(
        self,
        actor_id: bytes,
        owner: Hashable,
        *,
        name: str,
        namespace: str,
        class_name: str,
        detached: bool,
        max_restarts: int,
        handle_blob: bytes,
        get_if_exists: bool = False,
    ) -> tuple[ActorRecord, bool]:
        """Add an actor; returns (record, created). A live actor may already hold the name."""
        if name:
            existing = self.named(name, namespace)
            if existing is not None:
                if get_if_exists:
                    return existing, False
                raise ActorAlreadyExistsError(
                    f"The name {name} (namespace={namespace}) is already taken. Please use a "
                    "different name or get the existing actor using "
                    f"minray.get_actor('{name}', namespace='{namespace}')"
                )
        record = ActorRecord(
            actor_id,
            owner,
            name,
            namespace,
            class_name,
            detached,
            max_restarts,
            handle_blob,
            ip=self.ip,
        )
        self.actors[actor_id] = record
        if name:
            self._names[(namespace, name)] = actor_id
        return record, True

    def get(self, actor_id: bytes) -> ActorRecord | None:
        return self.actors.get(actor_id)

    def named(self, name: str, namespace: str) -> ActorRecord | None:
        actor_id = self._names.get((namespace, name))
        record = self.actors.get(actor_id) if actor_id is not None else None
        return record if record is not None and record.state != ActorState.DEAD else None

    def list_named(self, namespace: str | None) -> list[list[str]]:
        """[[name, namespace], ...] of live named actors (of one namespace, or all)."""
        return sorted(
            [name, ns]
            for (ns, name), actor_id in self._names.items()
            if namespace is None or ns == namespace
        )

    def started(self, actor_id: bytes, address: str, pid: int) -> ActorRecord | None:
        """__init__ succeeded; returns the record unless the actor died meanwhile."""
        record = self.actors.get(actor_id)
        if record is None or record.state == ActorState.DEAD:
            return None
        record.state, record.address, record.pid = ActorState.ALIVE, address, pid
        return record

    def worker_lost(self, actor_id: bytes, cause: str, owner_alive: bool) -> ActorState:
        """The actor's worker is gone: RESTARTING if restarts are left, else DEAD."""
        record = self.actors[actor_id]
        if record.state == ActorState.DEAD:
            return record.state
        restarts_left = record.max_restarts == -1 or record.restarts < record.max_restarts
        record.worker = record.alloc = None
        record.address = ""
        if restarts_left and owner_alive:
            record.state = ActorState.RESTARTING
            record.restarts += 1
            record.restart_cause = cause
        else:
            if restarts_left:  # only the owner can run the creation task again
                cause += "\nIt could not restart: the process that created it has exited."
            self.died(actor_id, cause)
        return record.state

    def died(self, actor_id: bytes, cause: str, error: Any = None) -> ActorRecord | None:
        """Mark the actor DEAD for good (first cause wins); returns it if it was not dead."""
        record = self.actors.get(actor_id)
        if record is None or record.state == ActorState.DEAD:
            return None
        record.state = ActorState.DEAD
        record.death_cause = cause
        record.death_error = error
        record.handle_blob = record.creation = b""  # only live actors are looked up by name
        if record.name and self._names.get((record.namespace, record.name)) == actor_id:
            del self._names[(record.namespace, record.name)]
        if self._on_death is not None:
            self._on_death(actor_id)
        return record

    def owned_by(self, owner: Hashable) -> list[ActorRecord]:
        """Actors that die with this owner: not detached, not dead yet."""
        return [
            r
            for r in self.actors.values()
            if r.owner is owner and not r.detached and r.state != ActorState.DEAD
        ]

    def kept_by(self, owner: Hashable) -> list[ActorRecord]:
        """Detached actors of this owner whose creation task the node keeps, not dead."""
        return [
            r
            for r in self.actors.values()
            if r.owner is owner and r.creation and r.state != ActorState.DEAD
        ]

    def holding(self, names: set[str]) -> list[ActorRecord]:
        """Live actors that hold any of these resources (a placement group's)."""
        return [
            r
            for r in self.actors.values()
            if r.state != ActorState.DEAD and r.alloc is not None and names & set(r.alloc.resources)
        ]
