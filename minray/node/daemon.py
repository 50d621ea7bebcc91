"""The node process: one per machine; grants worker leases and guards shared memory.

It owns the worker pool (workers forked from a zygote), the lease scheduler
(runtime/scheduler.py), the accounting of shared-memory segments
(object_store/accounting.py) and the forwarding of worker output to drivers.
It never runs user code and never unpickles anything.

Lifecycle: ``minray.init()`` starts it with ``python -m minray.node.main``
(*embedded*); it exits when that driver calls ``shutdown()`` or dies, after
stopping its workers and unlinking every segment it knows.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import os
import shutil
import signal
import time
from dataclasses import dataclass, field

from .. import _loop, ids
from ..config import CONFIG
from ..debugger.registry import forget_worker
from ..head.placement import is_bundle_resource
from ..head.query import HeadUnreachable
from ..head.service import HeadService
from ..object_store import shm
from ..object_store.accounting import StoreAccounting
from ..protocol.connection import Connection, serve
from ..protocol.messages import (
    ActorState,
    ErrorReply,
    ExitIfIdle,
    JobFinished,
    LeaseGranted,
    LeaseSpillback,
    LogLines,
    Ok,
    RegisterClient,
    RegisterReply,
    RequestLease,
    ResourcesInfeasible,
)
from ..runtime.scheduler import Allocation, LeaseScheduler
from .actor_directory import ActorDirectory, ActorRecord
from .actor_forwarding import ActorForwarding
from .actor_handlers import ActorHandlers
from .actor_hosting import ActorHosting
from .actor_keepers import ActorKeepers
from .cluster_address import forget_current_cluster
from .fault_injection import FaultInjection
from .head_client import HeadClient
from .lease_limits import lease_refusal
from .log_monitor import LogMonitor
from .membership import Membership
from .memory_monitor import MemoryMonitor
from .node_peers import NodePeers
from .node_settings import NodeSettings
from .object_handlers import ObjectHandlers
from .object_transfer import ObjectTransfers
from .pending_notices import PendingNotices
from .placement_groups import HeldBundles, PlacementGroupHandlers
from .processes import alive as _alive
from .processes import stop_workers
from .spill_ahead import SpillAhead
from .spillback import SpillTally, Unschedulable, spill_target
from .spilling import Spilling
from .state_rows import StateRows
from .worker_pool import ZygoteClient

logger = logging.getLogger("minray.node")


@dataclass(eq=False)
class WorkerRecord:
    worker_id: bytes
    pid: int | None = None
    address: str | None = None
    conn: Connection | None = None
    lease: LeaseRecord | None = None
    idle_since: float = 0.0
    actor: ActorRecord | None = None  #: the actor this worker hosts, for good
    busy_since: float = 0.0  #: when it was given to its lease or actor (the memory monitor's)


@dataclass(eq=False)
class LeaseRecord:
    lease_id: int
    alloc: Allocation
    owner: Connection
    reply: asyncio.Future
    worker: WorkerRecord | None = None
    blocked: int = 0
    actor_id: bytes = b""  #: the lease starts this actor's worker
    actor_resources: dict = field(default_factory=dict)
    home: bytes = b""  #: the node that keeps the actor's record
    retriable: bool = True  #: its tasks may run again (the memory monitor kills these first)
    task_name: str = ""
    request_id: int = 0  #: the owner's id of the request it answers


class NodeDaemon(
    ActorHandlers,
    ActorKeepers,
    ActorForwarding,
    ActorHosting,
    ObjectHandlers,
    ObjectTransfers,
    Spilling,
    SpillAhead,
    PlacementGroupHandlers,
    PendingNotices,
    Membership,
    MemoryMonitor,
    StateRows,
    FaultInjection,
):
    def __init__(self, settings: NodeSettings, token: bytes, zygote: ZygoteClient):
        self.settings = settings
        self.token = token
        self.zygote = zygote
        self.scheduler = LeaseScheduler(settings.resources)
        self.store = StoreAccounting(
            settings.object_store_memory,
            int(settings.object_store_memory * CONFIG.segment_pool_fraction),
            exists=shm.exists,
        )
        self.logs = LogMonitor()
        self.session_tag = os.path.basename(settings.session_dir)[-6:]
        self.workers: dict[bytes, WorkerRecord] = {}
        self.idle: list[WorkerRecord] = []
        self.leases: dict[int, LeaseRecord] = {}
        self.waiting: collections.deque[LeaseRecord] = collections.deque()
        self.drivers: set[Connection] = set()
        self.clients: set[Connection] = set()
        self.starting = 0
        self._requests: dict[tuple, tuple[asyncio.Future, RequestLease]] = {}
        self.actors = ActorDirectory(settings.node_ip, on_death=self._actor_gone)
        self.peers = NodePeers(self)  #: connections to other nodes
        self._init_hosting()
        self.held_bundles: dict[bytes, HeldBundles] = {}  #: placement group bundles held here
        self._actor_waiters: dict[bytes, list[tuple[str, asyncio.Future]]] = {}
        self._adoptions: list[tuple[bytes, bool]] = []  #: detached actors waiting for a worker
        self._recreate: set[bytes] = set()  #: actors whose worker never got their creation
        self._lease_ids = itertools.count(1)
        self._stopped = asyncio.Event()
        self._stopping = False
        self._server = None
        #: head services (head or embedded node) or the link to the head (member node)
        self.head: HeadService | None = None
        self.head_client: HeadClient | None = None
        self._head_server = None
        self._dashboard = None  #: the dashboard's aiohttp runner, when it is served here
        self._spills = SpillTally(2 * CONFIG.heartbeat_interval_s)  #: sent on, not yet seen
        self._spread: dict = {}  #: the node a SPREAD request went to last
        self._tcp_server = None
        self.tcp_port = 0  #: of the TCP listener (0: none, as in an embedded node)
        self._init_transfers()
        self._init_spilling()
        self._init_spill_ahead()
        self._oom_causes: dict[int, str] = {}  #: memory monitor: killed worker's pid -> why
        self._init_state_rows()
        self._init_pending_notices()

    @property
    def num_cpus(self) -> int:
        return max(1, int(self.settings.resources.get("CPU", 1)))

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self, ready_fd: int | None) -> None:
        await self.zygote.start()
        self._server = await serve(
            self.settings.address,
            self,
            self.token,
            CONFIG.max_frame_bytes,
            on_connect=self._accepted,
        )
        if self.settings.head or self.settings.head_address:  # a cluster: reachable by TCP
            self._tcp_server = await serve(
                f"tcp:{self.settings.node_ip}:0",  # any free port: nodes learn it from the view
                self,
                self.token,
                CONFIG.max_frame_bytes,
                on_connect=self._accepted,
            )
            self.tcp_port = self._tcp_server.sockets[0].getsockname()[1]
        try:
            await self._start_membership()
        except HeadUnreachable as e:  # said plainly in the log, which the launcher shows
            logger.error("this node could not join the cluster: %s", e)
            await stop_workers(self.zygote.pid, set())
            raise SystemExit(1) from None
        for _ in range(self.num_cpus):
            self._start_worker()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, lambda: loop.create_task(self.shutdown()))
        loop.create_task(self._poll_logs())
        loop.create_task(self._housekeeping())
        self._start_memory_monitor()
        if ready_fd is not None:
            os.write(ready_fd, b"READY\n")
            os.close(ready_fd)
        await self._stopped.wait()

    async def shutdown(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._close_spill_ahead()
        for server in (self._server, self._tcp_server):
            if server is not None:
                server.close()
        self._close_transfers()
        self.peers.close_all()
        if self.head_client is not None:
            await self.head_client.leave("the node was stopped")
        if self.head is not None:
            self.head.close()
        if self._dashboard is not None:
            await self._dashboard.cleanup()
        if self._head_server is not None:
            self._head_server.close()
            forget_current_cluster(self.settings.session_dir)
        self.zygote.close()
        await stop_workers(self.zygote.pid, {w.pid for w in self.workers.values() if w.pid})
        self._flush_logs()
        for segment in self.store.all_segments():
            shm.unlink(segment)
        self._close_spilling()
        if self.settings.parent_pid:
            shutil.rmtree(self.settings.session_dir, ignore_errors=True)
        self._stopped.set()

    async def _housekeeping(self) -> None:
        while not self._stopping:
            await asyncio.sleep(0.5)
            if self.settings.parent_pid and not _alive(self.settings.parent_pid):
                logger.warning(
                    "the process that started this node (pid %d) is gone; shutting down",
                    self.settings.parent_pid,
                )
                await self.shutdown()
                return
            self._trim_idle_workers()
            self._forget_workers_that_died_starting()
            self.spill_ahead_soon()  # objects written or unpinned since may spill now
            if self._requests and self._has_peers():
                self._respill_queued()

    def _respill_queued(self) -> None:
        """Send queued requests on to a node that now has room (or joined with what they
        need): the view changes as nodes join and work ends."""
        nodes, me, info = self._cluster_nodes(), self.settings.node_id.hex(), self.node_info()
        for key, (fut, msg) in list(self._requests.items()):
            if msg.spilled or msg.strategy or fut.done():
                continue
            target = spill_target(msg.resources, nodes, me, info, self._spills)
            if target is not None and self.scheduler.cancel(key):
                del self._requests[key]
                fut.set_result(LeaseSpillback(*target))

    def _forget_workers_that_died_starting(self) -> None:
        for worker in list(self.workers.values()):
            if worker.conn is None and worker.pid is not None and not _alive(worker.pid):
                logger.warning(
                    "worker %d exited before it registered; see its log %s",
                    worker.pid,
                    self.settings.worker_log(worker.worker_id, "err"),
                )
                self.workers.pop(worker.worker_id)
                self.starting -= 1
                self._flush_logs(worker)
                if self.starting < len(self.waiting):
                    self._start_worker()

    def _trim_idle_workers(self) -> None:
        """Ask workers idle for long, beyond one per CPU, to exit; they may refuse."""
        now = time.monotonic()
        hosting = sum(1 for w in self.workers.values() if w.actor is not None)
        excess = len(self.workers) - hosting - self.num_cpus
        for worker in list(self.idle):
            if excess <= 0:
                break
            if now - worker.idle_since > CONFIG.idle_worker_timeout_s:
                self.idle.remove(worker)  # not granted to anyone while it answers
                excess -= 1
                worker.conn.request(ExitIfIdle()).add_done_callback(
                    lambda fut, worker=worker: self._exit_answer(worker, fut)
                )

    def _exit_answer(self, worker: WorkerRecord, fut: asyncio.Future) -> None:
        if fut.cancelled() or fut.exception() is not None or worker.conn.closed:
            return  # it died meanwhile: _client_closed handles it
        if fut.result().accepted:
            worker.conn.close()  # the worker exits when its node connection closes
        else:  # it owns objects someone still uses: keep it, idle again
            self._worker_ready(worker)

    # --- connections ----------------------------------------------------------------------

    def _accepted(self, conn: Connection) -> None:
        conn.close_callbacks.append(self._client_closed)

    def handle_RegisterClient(self, conn: Connection, msg: RegisterClient) -> RegisterReply:
        conn.info["address"] = msg.address
        conn.info["pins"] = collections.Counter()
        conn.info["pid"], conn.info["worker_id"] = msg.pid, msg.worker_id
        self.clients.add(conn)
        if msg.kind == "worker":
            worker = self.workers.get(msg.worker_id)
            if worker is None:
                raise ValueError("unknown worker id: workers are started by the node")
            conn.info["worker"] = worker
            worker.conn, worker.address = conn, msg.address
            worker.pid = worker.pid or msg.pid
            self.starting -= 1
            self._worker_ready(worker)
        elif msg.kind == "driver":  # an owner of another node leasing here is not a driver
            self.drivers.add(conn)
            if msg.info is not None:  # the driver's own node: a new job, in the head's table
                return self._register_driver(conn, msg)
        return self._registered(msg.job_id)

    def _registered(self, job_id: bytes) -> RegisterReply:
        s = self.settings
        return RegisterReply(s.node_id, self.scheduler.total_resources(), s.session_dir, job_id)

    def _client_closed(self, conn: Connection) -> None:
        if self._stopping:
            return
        self.clients.discard(conn)
        self.note_departed(conn)
        address = conn.info.get("address")
        unlink = self.store.owner_gone(address) if address else []
        self._spill_owner_gone(address)
        for segment, count in conn.info.get("pins", {}).items():
            for _ in range(count):
                unlink += self.store.unpin(segment)
        self._unlink(unlink)
        for key in [k for k in self._requests if k[0] is conn]:
            self.scheduler.cancel(key)
            self._requests.pop(key)
        for lease in [lease for lease in self.leases.values() if lease.owner is conn]:
            self._end_lease(lease, kill_worker=True)  # its owner is gone: stop its work
        self._groups_owner_gone(conn)
        if "job_id" in conn.info:
            self._tell_head(JobFinished(conn.info["job_id"]))
        for record in self.actors.owned_by(conn):
            self._actor_died(
                record,
                "The actor is dead because its owner (the process that created it) has died."
                f"\n{record.describe()}",
            )
        self._adopt_orphans(conn)
        self._check_guests_of(conn)
        worker = conn.info.get("worker")
        if worker is not None:
            self._worker_gone(worker)
        if conn in self.drivers:
            self.drivers.discard(conn)
            if self.settings.embedded and not self.drivers:
                asyncio.get_running_loop().create_task(self.shutdown())
                return
        self._schedule()

    # --- workers --------------------------------------------------------------------------

    def _start_worker(self) -> None:
        worker = WorkerRecord(ids.random_unique_id())
        self.workers[worker.worker_id] = worker
        self.starting += 1
        fut = self.zygote.fork(worker.worker_id)
        fut.add_done_callback(lambda f: self._forked(worker, f))

    def _forked(self, worker: WorkerRecord, fut: asyncio.Future) -> None:
        if fut.exception() is not None:  # the zygote is gone: its error is above in this log
            logger.error("cannot start a worker: %s", fut.exception())
            self.workers.pop(worker.worker_id, None)
            self.starting -= 1
            return
        worker.pid = fut.result()
        for suffix, is_err in (("out", False), ("err", True)):
            self.logs.add(self.settings.worker_log(worker.worker_id, suffix), worker.pid, is_err)

    def _worker_ready(self, worker: WorkerRecord) -> None:
        if self._adoptions:
            self._adopt_waiting(worker)
        while self.waiting:
            lease = self.waiting.popleft()
            if lease.owner.closed:
                self.scheduler.release(lease.alloc)
                continue
            self._grant(lease, worker)
            return
        worker.idle_since = time.monotonic()
        self.idle.append(worker)

    def _worker_gone(self, worker: WorkerRecord) -> None:
        self.workers.pop(worker.worker_id, None)
        if worker in self.idle:
            self.idle.remove(worker)
        if worker.lease is not None:
            self._end_lease(worker.lease, kill_worker=False)
        if worker.actor is not None:
            self._actor_worker_lost(worker)
        self._flush_logs(worker)
        self._tell_head(forget_worker(self.settings.node_id, worker.worker_id))  # breakpoints

    # --- leases ---------------------------------------------------------------------------

    def handle_RequestLease(self, conn: Connection, msg: RequestLease):
        if msg.actor_id:  # ours (at home here), or another node's placed here
            record = self.actors.get(msg.actor_id)
            guest = record is None and msg.spilled and msg.home not in (b"", self.settings.node_id)
            if not guest and (record is None or record.state == ActorState.DEAD):
                return ErrorReply("ActorDiedError", "the actor is dead")
        if not msg.spilled and (msg.strategy is not None or self._has_peers()):
            me, info = self.settings.node_id.hex(), self.node_info()
            try:
                target = spill_target(
                    msg.resources, self._cluster_nodes(), me, info, self._spills,
                    msg.strategy, self._spread, msg.locality,
                )  # fmt: skip
            except Unschedulable as e:
                return ErrorReply("TaskUnschedulableError", str(e))
            if target is not None:
                return LeaseSpillback(*target)
        if (refused := lease_refusal(self._requests, conn, msg.request_id)) is not None:
            return refused
        missing = self.scheduler.missing(msg.resources)
        if missing and not all(map(is_bundle_resource, missing)):  # a group may be pending
            conn.send(
                ResourcesInfeasible(
                    msg.request_id, msg.task_name, msg.resources, self.scheduler.total_resources()
                )
            )
        key = (conn, msg.request_id)
        fut = asyncio.get_running_loop().create_future()
        self._requests[key] = (fut, msg)
        self.scheduler.submit(key, msg.resources)
        self._schedule()
        if key in self._requests or self.waiting:  # kept: its owner hears why (LeasePending)
            self._reasons_soon()
        return fut

    def handle_CancelLeaseRequest(self, conn: Connection, msg) -> None:
        key = (conn, msg.request_id)
        if self.scheduler.cancel(key):
            fut, _ = self._requests.pop(key)
            fut.set_result(ErrorReply("Cancelled", "lease request cancelled"))

    def handle_ReturnLease(self, conn: Connection, msg) -> None:
        lease = self.leases.get(msg.lease_id)
        if lease is not None and lease.owner is conn:
            self._end_lease(lease, kill_worker=msg.worker_failed)
            self._schedule()

    def handle_WorkerBlocked(self, conn: Connection, msg) -> None:
        worker = conn.info.get("worker")
        lease = worker.lease if worker is not None else None
        if lease is None:
            return
        if msg.blocked:
            lease.blocked += 1
            if lease.blocked == 1:
                self.scheduler.block(lease.alloc)
                self._schedule()
        elif lease.blocked > 0:
            lease.blocked -= 1
            if lease.blocked == 0:
                self.scheduler.unblock(lease.alloc)

    def _schedule(self) -> None:
        if self.head is not None and self.head.groups_waiting:
            self.head.place_pending()  # a group placed here goes before queued leases
        for key, alloc in self.scheduler.schedule():
            reply, request = self._requests.pop(key)
            owner = key[0]
            if owner.closed or reply.done():
                self.scheduler.release(alloc)
                continue
            lease = LeaseRecord(next(self._lease_ids), alloc, owner, reply)
            lease.actor_id, lease.actor_resources = request.actor_id, request.actor_resources
            lease.home = request.home
            lease.retriable, lease.task_name = request.retriable, request.task_name
            lease.request_id = key[1]
            if self.idle:
                self._grant(lease, self.idle.pop())
            else:
                self.waiting.append(lease)
                if self.starting < len(self.waiting):
                    self._start_worker()

    def _grant(self, lease: LeaseRecord, worker: WorkerRecord) -> None:
        worker.busy_since = time.monotonic()  # (for tasks and actors: the memory monitor's)
        if lease.actor_id:
            self._grant_to_actor(lease, worker)
            return
        lease.worker = worker
        worker.lease = lease
        self.leases[lease.lease_id] = lease
        lease.reply.set_result(
            LeaseGranted(lease.lease_id, worker.worker_id, worker.address, self._gpu_ids(lease))
        )

    def _gpu_ids(self, lease: LeaseRecord) -> list:
        """The device ids of the lease's GPU slots, as its tasks will see them."""
        known = self.settings.gpu_ids
        return [known[i] if i < len(known) else i for i in lease.alloc.gpu_id_list()]

    def _end_lease(self, lease: LeaseRecord, kill_worker: bool) -> None:
        self.leases.pop(lease.lease_id, None)
        if lease.blocked:
            self.scheduler.unblock(lease.alloc)
        self.scheduler.release(lease.alloc)
        worker = lease.worker
        if worker is None or worker.lease is not lease:
            return
        worker.lease = None
        if kill_worker and worker.conn is not None:
            worker.conn.close()
        elif worker.worker_id in self.workers:
            self._worker_ready(worker)

    def handle_ShutdownNode(self, conn: Connection, msg) -> Ok:
        # every line workers wrote so far reaches the driver before our answer does
        for worker in list(self.workers.values()):
            self._flush_logs(worker)
        asyncio.get_running_loop().create_task(self.shutdown())
        return Ok()

    # --- output -----------------------------------------------------------------------------

    async def _poll_logs(self) -> None:
        while not self._stopping:
            await asyncio.sleep(CONFIG.log_poll_interval_s)
            self._flush_logs()

    def _flush_logs(self, worker: WorkerRecord | None = None) -> None:
        """Send new output lines to drivers; with ``worker``, its last ones (it is gone)."""
        if worker is not None:
            lines = []
            for suffix in ("out", "err"):
                lines += self.logs.remove(self.settings.worker_log(worker.worker_id, suffix))
        else:
            lines = self.logs.poll()
        if lines:
            for driver in self.drivers:
                driver.send(LogLines(lines))


def run(settings: NodeSettings, token: bytes, zygote: ZygoteClient, ready_fd: int | None) -> None:
    """Run the node until it stops (node/main.py has forked its zygote already)."""
    try:
        daemon = NodeDaemon(settings, token, zygote)
    except ValueError as e:  # a bad setting (the spill directory): said plainly in the log
        logger.error("%s", e)
        raise SystemExit(1) from None
    _loop.run(daemon.run(ready_fd))
