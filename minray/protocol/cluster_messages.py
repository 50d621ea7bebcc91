"""Messages between nodes and the head, and for placement groups (see messages.py)."""

from __future__ import annotations

from typing import Any

from .message_base import Message, MsgType, message

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
    #: on a re-join after losing the head: the live actors this node is home to, as
    #: [[actor_id, namespace, name], ...] (None on the first join)
    actors: Any = None
    #: on a re-join: the placement-group bundles held here, as [[group_id, bundle index,
    #: {resource: amount}, committed, {resource: amount in use}], ...] (prepared only:
    #: committed false); the head reconciles them with its groups (None on the first join)
    bundles: Any = None


@message
class HeadStopping(Message):
    """Head -> every member, when the head is stopped on purpose (one-way): it is not
    coming back, so the member stops instead of waiting to reconnect."""

    type = MsgType.HEAD_STOPPING
    reason: str


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
    total: Any = None  #: total resources if they changed (bundles come and go), else None


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


# --- placement groups (driver/worker -> node -> head; see head/placement_service.py) ----


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
    groups: list  #: one dict per group (see head/placement_service.py)


@message
class PrepareBundles(Message):
    """Head -> node: take the resources of these bundles of a group, all or nothing, and
    hold them (answered Ok, or ErrorReply when they are not free)."""

    type = MsgType.PREPARE_BUNDLES
    group_id: bytes
    bundles: list  #: [[bundle index, {resource: amount}], ...]


@message
class CommitBundles(Message):
    """Head -> node: every node of the group prepared; add the prepared bundles' resources
    (``CPU_group_<i>_<id>``...) that the group's tasks and actors lease (one-way)."""

    type = MsgType.COMMIT_BUNDLES
    group_id: bytes


@message
class ReturnBundles(Message):
    """Head -> node: give back every bundle of the group held here, stopping the tasks and
    actors in them (one-way)."""

    type = MsgType.RETURN_BUNDLES
    group_id: bytes
    cause: str  #: why, as the stopped actors' death cause says


# --- objects between nodes ---------------------------------------------------------------


@message
class PullObject(Message):
    """CoreWorker -> its node: make a local copy of a shared object held by another node
    (answered by ObjectPulled once the copy is complete)."""

    type = MsgType.PULL_OBJECT
    object_id: bytes
    segment: str  #: the segment's name at the node that holds it
    size: int
    node_id: bytes  #: the node that holds it


@message
class ObjectPulled(Message):
    type = MsgType.OBJECT_PULLED
    segment: str  #: the local copy's name
    size: int


@message
class SendObject(Message):
    """Node -> node, on a connection of its own: send the bytes of a segment. The answer,
    Ok, is followed by exactly ``size`` raw bytes, then the connection closes."""

    type = MsgType.SEND_OBJECT
    object_id: bytes
    segment: str
    size: int
    to_node: bytes  #: the node that receives the copy (it is freed there with the object)


# --- actors across the cluster (node -> head; see head/actor_homes.py) -------------------


@message
class ClaimActor(Message):
    """A new actor at home on ``node_id``; answered by ActorClaimed, or an ErrorReply
    (ActorAlreadyExistsError) when its name is taken."""

    type = MsgType.CLAIM_ACTOR
    actor_id: bytes
    node_id: bytes
    name: str
    namespace: str
    get_if_exists: bool


@message
class ActorClaimed(Message):
    type = MsgType.ACTOR_CLAIMED
    actor_id: bytes  #: the new actor, or the live one that holds the name (get_if_exists)


@message
class ActorGone(Message):
    """The actor died: its name is free (one-way)."""

    type = MsgType.ACTOR_GONE
    actor_id: bytes


@message
class WhereIsActor(Message):
    """Which node keeps an actor's record: by id, or (id empty) by name in a namespace.
    Answered by ActorHome, or ErrorReply(ValueError) if no such actor is known."""

    type = MsgType.WHERE_IS_ACTOR
    actor_id: bytes
    name: str
    namespace: str


@message
class ActorHome(Message):
    type = MsgType.ACTOR_HOME
    actor_id: bytes
    node_id: bytes
    node_alive: bool


@message
class ActorUpdate(Message):
    """Host node -> home node: what happened to an actor hosted away from its home.
    ``event``: "placed" (a worker here was given to it, leased by the owner at
    ``address``; a request, answered Ok or an error if that is no longer its owner;
    the lease is granted only on Ok), "started", "failed" (its __init__ raised:
    ``error``), "lost" (its worker died: ``cause``), "unplaced" (its owner exited
    before its creation task reached the worker, which was stopped) or "exiting" (it
    called exit_actor). All but "placed" are one-way."""

    type = MsgType.ACTOR_UPDATE
    actor_id: bytes
    node_id: bytes  #: the host
    event: str
    address: str
    pid: int
    cause: str
    error: Any  #: the pickled error of a failed __init__, or None


@message
class KillActorWorker(Message):
    """Home node -> host node: stop the worker of this actor (one-way; a request when
    ``kill`` waits for it). ``graceful``: let it run its exit hooks first (ExitActor)."""

    type = MsgType.KILL_ACTOR_WORKER
    actor_id: bytes
    graceful: bool = False
    reason: str = ""  #: for a graceful stop: what later callers are told


