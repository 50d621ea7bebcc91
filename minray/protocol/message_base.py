"""The base of every message: type codes, the Message class and the registry.

The messages themselves are in messages.py (between processes of one node and
between CoreWorkers) and cluster_messages.py (between nodes and the head);
import them from ``messages``, which has them all.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import ClassVar


class MsgType(enum.IntEnum):
    REGISTER_CLIENT = 1
    REGISTER_REPLY = 2
    REQUEST_LEASE = 3
    LEASE_GRANTED = 4
    CANCEL_LEASE_REQUEST = 5
    RETURN_LEASE = 6
    RESOURCES_INFEASIBLE = 7
    WORKER_BLOCKED = 8
    CREATE_OBJECT = 9
    OBJECT_CREATED = 10
    FREE_OBJECTS = 11
    GET_CLUSTER_INFO = 12
    CLUSTER_INFO = 13
    LOG_LINES = 14
    ERROR_REPLY = 16
    OK = 17
    PUSH_TASK = 18
    TASK_REPLY = 19
    GET_OBJECT = 20
    OBJECT_REPLY = 21
    RELEASE_GRANTS = 22
    SHUTDOWN_NODE = 23
    PIN_SEGMENTS = 24
    UNPIN_SEGMENTS = 25
    SEGMENTS_REMOVED = 26
    EXIT_IF_IDLE = 27
    EXIT_REPLY = 28
    REGISTER_ACTOR = 29
    ACTOR_REGISTERED = 30
    ACTOR_STARTED = 31
    GET_ACTOR_INFO = 32
    ACTOR_INFO = 33
    GET_NAMED_ACTOR = 34
    LIST_NAMED_ACTORS = 35
    NAMED_ACTORS = 36
    KILL_ACTOR = 37
    ACTOR_OUT_OF_SCOPE = 38
    RESTART_ACTOR = 39
    ACTOR_EXITING = 40
    PUSH_ACTOR_TASK = 41
    CANCEL_TASK = 42
    ACTOR_CREATION_FAILED = 43
    REGISTER_NODE = 44
    NODE_REGISTERED = 45
    NODE_HEARTBEAT = 46
    UNREGISTER_NODE = 47
    CLUSTER_VIEW = 48
    CREATE_PLACEMENT_GROUP = 49
    REMOVE_PLACEMENT_GROUP = 50
    GET_PLACEMENT_GROUPS = 51
    PLACEMENT_GROUPS = 52
    WAIT_PLACEMENT_GROUP = 53
    LEASE_SPILLBACK = 54
    PULL_OBJECT = 55
    OBJECT_PULLED = 56
    SEND_OBJECT = 57
    CLAIM_ACTOR = 58
    ACTOR_CLAIMED = 59
    ACTOR_GONE = 60
    WHERE_IS_ACTOR = 61
    ACTOR_HOME = 62
    ACTOR_UPDATE = 63
    KILL_ACTOR_WORKER = 64
    KV_REQUEST = 65
    KV_REPLY = 66
    NODE_DIED = 67
    PREPARE_BUNDLES = 68
    COMMIT_BUNDLES = 69
    RETURN_BUNDLES = 70
    ADD_JOB = 71
    JOB_ADDED = 72
    JOB_FINISHED = 73
    GET_JOBS = 74
    JOBS = 75
    GET_STATES = 76
    STATES = 77
    TASK_EVENTS = 78
    GET_TASKS = 79
    TASKS = 80
    EXIT_ACTOR = 81
    GET_LOG = 82
    LOG_CHUNK = 83
    CANCEL_OWNED_TASK = 84
    REPORT_OBJECT_LOST = 85
    FIND_COPIES = 86
    COPIES_FOUND = 87
    GET_OBJECT_ROWS = 88
    OBJECT_ROWS = 89
    KEEP_CREATION = 92
    ADOPT_ACTOR = 93
    DETACHED_ACTOR = 94
    OOM_KILLED = 95
    UPLOAD_PACKAGE = 96
    GET_PACKAGE = 97
    PACKAGE = 98
    CREATION_RECEIVED = 99
    GENERATOR_ITEM = 90
    GENERATOR_ACK = 91
    RESTORE_OBJECT = 100
    OBJECT_RESTORED = 101
    FLUSH_WRITTEN = 102
    LEASE_PENDING = 103
    KILL_WORKER = 110
    PROCESS_KILLED = 111
    KILL_NODE = 112
    GET_STACKS = 120
    STACKS = 121
    PROFILE_PROCESS = 122
    PROFILE = 123
    HEAD_STOPPING = 135


class ValueKind(enum.IntEnum):
    INLINE = 0  #: payload is the pickled value (bytes)
    SHARED = 1  #: payload is [segment_name, size, node_id, object_id]
    ERROR = 2  #: payload is a pickled exception to raise at get()


class Message:
    """Base of all messages; subclasses are dataclasses with a ``type``.

    ``repr`` and ``==`` are defined once, here, from the fields (``__slots__``, in
    order): the dataclass's own, generated per class, took half the import time of
    the hundred-odd messages, paid by every process at start."""

    type: ClassVar[MsgType]
    __slots__ = ()

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__qualname__}({shown})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)


MESSAGE_CLASSES: dict[int, type[Message]] = {}
FIELD_COUNTS: dict[int, int] = {}


def message(cls):
    cls = dataclass(slots=True, repr=False, eq=False)(cls)  # (Message's repr and ==)
    MESSAGE_CLASSES[cls.type] = cls
    FIELD_COUNTS[cls.type] = len(fields(cls))
    return cls
