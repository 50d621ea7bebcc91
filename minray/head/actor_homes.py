"""Where every actor's record lives, and the cluster's actor names (pure).

An actor's record (its state, address, restarts) is kept by the node of the
process that created it, its *home* (node/actor_directory.py), which also
starts and restarts it. The head keeps what must be cluster-wide:

* each actor's home, so a node asked about an actor it does not know (a handle
  passed to a task on another node) knows which node to ask;
* the names: unique per namespace among live actors across the cluster, so
  ``get_actor(name)`` finds the actor from any node.

A name is free again when its actor dies or its home node dies. The homes of
dead actors are remembered up to a bound (the oldest forgotten first), so a late
caller still learns the actor is dead from its home.

A detached actor that may restart outlives its home node, as it outlives its
creator: its home gives the head what another node needs to take it in (its
record and pickled creation task, opaque here), and when that home dies the
actor moves to a new home, keeping its name (node/actor_keepers.py).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from ..exceptions import ActorAlreadyExistsError

#: homes of dead actors kept for late lookups
DEAD_HOMES_KEPT = 10_000


class ActorHomes:
    def __init__(self, dead_kept: int = DEAD_HOMES_KEPT) -> None:
        self._homes: dict[bytes, bytes] = {}  #: live actor id -> its home node id
        self._dead: OrderedDict[bytes, bytes] = OrderedDict()  #: dead actor id -> home
        self._names: dict[tuple[str, str], bytes] = {}  #: (namespace, name) -> actor id
        self._name_of: dict[bytes, tuple[str, str]] = {}
        self._kept: dict[bytes, Any] = {}  #: detached actor id -> what a new home needs
        self._dead_kept = dead_kept

    def claim(
        self, actor_id: bytes, node_id: bytes, name: str, namespace: str, get_if_exists: bool
    ) -> bytes:
        """Record a new actor at home ``node_id``. Returns ``actor_id``, or with
        ``get_if_exists`` the live actor that holds the name already; raises
        ActorAlreadyExistsError if the name is taken."""
        if name:
            holder = self._names.get((namespace, name))
            if holder is not None:
                if get_if_exists:
                    return holder
                raise ActorAlreadyExistsError(
                    f"The name {name} (namespace={namespace}) is already taken. Please use a "
                    "different name or get the existing actor using "
                    f"minray.get_actor('{name}', namespace='{namespace}')"
                )
            self._names[(namespace, name)] = actor_id
            self._name_of[actor_id] = (namespace, name)
        self._homes[actor_id] = node_id
        return actor_id

    def keep(self, actor_id: bytes, kept: Any) -> None:
        """Keep what a new home needs to take a live detached actor in (``kept``)."""
        if actor_id in self._homes:
            self._kept[actor_id] = kept

    def gone(self, actor_id: bytes) -> None:
        """The actor died: its name is free; its home is kept for late lookups."""
        self._kept.pop(actor_id, None)
        node_id = self._homes.pop(actor_id, None)
        key = self._name_of.pop(actor_id, None)
        if key is not None and self._names.get(key) == actor_id:
            del self._names[key]
        if node_id is not None:
            self._dead[actor_id] = node_id
            while len(self._dead) > self._dead_kept:
                self._dead.popitem(last=False)

    def move_kept(self, node_id: bytes, new_home: bytes) -> list[Any]:
        """Node ``node_id`` died: its kept detached actors move to ``new_home``, names and
        all; returns what was kept of them, for the new home."""
        moved = [
            kept
            for actor_id, kept in self._kept.items()
            if self._homes.get(actor_id) == node_id != new_home
        ]
        for kept in moved:
            self._homes[kept.actor_id] = new_home
        return moved

    def homed_at(self, node_id: bytes) -> list[bytes]:
        """The live actors at home on ``node_id``."""
        return [a for a, home in self._homes.items() if home == node_id]

    def saved(self, actor_id: bytes) -> tuple[bytes, str, str, Any] | None:
        """``(home, namespace, name, kept)`` of a live actor (for the head's saved
        tables; name "" if unnamed, kept None unless detached), or None if not live."""
        home = self._homes.get(actor_id)
        if home is None:
            return None
        namespace, name = self._name_of.get(actor_id, ("", ""))
        return home, namespace, name, self._kept.get(actor_id)

    def node_died(self, node_id: bytes) -> list[bytes]:
        """A node died, and the actors at home there with it; returns their ids."""
        lost = self.homed_at(node_id)
        for actor_id in lost:
            self.gone(actor_id)
        return lost

    def home(self, actor_id: bytes) -> bytes | None:
        """The home node of an actor, live or remembered dead; None if unknown."""
        return self._homes.get(actor_id) or self._dead.get(actor_id)

    def named(self, name: str, namespace: str) -> tuple[bytes, bytes] | None:
        """``(actor id, home node id)`` of the live actor with this name, or None."""
        actor_id = self._names.get((namespace, name))
        return None if actor_id is None else (actor_id, self._homes[actor_id])

    def list_named(self, namespace: str | None) -> list[list[str]]:
        """[[name, namespace], ...] of live named actors (of one namespace, or all)."""
        return sorted([name, ns] for ns, name in self._names if namespace in (None, ns))