# --- the internal KV (driver/worker -> node -> head; see head/kv.py) ----------------------


@message
class KvRequest(Message):
    """One operation on the head's internal KV; answered by KvReply. ``op``: "put"
    (``flag``: overwrite), "get", "exists", "del" (``flag``: by prefix) or "keys"
    (``key`` is the prefix)."""

    type = MsgType.KV_REQUEST
    op: str
    namespace: bytes
    key: bytes
    value: Any  #: bytes for "put", else None
    flag: bool


@message
class KvReply(Message):
    type = MsgType.KV_REPLY
    result: Any  #: put: existed already; get: bytes or None; exists: bool; del: count; keys


@message
class NodeDied(Message):
    """Node -> its clients: the head declared this node dead; drop what waits on it
    (one-way). A hung node's connections stay open, so nothing else would tell."""

    type = MsgType.NODE_DIED
    node_id: bytes
    #: starts of the addresses of its processes (its session directory's sockets, and
    #: its TCP address when no live node shares it): connections there are closed
    prefixes: list


# --- the job table (node -> head; see head/job_table.py) ---------------------------------


@message
class AddJob(Message):
    """A driver registered with ``node_id``: give it a job id (answered by JobAdded)."""

    type = MsgType.ADD_JOB
    node_id: bytes
    info: dict  #: pid, address, namespace, entrypoint


@message
class JobAdded(Message):
    type = MsgType.JOB_ADDED
    job_id: bytes


@message
class JobFinished(Message):
    """The job's driver disconnected (one-way)."""

    type = MsgType.JOB_FINISHED
    job_id: bytes


@message
class GetJobs(Message):
    """Every job the head knows, running and finished; answered by Jobs."""

    type = MsgType.GET_JOBS


@message
class Jobs(Message):
    type = MsgType.JOBS
    jobs: list  #: one dict per job (see JobRecord.describe)


# --- the state API (driver or tool -> node -> head -> every node) ------------------------


@message
class GetStates(Message):
    """Rows of one kind of state ("actors", "workers", or "departed": workers and drivers
    that exited) from every live node; the head
    asks each node (with ``node_only``, a node answers for itself). Answered by States."""

    type = MsgType.GET_STATES
    kind: str
    node_only: bool


@message
class States(Message):
    type = MsgType.STATES
    rows: list  #: one dict per actor or worker (see node/state_rows.py)
    missing: list  #: ids (hex) of live nodes that did not answer in time


# --- task events (any process -> its node -> head; see runtime/task_events.py) ----------


@message
class TaskEvents(Message):
    """State changes of tasks, batched (one-way)."""

    type = MsgType.TASK_EVENTS
    events: list  #: [[task_id, attempt, state, time, info], ...]
    dropped: int  #: events the sender could not keep since its last batch
    source: Any  #: where the sender runs (node, worker, pid): the place of its RUNNING events


@message
class GetTasks(Message):
    """The head's task table (one task's attempts when ``task_id`` is given); Tasks."""

    type = MsgType.GET_TASKS
    task_id: bytes
    #: without ``task_id``: only the oldest ``limit`` attempts (0: every one), so that
    #: ``minray list tasks`` is not sent the whole table for the 100 rows it shows
    limit: int = 0
    #: count each task's latest attempt by function, kind and state instead of sending
    #: the rows (rows: ``{"func_or_class_name", "type", "state", "count"}``), for
    #: ``minray summary tasks``
    by_function: bool = False


@message
class Tasks(Message):
    type = MsgType.TASKS
    rows: list  #: one dict per task attempt (see head/task_table.py)
    dropped: int  #: events lost on the way or tasks evicted from the table, in all
    total: int = -1  #: attempts the table holds, when a limit left some out (else -1)


# --- worker logs (driver or tool -> node -> head -> the worker's node) -----------------


@message
class GetLog(Message):
    """Bytes of a worker's log file from ``offset`` (at most ``max_bytes``): LogChunk.
    Sent to any node; the head passes it to ``node_id``."""

    type = MsgType.GET_LOG
    node_id: bytes
    worker_id: bytes
    stream: str  #: "out" or "err"
    offset: int  #: negative: that many bytes from the end
    max_bytes: int


@message
class LogChunk(Message):
    type = MsgType.LOG_CHUNK
    data: bytes
    offset: int  #: where the next read starts
    size: int  #: the file's size now


# --- fault injection (`minray chaos`: the CLI -> head -> the node that runs the process) -


@message
class KillWorker(Message):
    """Kill (SIGKILL) this node's worker ``pid``, which must run a task or host an actor,
    as a crash would; sent to the head, which passes it to ``node_id``. ProcessKilled."""

    type = MsgType.KILL_WORKER
    node_id: bytes
    pid: int


@message
class KillNode(Message):
    """Crash node ``node_id`` (not the head): it kills its workers, unlinks its segments
    and exits without leaving the cluster. Sent to the head, which passes it on;
    answered by ProcessKilled before the node goes."""

    type = MsgType.KILL_NODE
    node_id: bytes


@message
class ProcessKilled(Message):
    type = MsgType.PROCESS_KILLED
    pid: int
    node_ip: str
    node_id: bytes
    what: str  #: "task NAME", "actor CLASS (name NAME)", "node with N workers"
