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

from typing import Any

from .actor_messages import *  # noqa: F403 - every message is importable from here
from .cluster_messages import *  # noqa: F403
from .message_base import (  # noqa: F401 - re-exported
    FIELD_COUNTS,
    MESSAGE_CLASSES,
    Message,
    MsgType,
    ValueKind,
    message,
)
from .package_messages import *  # noqa: F403
from .profile_messages import *  # noqa: F403

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
    #: a driver registering with its own node: its namespace and entrypoint, for a new job
    #: in the head's job table; None otherwise (a driver's links to other nodes too)
    info: Any = None


@message
class RegisterReply(Message):
    type = MsgType.REGISTER_REPLY
    node_id: bytes
    resources: dict  #: the node's total resources
    session_dir: str
    job_id: bytes = b""  #: a driver's new job id (the head's job table); else empty


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
    #: None, or {node id hex: bytes} of the task's shared-memory arguments on other nodes
    #: (DEFAULT prefers the node that holds the most, when it has room)
    locality: Any
    home: bytes  #: an actor's: the node that keeps its record (b"" for tasks)
    #: its tasks may run again if killed (max_retries != 0; an actor's: max_restarts != 0):
    #: the memory monitor kills the worker of such a lease first
    retriable: bool = True


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
class OomKilled(Message):
    """Node -> a lease's owner: the memory monitor is about to kill the lease's worker
    (answered by Ok, then it kills): its task fails with OutOfMemoryError(``message``)
    or runs again."""

    type = MsgType.OOM_KILLED
    lease_id: int
    message: str


@message
class ResourcesInfeasible(Message):
    """Node -> owner: no node has the resources a lease request asks for."""

    type = MsgType.RESOURCES_INFEASIBLE
    request_id: int
    task_name: str
    resources: dict
    available: dict  #: the node's total resources, for the message


@message
class LeasePending(Message):
    """Node -> owner: why a lease request still waits there, sent when the reason changes
    (not per task: the owner attaches it to the tasks waiting on that request). The node
    decides it (node/pending_reasons.py); ``reason`` starts with its kind: "Infeasible",
    "Resources busy", "Waiting for a worker process", "Waiting for placement group"."""

    type = MsgType.LEASE_PENDING
    request_id: int
    reason: str  #: one line, said plainly (what it waits for, and who holds it)


@message
class WorkerBlocked(Message):
    """Worker -> node: the task blocked in get/wait (give its CPU back) or resumed."""

    type = MsgType.WORKER_BLOCKED
    blocked: bool


@message
class CreateObject(Message):
    """Reserve room for a shared-memory object (spilling others to disk if the store is
    full); answered by ObjectCreated. The segment stays pinned for the writer until a
    later CreateObject lists it in ``written`` (or FlushWritten asks): the node never
    spills an object half written, and a put costs no extra message."""

    type = MsgType.CREATE_OBJECT
    object_id: bytes
    size: int
    owner: str  #: address of the owner; its exit frees the segment
    written: Any = ()  #: segments this writer reserved earlier and has written since


@message
class ObjectCreated(Message):
    type = MsgType.OBJECT_CREATED
    segment: str
    size: int  #: the segment's size, at least the object's
    reused: bool  #: the segment held a freed object before and is resident in memory


@message
class RestoreObject(Message):
    """Reader -> node: the object's segment is gone (spilled to disk): bring it back into
    shared memory (answered by ObjectRestored, with the segment pinned for the reader)."""

    type = MsgType.RESTORE_OBJECT
    object_id: bytes
    segment: str  #: the name the reader knows it by


@message
class ObjectRestored(Message):
    type = MsgType.OBJECT_RESTORED
    segment: str  #: where it is now (pinned once for the asking connection: unpin it)
    size: int


