"""The node's place in the cluster: joining the head or running its services, and
what the node tells others about itself.

A mixin of :class:`~minray.node.daemon.NodeDaemon`. A member node joins the head
(node/head_client.py) and keeps the view the head pushes; the head, and an
embedded node, run the head services (head/service.py) in this process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from ..config import CONFIG
from ..head.service import HeadService
from ..head.store import FILE_NAME
from ..protocol.connection import Connection, serve
from ..protocol.messages import (
    AddJob,
    ClusterInfo,
    ErrorReply,
    JobAdded,
    NodeDied,
    RegisterClient,
)
from .actor_directory import ActorState
from .cluster_address import record_current_cluster, wildcard_names
from .head_client import HeadClient
from .spillback import pending_demands

logger = logging.getLogger("minray.node")


class Membership:
    """Membership and the cluster view, mixed into the node daemon."""

    async def _start_membership(self) -> None:
        """Join the head (member node), or run the head services (head, embedded node)."""
        s = self.settings
        if s.head_address:
            demands = lambda: pending_demands(  # noqa: E731
                self._requests, self.scheduler, self.told_reasons
            )
            self.head_client = HeadClient(
                s.node_id, s.head_address, self.token, self.scheduler.available_resources,
                self._lost_head, demands, self.scheduler.total_resources,
            )  # fmt: skip
            self.head_client.on_node_dead = self._node_died
            self.head_client.node = self
            self.head_client.on_view = self._respill_soon
            total = self.scheduler.total_resources()
            await self.head_client.join(s.address, total, self.node_info())
            asyncio.get_running_loop().create_task(self.head_client.heartbeat(self._stopped))
            return
        self.head = HeadService(s.node_id, self.node_info, CONFIG.node_death_timeout_s)
        self.head.on_node_dead = self._node_died
        self.head.local_node = self
        self.head.keep_packages_in(s.session_dir)
        sched = self.scheduler
        self.head.local_resources = lambda: (sched.total_resources(), sched.available_resources())
        self.head.on_view_pushed = self._respill_soon
        asyncio.get_running_loop().create_task(self.head.run_detector(self._stopped))
        self.head.session_dir = s.session_dir
        if s.head:
            self._open_head_tables()
            self._head_server = await serve(
                f"tcp:{s.head_host}:{s.head_port}", self.head, self.token, CONFIG.max_frame_bytes
            )
            port = self._head_server.sockets[0].getsockname()[1]
            with open(os.path.join(s.session_dir, "head_address"), "w") as f:
                f.write(f"{s.head_host}:{port}\n")
            record_current_cluster(f"{s.head_host}:{port}", s.session_dir)
            logger.info("head services listening on %s:%d", s.head_host, port)
            if s.dashboard_port >= 0:  # submitted jobs' drivers connect to the head's port
                from ..head.job_manager import JobManager  # (only with a dashboard: cheap start)

                address, node_id = f"{s.head_host}:{port}", s.node_id.hex()
                self.head.job_manager = JobManager(
                    s.session_dir, address, self.token, node_id, self.head.packages
                )
        if s.dashboard_port >= 0:
            await self._start_dashboard()

    def _open_head_tables(self) -> None:
        """The head saves its tables in the session directory (a restart takes them back,
        head/saved_tables.py); the head recovering a dead one's says what came back."""
        s = self.settings
        path = os.path.join(s.session_dir, FILE_NAME)
        summary = self.head.open_store(path, s.recover_from)
        if s.recover_from:
            logger.warning("recovered the head's tables from %s: %s", s.recover_from, summary)
            with open(os.path.join(s.session_dir, "head_recovered"), "w") as f:
                f.write(f"{summary}\n")

    async def _start_dashboard(self) -> None:
        """Serve the dashboard; a port in use is logged, and the node runs on without it."""
        s = self.settings
        from ..head.dashboard import start_dashboard  # (aiohttp: loaded only when served)

        names = wildcard_names() if s.dashboard_host in ("0.0.0.0", "::", "") else ()
        try:
            self._dashboard, where = await start_dashboard(
                self.head, self.token, s.dashboard_host, s.dashboard_port, names
            )
        except OSError as e:
            logger.error(
                "the dashboard cannot listen on %s:%d (%s); the cluster runs without it. "
                "Choose another port (--dashboard-port, or init(dashboard_port=...)).",
                s.dashboard_host, s.dashboard_port, e.strerror or e,
            )  # fmt: skip
            return
        with open(os.path.join(s.session_dir, "dashboard_url"), "w") as f:
            f.write(f"{where}\n")
        logger.info("dashboard at http://%s", where)

    def _lost_head(self, reason: str) -> None:
        if not self._stopping:
            logger.warning("%s; stopping this node", reason)
            asyncio.get_running_loop().create_task(self.shutdown())

    def actors_at_home(self) -> list[list]:
        """[[actor id, namespace, name], ...] of the live actors this node is home to (told
        to the head when this node registers again after losing it)."""
        return [
            [record.actor_id, record.namespace, record.name]
            for record in self.actors.actors.values()
            if record.state != ActorState.DEAD
        ]

    def _respill_soon(self) -> None:
        """The view changed: queued requests may have somewhere to go now (a node joined,
        freed up, or holds a placement group's bundles)."""
        if self._requests and not self._stopping:
            self._respill_queued()

    # --- cluster state ----------------------------------------------------------------------

    def _node_died(self, node_id: bytes) -> None:
        """The head declared a node dead: its actors, and what our clients wait on there."""
        if node_id == self.settings.node_id:
            return  # (not ours: a node that is declared dead is stopped by its head link)
        self._actors_of_dead_node(node_id)
        notice = NodeDied(node_id, self._process_prefixes(node_id))
        for client in self.clients:
            client.send(notice)

    def _process_prefixes(self, node_id: bytes) -> list[str]:
        """How the addresses of a node's processes start (see NodeDied)."""
        nodes = self._cluster_nodes()
        dead = next((n for n in nodes if n["NodeID"] == node_id.hex()), None)
        if dead is None:
            return []
        prefixes = [f"unix:{dead['ObjectStoreSocketName']}/"]
        ip = dead["NodeManagerAddress"]
        if not any(n["Alive"] and n["NodeManagerAddress"] == ip for n in nodes):
            prefixes.append(f"tcp:{ip}:")
        return prefixes

    def handle_KvRequest(self, conn: Connection, msg):
        return self._ask_head(msg)  # the KV lives at the head

    def handle_UploadPackage(self, conn: Connection, msg):
        return self._ask_head(msg)  # runtime_env packages live at the head

    def handle_GetPackage(self, conn: Connection, msg):
        return self._ask_head(msg)

    def handle_GetJobs(self, conn: Connection, msg):
        return self._head_answer(msg)  # the job table too

    def _register_driver(self, conn: Connection, msg: RegisterClient):
        """A driver's RegisterReply, with the new job id the head gives it (at once on
        the head node, else a coroutine)."""
        info = {**(msg.info or {}), "pid": msg.pid, "address": self.settings.node_ip}
        added = self._head_answer(AddJob(self.settings.node_id, info))
        if isinstance(added, JobAdded):
            conn.info["job_id"] = added.job_id
            return self._registered(added.job_id)

        async def when_added():
            reply = await added
            if type(reply) is ErrorReply:  # the head is gone: the node stops anyway
                raise ConnectionError(f"the head did not give this driver a job: {reply.message}")
            conn.info["job_id"] = reply.job_id
            return self._registered(reply.job_id)

        return when_added()

    def handle_GetClusterInfo(self, conn: Connection, msg) -> ClusterInfo:
        return ClusterInfo(self._cluster_nodes())

    def _has_peers(self) -> bool:
        if self.head is not None:
            return bool(self.head.members)
        return len(self.head_client.view) > 1

    def _cluster_nodes(self) -> list[dict]:
        if self.head is not None:
            return self.head.nodes_info()
        me = self.settings.node_id.hex()
        view = [n for n in self.head_client.view.values() if n["NodeID"] != me]
        return [*view, self.node_info()]

    def node_info(self) -> dict:
        s = self.settings
        return {
            "NodeID": s.node_id.hex(),
            "Alive": True,
            "NodeManagerAddress": s.node_ip,
            "NodeManagerHostname": socket.gethostname(),
            "NodeManagerPort": self.tcp_port,
            "ObjectManagerPort": 0,
            "ObjectStoreSocketName": s.session_dir,
            "RayletSocketName": s.address,
            "MetricsExportPort": 0,
            "NodeName": s.node_ip,
            "IsHead": self.head is not None,
            "HeadAddress": s.head_address,
            "Resources": self.scheduler.total_resources(),
            "AvailableResources": self.scheduler.available_resources(),
            "ObjectStoreUsedBytes": self.store.live_bytes,
            "ObjectStorePooledBytes": self.store.pooled_bytes,
            **self.spill_stats(),
            "Workers": len(self.workers),
            "PendingDemands": pending_demands(self._requests, self.scheduler, self.told_reasons),
        }
