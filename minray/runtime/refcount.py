"""Distributed reference counting: who still needs an object (pure; no I/O).

Every process keeps one :class:`ReferenceCounter`. For each object id it counts

* ``local``: live ``ObjectRef`` instances in this process;
* ``submitted``: pending tasks this process submitted that take the object as an argument;
* ``holds``: things in this process that contain the ref without an ``ObjectRef``
  yet (a stored value with nested refs, the arguments of a running task, a reply
  being read);
* ``borrowers``: grants this process gave to other processes it sent the ref to.

and, for refs it does not own, the ``grants`` it received (per sender). When the
total reaches zero, an owned object is freed and a borrowed one is released back
to each process that granted it. Grants form a tree rooted at the owner, so no
process ever has to ask a third one before sending a ref on: it just keeps its
own grant while it has borrowers.

Methods return *actions* for the I/O layer: ``Free(object_id)`` and
``Release(grantor, object_id, count)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple


class Free(NamedTuple):
    object_id: bytes


class Release(NamedTuple):
    grantor: str
    object_id: bytes
    count: int


#: an entry's borrowers and grants until it has one (read-only: a write makes a dict)
NONE_YET: Mapping = MappingProxyType({})


class _Entry:
    """The counts of one object (a plain class: one is made per object, on the hot path)."""

    __slots__ = ("owner", "local", "submitted", "holds", "borrowers", "grants", "contains")

    def __init__(self, owner: str):
        self.owner = owner
        self.local = 0
        self.submitted = 0
        self.holds = 0
        #: the shared empty mapping until the first one (most objects never have any)
        self.borrowers: Mapping[str, int] = NONE_YET
        self.grants: Mapping[str, int] = NONE_YET
        self.contains: tuple = ()

    def in_use(self) -> bool:
        return bool(self.local or self.submitted or self.holds or self.borrowers)


class ReferenceCounter:
    """Counts references to objects for the process at ``address``."""

    def __init__(self, address: str):
        self.address = address
        self._entries: dict[bytes, _Entry] = {}

    def __contains__(self, object_id: bytes) -> bool:
        return object_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self):
        """The object ids counted now (a copy: safe to change the counts meanwhile)."""
        return iter(list(self._entries))

    def owner_of(self, object_id: bytes) -> str | None:
        entry = self._entries.get(object_id)
        return entry.owner if entry else None

    def counts(self, object_id: bytes) -> dict:
        """The counts of one object, for tests and introspection."""
        e = self._entries[object_id]
        return {
            "local": e.local,
            "submitted": e.submitted,
            "holds": e.holds,
            "borrowers": dict(e.borrowers),
            "grants": dict(e.grants),
        }

    def _entry(self, object_id: bytes, owner: str) -> _Entry:
        entry = self._entries.get(object_id)
        if entry is None:
            entry = self._entries[object_id] = _Entry(owner)
        return entry

    # --- changes ---------------------------------------------------------------------

    def add_owned(self, object_id: bytes) -> None:
        """Register an object this process owns (a put, or a task it submitted)."""
        self._entry(object_id, self.address)

    def set_contains(self, object_id: bytes, refs: list) -> None:
        """The stored value of ``object_id`` holds these ``(id, owner)`` refs."""
        entry = self._entries.get(object_id)
        if entry is None or not (refs or entry.contains):
            return  # (most values: no refs, before or now)
        entry.contains = tuple(ref_id for ref_id, _ in refs)
        for ref_id, owner in refs:
            self._entry(ref_id, owner).holds += 1

    def clear_contains(self, object_id: bytes) -> list:
        """The stored value of ``object_id`` is gone (lost with its node): the refs it
        held lose their hold. (A value stored again calls ``set_contains`` anew.)"""
        entry = self._entries.get(object_id)
        if entry is None:
            return []
        inner, entry.contains = entry.contains, ()
        actions: list = []
        for ref_id in inner:
            actions += self.remove_hold(ref_id)
        return actions

    def add_local(self, object_id: bytes, owner: str) -> None:
        self._entry(object_id, owner).local += 1

    def remove_local(self, object_id: bytes) -> list:
        entry = self._entries.get(object_id)
        if entry is None:
            return []
        entry.local -= 1
        return self._collect(object_id, entry)

    def add_submitted(self, refs: list) -> None:
        for object_id, owner in refs:
            self._entry(object_id, owner).submitted += 1

    def remove_submitted(self, object_ids: list) -> list:
        actions = []
        for object_id in object_ids:
            entry = self._entries.get(object_id)
            if entry is not None:
                entry.submitted -= 1
                actions += self._collect(object_id, entry)
        return actions

    def add_hold(self, object_id: bytes, owner: str) -> None:
        self._entry(object_id, owner).holds += 1

    def remove_hold(self, object_id: bytes) -> list:
        entry = self._entries.get(object_id)
        if entry is None:
            return []
        entry.holds -= 1
        return self._collect(object_id, entry)

    def record_grant(self, object_id: bytes, owner: str, grantor: str) -> list:
        """A process sent us this ref and counts us as its borrower.

        If we already hold the ref through an earlier grant, the new one is handed
        back at once (a ``Release`` action): keeping it could make two processes
        hold each other's grants forever.
        """
        entry = self._entries.get(object_id)
        if owner == self.address or grantor == self.address:
            self._entry(object_id, owner)
            return []  # our own object came back to us: nothing to give back
        if entry is not None and entry.grants:
            return [Release(grantor, object_id, 1)]
        entry = self._entry(object_id, owner)
        if entry.grants is NONE_YET:
            entry.grants = {}
        entry.grants[grantor] = entry.grants.get(grantor, 0) + 1
        return []

    def add_borrower(self, object_id: bytes, borrower: str) -> None:
        """We are sending this ref to ``borrower``; keep it alive until it releases."""
        entry = self._entries.get(object_id)
        if entry is None or borrower == self.address or borrower == entry.owner:
            return  # the owner never borrows its own object
        if entry.borrowers is NONE_YET:
            entry.borrowers = {}
        entry.borrowers[borrower] = entry.borrowers.get(borrower, 0) + 1

    def remove_borrower(self, object_id: bytes, borrower: str, count: int) -> list:
        entry = self._entries.get(object_id)
        if entry is None or borrower not in entry.borrowers:
            return []
        left = entry.borrowers[borrower] - count
        if left > 0:
            entry.borrowers[borrower] = left
        else:
            del entry.borrowers[borrower]
        return self._collect(object_id, entry)

    def peer_died(self, address: str) -> list:
        """Forget every grant we gave to a process that has exited."""
        actions = []
        for object_id, entry in list(self._entries.items()):
            if address in entry.borrowers:
                del entry.borrowers[address]
                actions += self._collect(object_id, entry)
        return actions

    # --- collection ------------------------------------------------------------------

    def _collect(self, object_id: bytes, entry: _Entry) -> list:
        if entry.in_use():
            return []
        del self._entries[object_id]
        actions: list = []
        if entry.owner == self.address:
            actions.append(Free(object_id))
        for grantor, count in entry.grants.items():
            actions.append(Release(grantor, object_id, count))
        for inner in entry.contains:
            actions += self.remove_hold(inner)
        return actions