@message
class FlushWritten(Message):
    """Node -> a writer, when the store is full: which segments you reserved have you
    written? Answered by UnpinSegments (possibly empty): those are unpinned."""

    type = MsgType.FLUSH_WRITTEN


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
    namespace: str  #: the submitting job's (where get_actor in the task looks)
    #: the placement group the task runs in, [group id, bundles, capture_child_tasks], or None
    placement: Any
    attempt: int = 0  #: which run of the task this is (0, then 1, ... on retries)
    #: None; for a generator task, [backpressure (-1: none), items the owner has already]
    generator: Any = None
    #: its runtime_env packages (runtime_env/setup.py), or None
    runtime_env: Any = None


@message
class TaskReply(Message):
    type = MsgType.TASK_REPLY
    task_id: bytes
    returns: list  #: one return entry per return value
    #: the task raised (entries hold the error); 2: an argument's copy was lost (see
    #: runtime/lost_objects.py: the owner recovers it and sends the task again);
    #: TASK_NOT_STARTED: it waited behind another task too long and never ran (no entries)
    app_error: int


#: TaskReply.app_error of a task a worker held behind another and handed back
#: unstarted (runtime/held_tasks.py); its owner pushes it again, no retry spent
TASK_NOT_STARTED = 3


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
    concurrency_group: str  #: the group the call asked for; "": its method's (or the default)
    generator: Any = None  #: as PushTask's: None, or [backpressure, items already there]


@message
class GeneratorItem(Message):
    """Worker -> owner, on the connection of the PushTask: one value a generator task
    yielded (item ``index``, from 0), before the task's TaskReply. A request answered by
    GeneratorAck when the task has back-pressure, else one-way."""

    type = MsgType.GENERATOR_ITEM
    task_id: bytes
    index: int
    kind: int  #: a ValueKind (INLINE or SHARED)
    payload: Any
    refs: list  #: ref list of the refs nested in the value


@message
class GeneratorAck(Message):
    """Owner -> worker: how many items the caller has taken so far (-1: the caller dropped
    the generator; stop waiting for it). Held back while too many are left untaken."""

    type = MsgType.GENERATOR_ACK
    consumed: int


@message
class CancelOwnedTask(Message):
    """Borrower -> owner: cancel the task that makes this ref, as ``cancel(ref)`` at the
    owner would (one-way)."""

    type = MsgType.CANCEL_OWNED_TASK
    task_id: bytes
    force: bool
    recursive: bool  #: also what the task submitted, and theirs in turn (Ray's default)


@message
class CancelTask(Message):
    """Owner -> worker running the task: interrupt it (``force``: exit the worker);
    ``recursive``: first cancel the tasks and actor calls it submitted from there."""

    type = MsgType.CANCEL_TASK
    task_id: bytes
    force: bool
    recursive: bool


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


@message
class ReportObjectLost(Message):
    """Reader -> owner (request, answered with Ok): the object's shared-memory copy on
    ``node_id`` could not be read (that node died, or the segment is gone). The owner
    runs its task again to rebuild it, or stores the error; the reader then asks for
    the value again (GetObject), which waits for the rebuilt one."""

    type = MsgType.REPORT_OBJECT_LOST
    object_id: bytes
    node_id: bytes


@message
class FindCopies(Message):
    """Owner -> a node (request, answered with CopiesFound): these objects' copies on
    ``node_id`` are lost; a copy pulled from there to this node becomes the object itself,
    owned by ``owner``."""

    type = MsgType.FIND_COPIES
    object_ids: list
    node_id: bytes
    owner: str


@message
class CopiesFound(Message):
    type = MsgType.COPIES_FOUND
    copies: list  #: [[object_id, segment, size], ...] of the copies this node adopted


@message
class GetObjectRows(Message):
    """Node -> each of its processes (request): the objects it references, for
    ``list_objects`` (see runtime/object_rows.py)."""

    type = MsgType.GET_OBJECT_ROWS


@message
class ObjectRows(Message):
    type = MsgType.OBJECT_ROWS
    rows: list  #: dicts in the state API's ObjectState shape
