"""Every message minray sends between processes, in one place.

On the wire a message is the msgpack array ``[type, request_id, field1, ...]``
in field order; ``request_id`` is positive on a request, negated on its reply,
0 on a one-way notification. User data inside is opaque ``bytes`` (cloudpickle),
never decoded by the protocol layer. Shapes that recur in fields:

* ref list: ``[[object_id, owner_address], ...]`` — ObjectRefs carried inside a
  pickled value, so the receiver can count them (see runtime/refcount.py).
* return entry: ``[kind, payload, refs]`` with kind one of :class:`ValueKind`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import Any, ClassVar


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


class ValueKind(enum.IntEnum):
    INLINE = 0  #: payload is the pickled value (bytes)
    SHARED = 1  #: payload is [segment_name, size, node_id]
    ERROR = 2  #: payload is a pickled exception to raise at get()


class Message:
    """Base of all messages; subclasses are dataclasses with a ``type``."""

    type: ClassVar[MsgType]
    __slots__ = ()


MESSAGE_CLASSES: dict[int, type[Message]] = {}
FIELD_COUNTS: dict[int, int] = {}


def message(cls):
    cls = dataclass(slots=True)(cls)
    MESSAGE_CLASSES[cls.type] = cls
    FIELD_COUNTS[cls.type] = len(fields(cls))
    return cls


# --- client <-> node ------------------------------------------------------


@message
class RegisterClient(Message):
    """First message on a connection to the node: who is calling."""

    type = MsgType.REGISTER_CLIENT
    kind: str  #: "driver" or "worker"
    worker_id: bytes
    address: str  #: where this process listens for other CoreWorkers
    pid: int
    job_id: bytes


@message
class RegisterReply(Message):
    type = MsgType.REGISTER_REPLY
    node_id: bytes
    resources: dict  #: the node's total resources
    session_dir: str


@message
class RequestLease(Message):
    """Ask the node for a worker with these resources; answered by LeaseGranted, or by
    LeaseSpillback naming a node that has room (ask there, with ``spilled`` set)."""

    type = MsgType.REQUEST_LEASE
    request_id: int
    resources: dict
    task_name: str  #: for the infeasible-task warning
    actor_id: bytes  #: b"" for tasks; else the worker becomes this actor's, for good
    actor_resources: dict  #: what the actor holds while it lives (part of ``resources``)
    spilled: bool  #: sent on by another node: grant here or queue, never send on again
    strategy: Any  #: None (DEFAULT), "SPREAD", or ["affinity", node id hex, soft]


@message
class LeaseSpillback(Message):
    """Node -> owner: this node is full; ask the node at ``address`` instead."""

    type = MsgType.LEASE_SPILLBACK
    node_id: bytes
    address: str


@message
class LeaseGranted(Message):
    type = MsgType.LEASE_GRANTED
    lease_id: int
    worker_id: bytes
    worker_address: str
    gpu_ids: list


@message
class CancelLeaseRequest(Message):
    type = MsgType.CANCEL_LEASE_REQUEST
    request_id: int


@message
class ReturnLease(Message):
    type = MsgType.RETURN_LEASE
    lease_id: int
    worker_failed: bool  #: the owner saw the worker misbehave: do not reuse it


@message
class ResourcesInfeasible(Message):
    """Node -> owner: no node has the resources a lease request asks for."""

    type = MsgType.RESOURCES_INFEASIBLE
    request_id: int
    task_name: str
    resources: dict
    available: dict  #: the node's total resources, for the message


@message
class WorkerBlocked(Message):
    """Worker -> node: the task blocked in get/wait (give its CPU back) or resumed."""

    type = MsgType.WORKER_BLOCKED
    blocked: bool


@message
class CreateObject(Message):
    """Reserve room for a shared-memory object; answered by ObjectCreated."""

    type = MsgType.CREATE_OBJECT
    object_id: bytes
    size: int
    owner: str  #: address of the owner; its exit frees the segment


@message
class ObjectCreated(Message):
    type = MsgType.OBJECT_CREATED
    segment: str
    size: int  #: the segment's size, at least the object's
    reused: bool  #: the segment held a freed object before and is resident in memory


@message
class PinSegments(Message):
    """Reader -> node: these segments are about to be mapped; do not reuse them."""

    type = MsgType.PIN_SEGMENTS
    segments: list


@message
class UnpinSegments(Message):
    """Reader -> node: the last mapping of these segments is gone."""

    type = MsgType.UNPIN_SEGMENTS
    segments: list


@message
class SegmentsRemoved(Message):
    """Node -> clients: these segments were unlinked; drop any mapping kept for reuse."""

    type = MsgType.SEGMENTS_REMOVED
    segments: list


@message
class FreeObjects(Message):
    """Owner -> node: unlink these objects' segments."""

    type = MsgType.FREE_OBJECTS
    object_ids: list


@message
class GetClusterInfo(Message):
    type = MsgType.GET_CLUSTER_INFO


@message
class ClusterInfo(Message):
    type = MsgType.CLUSTER_INFO
    nodes: list  #: one dict per node (see node/daemon.py, node_info)


@message
class LogLines(Message):
    """Node -> driver: output lines of workers, ``[[pid, name, is_stderr, text], ...]``."""

    type = MsgType.LOG_LINES
    lines: list


@message
class ExitIfIdle(Message):
    """Node -> idle worker: may you exit? (not while you own objects others use)"""

    type = MsgType.EXIT_IF_IDLE


@message
class ExitReply(Message):
    type = MsgType.EXIT_REPLY
    accepted: bool


@message
class ShutdownNode(Message):
    type = MsgType.SHUTDOWN_NODE


