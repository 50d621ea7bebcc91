"""The node's view of its shared-memory objects: capacity and ownership (pure).

The node reserves room before a process writes a segment and forgets it when
the owner frees the object or exits. It raises ObjectStoreFullError when a
reservation cannot fit.
"""

from __future__ import annotations

from typing import NamedTuple

from ..exceptions import ObjectStoreFullError


class SegmentInfo(NamedTuple):
    segment: str
    size: int
    owner: str


class StoreAccounting:
    def __init__(self, capacity: int):
        self.capacity = capacity
        self.used = 0
        self._objects: dict[bytes, SegmentInfo] = {}

    def __len__(self) -> int:
        return len(self._objects)

    def reserve(self, object_id: bytes, segment: str, size: int, owner: str) -> SegmentInfo | None:
        """Make room for an object; returns the segment it replaces (a retried task's), if any."""
        replaced = self.free(object_id)
        if size > self.capacity - self.used:
            if replaced is not None:  # keep the old record: nothing changed
                self._objects[object_id] = replaced
                self.used += replaced.size
            raise ObjectStoreFullError(
                f"cannot store an object of {size:,} bytes: the object store has "
                f"{self.capacity - self.used:,} of {self.capacity:,} bytes free. Drop references "
                "to objects you no longer need, or start minray with a larger "
                "object_store_memory."
            )
        self._objects[object_id] = SegmentInfo(segment, size, owner)
        self.used += size
        return replaced

    def free(self, object_id: bytes) -> SegmentInfo | None:
        info = self._objects.pop(object_id, None)
        if info is not None:
            self.used -= info.size
        return info

    def owner_gone(self, owner: str) -> list[SegmentInfo]:
        gone = [oid for oid, info in self._objects.items() if info.owner == owner]
        return [self.free(oid) for oid in gone]

    def all_segments(self) -> list[SegmentInfo]:
        return list(self._objects.values())
