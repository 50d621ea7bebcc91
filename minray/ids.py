"""Identifiers: jobs, tasks, objects, nodes, workers.

Internally ids are plain ``bytes`` (fast to hash and to put in msgpack frames);
the small classes here are what users see. An object id is its creating task's
id plus a 4-byte return index, so an object always names the task that made it
(lineage). Index 0 is used for objects made by ``put``.
"""

from __future__ import annotations

import itertools
import os

JOB_ID_SIZE = 4
TASK_ID_SIZE = 24
OBJECT_ID_SIZE = 28
UNIQUE_ID_SIZE = 28

_process_prefix = os.urandom(12)
_counter = itertools.count(1)


def reseed_after_fork() -> None:
    """Give a forked process its own id prefix so ids never collide."""
    global _process_prefix, _counter
    _process_prefix = os.urandom(12)
    _counter = itertools.count(1)


def new_task_id(job_id: bytes) -> bytes:
    return _process_prefix + next(_counter).to_bytes(8, "little") + job_id


ACTOR_ID_SIZE = 16


def new_actor_id() -> bytes:
    return os.urandom(ACTOR_ID_SIZE)


def actor_creation_task_id(actor_id: bytes, job_id: bytes) -> bytes:
    return actor_id + bytes(TASK_ID_SIZE - ACTOR_ID_SIZE - JOB_ID_SIZE) + job_id


def new_actor_task_id(actor_id: bytes) -> bytes:
    """A call's task id ends with its actor's id, as in Ray."""
    return _process_prefix[:4] + (next(_counter) & 0xFFFFFFFF).to_bytes(4, "little") + actor_id


def object_id_for(task_id: bytes, index: int) -> bytes:
    return task_id + index.to_bytes(4, "little")


def object_index(object_id: bytes) -> int:
    """The return index in an object id (0: made by ``put``)."""
    return int.from_bytes(object_id[TASK_ID_SIZE:], "little")


def random_unique_id() -> bytes:
    return os.urandom(UNIQUE_ID_SIZE)


class BaseID:
    """A typed, hashable wrapper around an id's bytes."""

    __slots__ = ("_bytes",)
    size = UNIQUE_ID_SIZE

    def __init__(self, id_bytes: bytes):
        if not isinstance(id_bytes, bytes) or len(id_bytes) != self.size:
            raise ValueError(f"{type(self).__name__} needs {self.size} bytes, got {id_bytes!r}")
        self._bytes = id_bytes

    def binary(self) -> bytes:
        return self._bytes

    def hex(self) -> str:
        return self._bytes.hex()

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._bytes == self._bytes  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._bytes)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.hex()})"


class JobID(BaseID):
    __slots__ = ()
    size = JOB_ID_SIZE


class TaskID(BaseID):
    __slots__ = ()
    size = TASK_ID_SIZE


class PlacementGroupID(BaseID):
    __slots__ = ()
    size = 18  #: as in Ray (36 hex digits)