@message
class ErrorReply(Message):
    """Generic failure reply: ``error`` names an exception class in minray.exceptions."""

    type = MsgType.ERROR_REPLY
    error: str
    message: str


@message
class Ok(Message):
    type = MsgType.OK


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
class ActorExiting(Message):
    """Actor's worker -> node: the actor exits on purpose (exit_actor, __ray_terminate__)."""

    type = MsgType.ACTOR_EXITING
    actor_id: bytes
    reason: str


# --- CoreWorker <-> CoreWorker ------------------------------------------------


@message
class PushTask(Message):
    """Owner -> leased worker: run this task; answered by TaskReply."""

    type = MsgType.PUSH_TASK
    task_id: bytes
    job_id: bytes
    name: str
    function_id: bytes
    function_blob: Any  #: the pickled function the first time this connection uses it, else None
    args_blob: bytes  #: pickled (args, kwargs); top-level refs replaced by placeholders
    resolved_args: list  #: [[placeholder_index, kind, payload], ...] values of those refs
    arg_refs: list  #: ref list of the refs nested inside args_blob
    num_returns: int
    caller: str  #: address of the owner (where the worker reports released refs)
    gpu_ids: list
    env_vars: Any  #: dict of environment variables for this task, or None
    actor: Any  #: None for tasks; for an actor's creation, a dict (see actor_executor.py)


@message
class TaskReply(Message):
    type = MsgType.TASK_REPLY
    task_id: bytes
    returns: list  #: one return entry per return value
    app_error: bool  #: the task raised (entries hold the error)


@message
class PushActorTask(Message):
    """Caller -> actor's worker: run this method; answered by TaskReply."""

    type = MsgType.PUSH_ACTOR_TASK
    task_id: bytes
    actor_id: bytes
    method: str
    name: str  #: "Class.method", for errors and logs
    args_blob: bytes
    resolved_args: list
    arg_refs: list
    num_returns: int
    caller: str


@message
class CancelTask(Message):
    """Owner -> worker running the task: interrupt it (``force``: exit the worker)."""

    type = MsgType.CANCEL_TASK
    task_id: bytes
    force: bool


@message
class GetObject(Message):
    """Reader -> owner: the value of an object, once it is ready."""

    type = MsgType.GET_OBJECT
    object_id: bytes
    reader: str  #: address of the reader, which becomes a borrower of nested refs


@message
class ObjectReply(Message):
    type = MsgType.OBJECT_REPLY
    kind: int
    payload: Any
    refs: list


@message
class ReleaseGrants(Message):
    """Borrower -> grantor: drop these counts of borrowed refs, ``[[object_id, n], ...]``."""

    type = MsgType.RELEASE_GRANTS
    sender: str
    items: list


# --- node <-> head (TCP) ------------------------------------------------------


@message
class RegisterNode(Message):
    """Node -> head, first message on its connection: join the cluster."""

    type = MsgType.REGISTER_NODE
    node_id: bytes
    address: str  #: where the node listens ("unix:/path" on its machine)
    resources: dict  #: the node's total resources
    info: dict  #: how it describes itself in nodes() (NodeManagerAddress, hostname, ...)
    version: str  #: minray version; another one is refused
    python: str  #: "3.11"; another minor version is refused (pickles do not cross)


@message
class NodeRegistered(Message):
    type = MsgType.NODE_REGISTERED
    head_node_id: bytes
    nodes: list  #: the cluster view now, as in ClusterInfo


@message
class NodeHeartbeat(Message):
    """Node -> head, every heartbeat interval (one-way): still alive."""

    type = MsgType.NODE_HEARTBEAT
    node_id: bytes
    available: Any  #: free resources if they changed since the last heartbeat, else None
    pending: Any  #: queued demands (node_info's PendingDemands) if they changed, else None


@message
class UnregisterNode(Message):
    """Node -> head: this node is stopping; mark it dead now."""

    type = MsgType.UNREGISTER_NODE
    node_id: bytes
    reason: str


@message
class ClusterView(Message):
    """Head -> every member node (one-way), whenever the view changed."""

    type = MsgType.CLUSTER_VIEW
    version: int
    nodes: list  #: the nodes that changed since the last push, one dict each (as ClusterInfo)


# --- placement groups (driver/worker -> node) ---------------------------------------


@message
class CreatePlacementGroup(Message):
    """Reserve bundles; answered at once by PlacementGroups([the group]), maybe PENDING."""

    type = MsgType.CREATE_PLACEMENT_GROUP
    group_id: bytes
    name: str  #: "" for an unnamed group; else unique in the namespace
    namespace: str
    bundles: list  #: [{resource: amount}, ...]
    strategy: str  #: PACK, SPREAD, STRICT_PACK or STRICT_SPREAD
    detached: bool  #: outlives its creator


@message
class RemovePlacementGroup(Message):
    """Give a group's resources back; its tasks and actors are stopped (one-way)."""

    type = MsgType.REMOVE_PLACEMENT_GROUP
    group_id: bytes


@message
class GetPlacementGroups(Message):
    """Look groups up by id, or by name in a namespace, or all (both empty)."""

    type = MsgType.GET_PLACEMENT_GROUPS
    group_id: bytes
    name: str
    namespace: str


@message
class WaitPlacementGroup(Message):
    """Answered by PlacementGroups([the group]) once placed or removed, or at the timeout."""

    type = MsgType.WAIT_PLACEMENT_GROUP
    group_id: bytes
    timeout_s: float


@message
class PlacementGroups(Message):
    type = MsgType.PLACEMENT_GROUPS
    groups: list  #: one dict per group (see node/placement_groups.py)
