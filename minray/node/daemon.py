"""The node process: one per machine; grants worker leases and guards shared memory.

It owns the worker pool (workers forked from a zygote), the lease scheduler
(runtime/scheduler.py), the accounting of shared-memory segments
(object_store/accounting.py) and the forwarding of worker output to drivers.
It never runs user code and never unpickles anything.

Lifecycle: ``minray.init()`` starts it with ``python -m minray.node.daemon``
(*embedded*); it exits when that driver calls ``shutdown()`` or dies, after
stopping its workers and unlinking every segment it knows.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import logging
import os
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass, field

from .. import _loop, ids
from ..config import CONFIG
from ..exceptions import ObjectStoreFullError
from ..object_store import shm
from ..object_store.accounting import StoreAccounting
from ..protocol.connection import Connection, serve
from ..protocol.messages import (
    ActorInfo,
    ActorRegistered,
    ActorState,
    ClusterInfo,
    CreateObject,
    ErrorReply,
    ExitIfIdle,
    LeaseGranted,
    LogLines,
    NamedActors,
    ObjectCreated,
    Ok,
    RegisterClient,
    RegisterReply,
    RequestLease,
    ResourcesInfeasible,
    RestartActor,
    SegmentsRemoved,
)
from ..runtime.scheduler import Allocation, LeaseScheduler
from .actor_directory import ActorDirectory, ActorRecord
from .log_monitor import LogMonitor
from .worker_pool import ZygoteClient, start_zygote

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


@dataclass
class NodeSettings:
    session_dir: str
    node_id: bytes
    resources: dict
    object_store_memory: int
    embedded: bool
    parent_pid: int
    #: what tasks see of the node's GPUs, by scheduler slot (ints, or CUDA_VISIBLE_DEVICES' ids)
    gpu_ids: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"unix:{os.path.join(self.session_dir, 'node.sock')}"

    def worker_log(self, worker_id: bytes, suffix: str) -> str:
        return os.path.join(self.session_dir, "logs", f"worker-{worker_id.hex()[:12]}.{suffix}")


class NodeDaemon:
    def __init__(self, settings: NodeSettings, token: bytes, zygote: ZygoteClient):
        self.settings = settings
        self.token = token
        self.zygote = zygote
        self.scheduler = LeaseScheduler(settings.resources)
        self.store = StoreAccounting(
            settings.object_store_memory,
            int(settings.object_store_memory * CONFIG.segment_pool_fraction),
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
        self.actors = ActorDirectory()
        self._actor_waiters: dict[bytes, list[tuple[str, asyncio.Future]]] = {}
        self._lease_ids = itertools.count(1)
        self._stopped = asyncio.Event()
        self._stopping = False
        self._server = None

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
        for _ in range(self.num_cpus):
            self._start_worker()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, lambda: loop.create_task(self.shutdown()))
        loop.create_task(self._poll_logs())
        loop.create_task(self._housekeeping())
        if ready_fd is not None:
            os.write(ready_fd, b"READY\n")
            os.close(ready_fd)
        await self._stopped.wait()

    async def shutdown(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        if self._server is not None:
            self._server.close()
        pids = [w.pid for w in self.workers.values() if w.pid]
        for pid in pids:
            _kill(pid)
        self.zygote.close()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            await asyncio.sleep(0.01)
        await _wait_child(self.zygote.pid, deadline)
        self._flush_logs()
        for segment in self.store.all_segments():
            shm.unlink(segment)
        if self.settings.embedded:
            shutil.rmtree(self.settings.session_dir, ignore_errors=True)
        self._stopped.set()

    async def _housekeeping(self) -> None:
        while not self._stopping:
            await asyncio.sleep(0.5)
            if self.settings.embedded and not _alive(self.settings.parent_pid):
                logger.warning(
                    "the driver (pid %d) is gone; shutting down", self.settings.parent_pid
                )
                await self.shutdown()
                return
            self._trim_idle_workers()
            self._forget_workers_that_died_starting()

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
        else:
            self.drivers.add(conn)
        return RegisterReply(
            self.settings.node_id, self.scheduler.total_resources(), self.settings.session_dir
        )

    def _client_closed(self, conn: Connection) -> None:
        if self._stopping:
            return
        self.clients.discard(conn)
        address = conn.info.get("address")
        unlink = self.store.owner_gone(address) if address else []
        for segment, count in conn.info.get("pins", {}).items():
            for _ in range(count):
                unlink += self.store.unpin(segment)
        self._unlink(unlink)
        for key in [k for k in self._requests if k[0] is conn]:
            self.scheduler.cancel(key)
            self._requests.pop(key)
        for lease in [lease for lease in self.leases.values() if lease.owner is conn]:
            self._end_lease(lease, kill_worker=True)  # its owner is gone: stop its work
        for record in self.actors.owned_by(conn):
            self._actor_died(
                record,
                "The actor is dead because its owner (the process that created it) has died."
                f"\n{record.describe()}",
            )
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
        if fut.exception() is not None:
            self.workers.pop(worker.worker_id, None)
            self.starting -= 1
            return
        worker.pid = fut.result()
        for suffix, is_err in (("out", False), ("err", True)):
            self.logs.add(self.settings.worker_log(worker.worker_id, suffix), worker.pid, is_err)

    def _worker_ready(self, worker: WorkerRecord) -> None:
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

    # --- leases ---------------------------------------------------------------------------

    def handle_RequestLease(self, conn: Connection, msg: RequestLease):
        if msg.actor_id:
            record = self.actors.get(msg.actor_id)
            if record is None or record.state == ActorState.DEAD:
                return ErrorReply("ActorDiedError", "the actor is dead")
        missing = self.scheduler.missing(msg.resources)
        if missing:
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
        for key, alloc in self.scheduler.schedule():
            reply, request = self._requests.pop(key)
            owner = key[0]
            if owner.closed or reply.done():
                self.scheduler.release(alloc)
                continue
            lease = LeaseRecord(next(self._lease_ids), alloc, owner, reply)
            lease.actor_id, lease.actor_resources = request.actor_id, request.actor_resources
            if self.idle:
                self._grant(lease, self.idle.pop())
            else:
                self.waiting.append(lease)
                if self.starting < len(self.waiting):
                    self._start_worker()

    def _grant(self, lease: LeaseRecord, worker: WorkerRecord) -> None:
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

    # --- actors ---------------------------------------------------------------------------

    def handle_RegisterActor(self, conn: Connection, msg):
        try:
            record, created = self.actors.register(
                msg.actor_id,
                conn,
                name=msg.name,
                namespace=msg.namespace,
                class_name=msg.class_name,
                detached=msg.detached,
                max_restarts=msg.max_restarts,
                handle_blob=msg.handle_blob,
                get_if_exists=msg.get_if_exists,
            )
        except ValueError as e:
            return ErrorReply("ActorAlreadyExistsError", str(e))
        return ActorRegistered(record.actor_id, created)

    def _grant_to_actor(self, lease: LeaseRecord, worker: WorkerRecord) -> None:
        """The worker is the actor's from now on; it holds only the actor's own resources."""
        record = self.actors.get(lease.actor_id)
        if record is None or record.state == ActorState.DEAD:
            self.scheduler.release(lease.alloc)
            lease.reply.set_result(ErrorReply("ActorDiedError", "the actor is dead"))
            self._worker_ready(worker)
            asyncio.get_running_loop().call_soon(self._schedule)  # what it held is free
            return
        record.alloc = self.scheduler.shrink(lease.alloc, lease.actor_resources)
        record.worker, worker.actor = worker, record
        lease.reply.set_result(
            LeaseGranted(0, worker.worker_id, worker.address, self._gpu_ids(lease))
        )
        asyncio.get_running_loop().call_soon(self._schedule)  # the placement CPU is free again

    def handle_ActorStarted(self, conn: Connection, msg) -> Ok:
        worker = conn.info.get("worker")
        record = self.actors.get(msg.actor_id)
        if worker is None or record is None or record.worker is not worker:
            raise ValueError("ActorStarted from a worker that does not host this actor")
        if msg.error is not None:
            cause = "The actor died because of an error raised in its creation task"
            self._actor_died(record, cause, msg.error)
        elif self.actors.started(msg.actor_id, msg.address, worker.pid or 0) is None:
            _kill(worker.pid)  # killed while it was starting
        else:
            self._notify_actor(record)
        return Ok()

    def handle_GetActorInfo(self, conn: Connection, msg):
        record = self.actors.get(msg.actor_id)
        if record is None:
            return ErrorReply("ValueError", f"no actor with id {msg.actor_id.hex()} is known")
        if _settled(record, msg.stale_address):
            return _actor_info(record)
        fut = asyncio.get_running_loop().create_future()
        self._actor_waiters.setdefault(record.actor_id, []).append((msg.stale_address, fut))
        return fut

    def _notify_actor(self, record: ActorRecord) -> None:
        waiters = self._actor_waiters.pop(record.actor_id, [])
        for stale, fut in waiters:
            if fut.done():
                continue
            if _settled(record, stale):
                fut.set_result(_actor_info(record))
            else:
                self._actor_waiters.setdefault(record.actor_id, []).append((stale, fut))

    def handle_GetNamedActor(self, conn: Connection, msg):
        record = self.actors.named(msg.name, msg.namespace)
        if record is None:
            return ErrorReply(
                "ValueError",
                f"Failed to look up actor with name '{msg.name}'. This could because 1. You are "
                "trying to look up a named actor you didn't create. 2. The named actor died. "
                "3. You did not use a namespace matching the namespace of the actor.",
            )
        return _actor_info(record)

    def handle_ListNamedActors(self, conn: Connection, msg) -> NamedActors:
        return NamedActors(self.actors.list_named(None if msg.all_namespaces else msg.namespace))

    def handle_KillActor(self, conn: Connection, msg) -> Ok:
        record = self.actors.get(msg.actor_id)
        if record is None or record.state == ActorState.DEAD:
            return Ok()
        if msg.no_restart:
            self._actor_died(record, f"The actor was killed by `minray.kill`.\n{record.describe()}")
        elif record.worker is not None and record.worker.pid:
            _kill(record.worker.pid)  # it restarts if it may
        return Ok()

    def handle_ActorOutOfScope(self, conn: Connection, msg) -> None:
        record = self.actors.get(msg.actor_id)
        if record is not None and not record.detached:
            self._actor_died(
                record,
                "The actor is dead because all references to the actor were removed "
                f"(its handles went out of scope).\n{record.describe()}",
            )

    def handle_ActorExiting(self, conn: Connection, msg) -> Ok:
        record = self.actors.get(msg.actor_id)
        if record is not None and record.worker is conn.info.get("worker"):
            self.actors.died(msg.actor_id, f"{msg.reason}\n{record.describe()}")
            self._notify_actor(record)
        return Ok()

    def handle_ActorCreationFailed(self, conn: Connection, msg) -> None:
        record = self.actors.get(msg.actor_id)
        if record is not None and record.owner is conn:
            self._actor_died(record, "The actor's creation task failed", msg.error)

    def _actor_died(self, record: ActorRecord, cause: str, error: bytes | None = None) -> None:
        """Mark the actor dead for good, stop its worker, drop its lease requests."""
        if self.actors.died(record.actor_id, cause, error) is None:
            return
        if record.worker is not None and record.worker.pid:
            _kill(record.worker.pid)
        for key, (reply, request) in list(self._requests.items()):
            if request.actor_id == record.actor_id and self.scheduler.cancel(key):
                del self._requests[key]
                reply.set_result(ErrorReply("ActorDiedError", "the actor is dead"))
        self._notify_actor(record)

    def _actor_worker_lost(self, worker: WorkerRecord) -> None:
        record = worker.actor
        worker.actor = None
        if record.alloc is not None:
            self.scheduler.release(record.alloc)
        cause = (
            "The actor died unexpectedly before finishing this task.\n"
            f"{record.describe()}\nThe actor's worker process died: it may have crashed, been "
            "killed (by a signal or the out-of-memory killer) or called os._exit(); see "
            f"{self.settings.worker_log(worker.worker_id, 'err')}."
        )
        state = self.actors.worker_lost(record.actor_id, cause, owner_alive=not record.owner.closed)
        if state == ActorState.RESTARTING:
            logger.info("restarting actor %s (restart %d)", record.actor_id.hex(), record.restarts)
            record.owner.send(RestartActor(record.actor_id))
        self._notify_actor(record)

    # --- objects --------------------------------------------------------------------------

    def handle_CreateObject(self, conn: Connection, msg: CreateObject):
        segment = shm.segment_name(self.session_tag, msg.object_id)
        try:
            reservation, unlink = self.store.reserve(msg.object_id, segment, msg.size, msg.owner)
        except ObjectStoreFullError as e:
            return ErrorReply("ObjectStoreFullError", str(e))
        self._unlink(unlink)
        return ObjectCreated(reservation.segment, reservation.size, reservation.reused)

    def handle_FreeObjects(self, conn: Connection, msg) -> None:
        unlink: list[str] = []
        for object_id in msg.object_ids:
            unlink += self.store.free(object_id)
        self._unlink(unlink)

    def handle_PinSegments(self, conn: Connection, msg) -> None:
        for segment in msg.segments:
            self.store.pin(segment)
            conn.info["pins"][segment] += 1

    def handle_UnpinSegments(self, conn: Connection, msg) -> None:
        unlink: list[str] = []
        pins = conn.info["pins"]
        for segment in msg.segments:
            if pins[segment] > 0:
                pins[segment] -= 1
                unlink += self.store.unpin(segment)
        self._unlink(unlink)

    def _unlink(self, segments: list[str]) -> None:
        if not segments:
            return
        for segment in segments:
            shm.unlink(segment)
        for client in self.clients:  # writers may keep a mapping of them for reuse
            client.send(SegmentsRemoved(segments))

    # --- cluster state ----------------------------------------------------------------------

    def handle_GetClusterInfo(self, conn: Connection, msg) -> ClusterInfo:
        return ClusterInfo([self.node_info()])

    def node_info(self) -> dict:
        s = self.settings
        return {
            "NodeID": s.node_id.hex(),
            "Alive": True,
            "NodeManagerAddress": "127.0.0.1",
            "NodeManagerHostname": socket.gethostname(),
            "NodeManagerPort": 0,
            "ObjectManagerPort": 0,
            "ObjectStoreSocketName": s.session_dir,
            "RayletSocketName": s.address,
            "MetricsExportPort": 0,
            "NodeName": "127.0.0.1",
            "Resources": self.scheduler.total_resources(),
            "AvailableResources": self.scheduler.available_resources(),
            "ObjectStoreUsedBytes": self.store.live_bytes,
            "ObjectStorePooledBytes": self.store.pooled_bytes,
            "Workers": len(self.workers),
        }

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


def _settled(record: ActorRecord, stale_address: str) -> bool:
    """Whether a caller that saw ``stale_address`` fail can be answered now."""
    if record.state == ActorState.DEAD:
        return True
    return record.state == ActorState.ALIVE and record.address != stale_address


def _actor_info(record: ActorRecord) -> ActorInfo:
    return ActorInfo(
        record.actor_id,
        record.state,
        record.address,
        record.pid,
        record.restarts,
        record.death_cause,
        record.death_error,
        record.handle_blob,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is as good as dead
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _kill(pid: int) -> None:
    """Kill a worker and whatever it started (each worker leads its own process group)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


async def _wait_child(pid: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        await asyncio.sleep(0.005)
    _kill(pid)
    os.waitpid(pid, 0)


def _worker_entry_factory(settings: NodeSettings, token: bytes):
    def entry(worker_id: bytes) -> None:
        from ..runtime.worker_main import run_worker

        run_worker(settings, token, worker_id)

    return entry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m minray.node.daemon")
    parser.add_argument("--settings", required=True, help="JSON of NodeSettings")
    parser.add_argument("--ready-fd", type=int, default=None)
    args = parser.parse_args(argv)
    raw = json.loads(args.settings)
    raw["node_id"] = bytes.fromhex(raw["node_id"])
    settings = NodeSettings(**raw)
    with open(os.path.join(settings.session_dir, "token"), "rb") as f:
        token = f.read()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s node: %(message)s", stream=sys.stderr
    )
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # fork the zygote first, while this process has no threads and no event loop
    zygote_pid, zygote_sock = start_zygote(_worker_entry_factory(settings, token))
    daemon = NodeDaemon(settings, token, ZygoteClient(zygote_pid, zygote_sock))
    _loop.run(daemon.run(args.ready_fd))


if __name__ == "__main__":
    main()
