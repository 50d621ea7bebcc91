"""The node's view of its shared-memory segments: capacity, pins and reuse (pure).

The node reserves room before a process writes an object and hears when the
owner frees it. A freed segment is not unlinked at once: writing a fresh
segment costs a page fault per 4 KiB page, so freed segments wait in a pool
(up to ``pool_limit`` bytes) and a later object of about the same size reuses
one, already resident in memory.

A segment may be reused only when no process maps it any more: readers *pin*
a segment before they map it and unpin it when the last array backed by it is
gone (a zero-copy array can outlive its ObjectRef). A freed but pinned segment
waits in ``released`` until its pins drop to zero.

``used`` counts every byte held in shared memory (live objects, released and
pooled segments); the pool is emptied first when a reservation needs room, and
``reserve`` raises ObjectStoreFullError when that is not enough. The node then
spills objects to disk: ``victims`` names the least recently used unpinned ones
(spill_policy.py), and ``evict`` drops one from shared memory once it is in a
file. Its segment is unlinked, never pooled: a reader whose pin is still on the
way may have mapped it, and unlinking leaves that mapping intact. ``ahead``
names those to spill before the store is full (Ray's object_spilling_threshold).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import NamedTuple

from ..exceptions import ObjectStoreFullError
from .spill_policy import Candidate, choose_ahead, choose_victims

#: a pooled segment is reused for an object of at least this fraction of its size
REUSE_MIN_FILL = 0.8


class SegmentInfo(NamedTuple):
    segment: str
    size: int
    owner: str


class Reservation(NamedTuple):
    segment: str
    size: int  #: the segment's size; at least the object's
    reused: bool  #: the segment held an earlier object and is resident already


class StoreAccounting:
    def __init__(
        self, capacity: int, pool_limit: int = 0, exists: Callable[[str], bool] | None = None
    ):
        self.capacity = capacity
        self.pool_limit = pool_limit
        #: whether a segment's file is still there (the node's check before reusing one;
        #: a pooled segment whose file vanished is dropped, never handed out)
        self._exists = exists
        self.vanished = 0  #: pooled segments found gone
        self.used = 0
        self._objects: dict[bytes, SegmentInfo] = {}
        self._pins: Counter[str] = Counter()
        self._released: dict[str, int] = {}  # freed, still mapped by a reader
        self._pool: dict[str, int] = {}  # freed, unmapped: reusable, oldest first
        self._pool_bytes = 0
        self._last_use: dict[str, int] = {}  # live segment -> tick of its last pin
        self._ticks = 0
        self._spilling: set[bytes] = set()  # objects on their way to disk

    def __len__(self) -> int:
        return len(self._objects)

    @property
    def live_bytes(self) -> int:
        return sum(info.size for info in self._objects.values())

    @property
    def pooled_bytes(self) -> int:
        return self._pool_bytes

    # --- objects ---------------------------------------------------------------------

    def reserve(
        self, object_id: bytes, new_segment: str, size: int, owner: str
    ) -> tuple[Reservation, list[str]]:
        """Find room for an object; returns the reservation and segments to unlink.

        An earlier record of the same object (a retried task's) is freed first.
        Raises ObjectStoreFullError, changing nothing, if even an empty pool
        would leave too little room.
        """
        earlier = self._objects.get(object_id)
        reclaimable = self._pool_bytes
        if earlier is not None and self._pins[earlier.segment] == 0:
            reclaimable += earlier.size
        if size > self.capacity - self.used + reclaimable:
            raise ObjectStoreFullError(
                f"cannot store an object of {size:,} bytes: the object store has "
                f"{self.capacity - self.used + reclaimable:,} of {self.capacity:,} bytes free. "
                "Drop references to objects you no longer need, or start minray with a larger "
                "object_store_memory."
            )
        unlink = self.free(object_id)
        taken = self._take_from_pool(size)
        if taken is not None and taken[1] > self.capacity - self.used + self._pool_bytes:
            unlink += self._to_pool(*taken)  # too big to fit now: use a new segment instead
            taken = None
        segment, seg_size = taken if taken is not None else (self._unused_name(new_segment), size)
        while seg_size > self.capacity - self.used:
            unlink.append(self._evict_oldest())
        self._objects[object_id] = SegmentInfo(segment, seg_size, owner)
        self.used += seg_size
        self._ticks += 1
        self._last_use[segment] = self._ticks
        return Reservation(segment, seg_size, taken is not None), unlink

    def _unused_name(self, name: str) -> str:
        """``name``, or ``name_N`` if the store still knows a segment of that name: an
        object made again (a retry, a rebuild) has the same id, and so the same name, as
        one whose segment may still be pooled, released or live for another object."""
        fresh, n = name, 0
        while (
            fresh in self._last_use or fresh in self._pool or fresh in self._released
            or fresh in self._pins
        ):  # fmt: skip
            n += 1
            fresh = f"{name}_{n}"
        return fresh

    def free(self, object_id: bytes) -> list[str]:
        """The owner freed the object; returns segments to unlink now."""
        info = self._objects.pop(object_id, None)
        if info is None:
            return []
        self.used -= info.size
        self._last_use.pop(info.segment, None)
        self._spilling.discard(object_id)
        if self._pins[info.segment] > 0:
            self._released[info.segment] = info.size
            self.used += info.size
            return []
        return self._to_pool(info.segment, info.size)

    def segment_of(self, object_id: bytes) -> str | None:
        """The segment that holds a live object, or None."""
        info = self._objects.get(object_id)
        return info.segment if info is not None else None

    def adopt(self, object_id: bytes, owner: str) -> None:
        """A copy becomes the object itself (the node it came from died): ``owner`` owns it."""
        info = self._objects.get(object_id)
        if info is not None:
            self._objects[object_id] = info._replace(owner=owner)

    def owner_gone(self, owner: str) -> list[str]:
        gone = [oid for oid, info in self._objects.items() if info.owner == owner]
        unlink: list[str] = []
        for object_id in gone:
            unlink += self.free(object_id)
        return unlink

    # --- pins ------------------------------------------------------------------------

    def pin(self, segment: str) -> None:
        self._pins[segment] += 1
        if segment in self._last_use:
            self._ticks += 1
            self._last_use[segment] = self._ticks

    def unpin(self, segment: str) -> list[str]:
        """A reader unmapped the segment; returns segments to unlink now."""
        left = self._pins[segment] - 1
        if left > 0:
            self._pins[segment] = left
            return []
        del self._pins[segment]
        size = self._released.pop(segment, None)
        if size is None:
            return []
        self.used -= size
        return self._to_pool(segment, size)

    def all_segments(self) -> list[str]:
        names = [info.segment for info in self._objects.values()]
        return names + list(self._released) + list(self._pool)

    # --- spilling to disk ----------------------------------------------------------------

    @property
    def free_bytes(self) -> int:
        """Room a reservation can have now, counting the pool (which it may empty)."""
        return self.capacity - self.used + self._pool_bytes

    def info(self, object_id: bytes) -> SegmentInfo | None:
        return self._objects.get(object_id)

    def victims(self, needed: int) -> list[tuple[bytes, SegmentInfo]] | None:
        """Live objects to spill for ``needed`` more bytes, least recently used first;
        None if spilling every unpinned object would not be enough."""
        chosen = choose_victims(self._candidates(), needed)
        if chosen is None:
            return None
        return [(c.object_id, self._objects[c.object_id]) for c in chosen]

    def ahead(self, threshold: float, min_spilling_size: int) -> list[tuple[bytes, SegmentInfo]]:
        """Live objects to spill now so live bytes fall to ``threshold`` of the store
        (spill_policy.choose_ahead); ``[]`` when nothing should go."""
        if self.used - self._pool_bytes <= threshold * self.capacity:  # (the usual answer)
            return []
        objects = self._objects
        in_flight = sum(objects[oid].size for oid in self._spilling if oid in objects)
        chosen = choose_ahead(
            self._candidates(), self.live_bytes, self.capacity, threshold,
            min_spilling_size, in_flight,
        )  # fmt: skip
        return [(c.object_id, objects[c.object_id]) for c in chosen]

    def _candidates(self) -> list[Candidate]:
        pins, spilling = self._pins, self._spilling
        return [
            Candidate(oid, info.size, self._last_use.get(info.segment, 0),
                      pins[info.segment] > 0 or oid in spilling)
            for oid, info in self._objects.items()
        ]  # fmt: skip

    def start_spill(self, object_id: bytes) -> None:
        self._spilling.add(object_id)

    def end_spill(self, object_id: bytes, evict: bool) -> str | None:
        """The spill of ``object_id`` ended (``evict``: its file is written): drop it from
        shared memory and return its segment to unlink, or None if it is gone already
        or a reader pinned it meanwhile (it stays; its file is kept)."""
        self._spilling.discard(object_id)
        info = self._objects.get(object_id)
        if not evict or info is None or self._pins[info.segment] > 0:
            return None
        del self._objects[object_id]
        self._last_use.pop(info.segment, None)
        self.used -= info.size
        return info.segment

    def usage(self) -> str:
        """What holds the store, in words (for ObjectStoreFullError)."""
        pinned = [i.size for i in self._objects.values() if self._pins[i.segment] > 0]
        released = sum(self._released.values())
        return (
            f"{len(self._objects)} live objects hold {self.live_bytes:,} bytes, of which "
            f"{len(pinned)} ({sum(pinned):,} bytes) are pinned: mapped by readers (numpy "
            "arrays from get() keep their object mapped) or being written; "
            f"{len(self._released)} freed objects ({released:,} bytes) are still mapped by "
            f"readers (arrays outlive their refs); {self._pool_bytes:,} bytes are freed "
            "segments kept for reuse"
        )

    # --- pool --------------------------------------------------------------------------

    def _to_pool(self, segment: str, size: int) -> list[str]:
        if size > self.pool_limit:
            return [segment]
        self._pool[segment] = size
        self._pool_bytes += size
        self.used += size
        unlink = []
        while self._pool_bytes > self.pool_limit:
            unlink.append(self._evict_oldest())
        return unlink

    def _evict_oldest(self) -> str:
        segment = next(iter(self._pool))
        size = self._pool.pop(segment)
        self._pool_bytes -= size
        self.used -= size
        return segment

    def _take_from_pool(self, size: int) -> tuple[str, int] | None:
        best = None
        for segment, seg_size in self._pool.items():
            if size <= seg_size and size >= seg_size * REUSE_MIN_FILL:
                if best is None or seg_size < best[1]:
                    best = (segment, seg_size)
        if best is not None:
            del self._pool[best[0]]
            self._pool_bytes -= best[1]
            self.used -= best[1]
            if self._exists is not None and not self._exists(best[0]):
                self.vanished += 1
                return self._take_from_pool(size)
        return best
