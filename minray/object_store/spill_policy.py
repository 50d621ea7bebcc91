"""Which objects leave shared memory for disk, and the table of those on disk (pure).

When a reservation does not fit, the node spills objects to files until it
does. ``choose_victims`` picks them: least recently used first (a pin, that is
a reader mapping the object, counts as a use), never one that is pinned (a
reader maps it, or its writer has not finished), and only as many as the
reservation needs. If even every unpinned object would not make room it picks
none, so a reservation that must fail fails without writing anything.

The node also spills ahead of a full store (Ray's ``object_spilling_threshold``):
once live objects hold more than ``threshold`` of the store, ``choose_ahead``
picks, by the same rule, just enough to bring them back to it (what is already
on its way to disk counts as gone). A batch smaller than ``min_spilling_size``
waits while another spill is under way: that one may be enough, and small
objects then go out together (Ray's rule).

``SpillTable`` remembers each spilled object's file. A restored object keeps
its file until the object is freed, so spilling it again costs no write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple


class Candidate(NamedTuple):
    object_id: bytes
    size: int
    last_use: int  #: larger is more recent
    pinned: bool  #: mapped by a reader, being written, or already on its way to disk


def choose_victims(candidates: Iterable[Candidate], needed: int) -> list[Candidate] | None:
    """The least recently used unpinned candidates whose sizes add up to at least
    ``needed`` bytes: ``[]`` if nothing is needed, None if they cannot add up to it."""
    if needed <= 0:
        return []
    chosen, total = _oldest_unpinned(candidates, needed)
    return chosen if total >= needed else None


def _oldest_unpinned(candidates: Iterable[Candidate], needed: int) -> tuple[list, int]:
    """The least recently used unpinned candidates, oldest first, until their sizes add
    up to ``needed`` (or all of them if they never do), and the bytes they hold."""
    chosen: list[Candidate] = []
    total = 0
    for candidate in sorted((c for c in candidates if not c.pinned), key=lambda c: c.last_use):
        chosen.append(candidate)
        total += candidate.size
        if total >= needed:
            break
    return chosen, total


def choose_ahead(
    candidates: Iterable[Candidate],
    live: int,
    capacity: int,
    threshold: float,
    min_spilling_size: int = 0,
    in_flight: int = 0,
) -> list[Candidate]:
    """Objects to spill before the store is full: the least recently used unpinned ones
    that bring ``live`` bytes (less ``in_flight``, being spilled) down to ``threshold``
    of ``capacity``, as many as there are if not enough; ``[]`` when below it, or when
    the batch is under ``min_spilling_size`` and a spill is ``in_flight``."""
    excess = live - in_flight - int(threshold * capacity)
    if threshold >= 1.0 or excess <= 0:
        return []
    chosen, total = _oldest_unpinned(candidates, excess)
    if in_flight > 0 and total < min_spilling_size:
        return []
    return chosen


class SpilledObject(NamedTuple):
    path: str
    size: int
    owner: str  #: address of the owner (its exit frees the object)
    segment: str  #: the segment's name when it was spilled (readers may know only that)


class SpillTable:
    """Objects of this node that have a spill file: spilled, or restored and kept."""

    def __init__(self) -> None:
        self._files: dict[bytes, SpilledObject] = {}
        self.spilled_bytes_total = 0  #: written to disk since the node started
        self.restored_bytes_total = 0  #: read back since the node started

    def __contains__(self, object_id: bytes) -> bool:
        return object_id in self._files

    def __len__(self) -> int:
        return len(self._files)

    def get(self, object_id: bytes) -> SpilledObject | None:
        return self._files.get(object_id)

    def add(self, object_id: bytes, record: SpilledObject) -> None:
        self._files[object_id] = record
        self.spilled_bytes_total += record.size

    def pop(self, object_id: bytes) -> str | None:
        """The object is freed: the path of its file to remove, or None."""
        record = self._files.pop(object_id, None)
        return record.path if record is not None else None

    def owner_gone(self, owner: str) -> list[str]:
        """The owner exited: paths of its objects' files to remove."""
        gone = [oid for oid, record in self._files.items() if record.owner == owner]
        return [self._files.pop(oid).path for oid in gone]

    def paths(self) -> list[str]:
        return [record.path for record in self._files.values()]

    def on_disk(self, in_memory: Callable[[bytes], bool]) -> tuple[int, int]:
        """(objects, bytes) only on disk: those with a file and not ``in_memory``."""
        sizes = [r.size for oid, r in self._files.items() if not in_memory(oid)]
        return len(sizes), sum(sizes)
