"""Several minray nodes on one machine, for tests and teaching (Ray's ``ray.cluster_utils``).

Each node is a real node process with its own session directory, sockets and
shared-memory namespace; the first one is the head, the others join it over TCP
on 127.0.0.1 with a token made for this cluster. So joining, heartbeats and a
node's death are the real code paths::

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    node = cluster.add_node(num_cpus=2, resources={"ssd": 1})
    cluster.wait_for_nodes()
    cluster.connect()                       # minray.init(address=cluster.address)
    cluster.remove_node(node, allow_graceful=False)   # SIGKILL, as a crash would
    cluster.shutdown()

The head saves its tables (head/saved_tables.py): after
``remove_node(cluster.head_node, allow_graceful=False)``, ``restart_head()`` starts
a head on the same address that takes them back, and the other nodes reconnect.

Nodes started here end with the process that started them (like ``init()``'s).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import subprocess
import tempfile
import time

import psutil

from . import api, system_config
from .head.dashboard_address import dashboard_settings
from .head.query import parse_host_port, query_head
from .head.store import FILE_NAME, copy_store
from .node import launcher
from .node.processes import remove_segments
from .protocol import framing
from .protocol.messages import GetClusterInfo
from .protocol.reach import LOOPBACK


class ClusterNode:
    """One node process of a :class:`Cluster`."""

    def __init__(self, node_id: str, process: subprocess.Popen, session_dir: str, head: bool):
        self.node_id = node_id  #: 56 hex digits, as in ``nodes()``
        self.unique_id = node_id
        self.process = process
        self.session_dir = session_dir
        self.is_head = head
        self.node_ip_address = "127.0.0.1"

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def __repr__(self) -> str:
        role = "head" if self.is_head else "node"
        return f"ClusterNode({role} {self.node_id[:12]}, pid={self.pid})"


class Cluster:
    """A head and any number of nodes on this machine (see the module doc)."""

    def __init__(
        self,
        initialize_head: bool = False,
        connect: bool = False,
        head_node_args: dict | None = None,
        shutdown_at_exit: bool = True,
    ):
        self.head_node: ClusterNode | None = None
        self.worker_nodes: list[ClusterNode] = []
        self.token = framing.new_token()
        self._address = ""
        self._connected = False
        self._head_env: dict = {}  # the head's _system_config settings: every node gets them
        self._head_port = 0  # the head's port (0: any free one; a restarted head keeps it)
        self._saved_tables = ""  # a killed head's tables, for restart_head()
        if initialize_head:
            self.add_node(**(head_node_args or {}))
        if connect:
            self.connect()

    @property
    def address(self) -> str:
        """``"127.0.0.1:PORT"`` of the head, for ``minray.init(address=...)``."""
        if self.head_node is None:
            raise RuntimeError("the cluster has no head node yet: call add_node() first")
        return self._address

    def list_all_nodes(self) -> list[ClusterNode]:
        return ([self.head_node] if self.head_node else []) + list(self.worker_nodes)

    def add_node(
        self,
        wait: bool = True,
        num_cpus: float | None = None,
        num_gpus: float | None = None,
        resources: dict | None = None,
        object_store_memory: int | None = None,
        node_ip_address: str = LOOPBACK,
        _system_config: dict | None = None,
        include_dashboard: bool | None = None,
        dashboard_port: int | None = None,
        **unsupported,
    ) -> ClusterNode:
        """Start a node; the first one added is the head. Returns it once it has joined
        (with ``wait=False``, as soon as its process is up).

        ``node_ip_address`` another loopback address (``"127.0.0.2"``) makes the node
        behave as if on another machine: it and its workers are reached over TCP.
        ``_system_config`` takes Ray's settings (see ``minray/system_config.py``: the
        health-check keys set the heartbeat interval and the death timeout); the head's
        apply to every node of the cluster, as in Ray, and a node's own override them.
        ``include_dashboard``/``dashboard_port``: the head serves the dashboard (as init's)."""
        if unsupported:
            raise TypeError(
                f"add_node() got arguments minray does not support: {sorted(unsupported)}; "
                "it takes num_cpus, num_gpus, resources, object_store_memory, "
                "node_ip_address, _system_config, include_dashboard and dashboard_port"
            )
        env = {**self._head_env, **system_config.node_environment(_system_config, "add_node()")}
        if not ipaddress.ip_address(node_ip_address).is_loopback:
            raise ValueError(
                f"node_ip_address={node_ip_address!r}: a Cluster runs on this machine only; "
                "use a loopback address such as 127.0.0.2"
            )
        head = self.head_node is None
        node_resources, gpu_ids, store = api._node_resources(
            num_cpus, num_gpus, resources, object_store_memory, head=head, node_ip=node_ip_address
        )
        settings = launcher.node_settings(
            node_resources,
            gpu_ids,
            store,
            embedded=False,  # drivers come and go
            parent_pid=os.getpid(),  # ends with this process, and cleans its session up
            head=head,
            head_host=node_ip_address,
            node_ip=node_ip_address,
            head_address="" if head else f"tcp:{self.address}",
            head_port=self._head_port if head else 0,
            recover_from=self._saved_tables if head else "",
            extra={"code_paths": launcher.driver_code_paths()},
            **(dashboard_settings(include_dashboard, LOOPBACK, dashboard_port) if head else {}),
        )
        node_id = settings["node_id"]
        process, _ = launcher.start_node(settings, self.token, env)
        session_dir = settings["session_dir"]
        node = ClusterNode(node_id, process, session_dir, head)
        node.node_ip_address = node_ip_address
        if head:
            self.head_node = node
            self._head_env = env
            with open(os.path.join(session_dir, "head_address")) as f:
                self._address = f.read().strip()
        else:
            self.worker_nodes.append(node)
            if wait:
                self._wait_until(lambda alive: node_id in alive, 30, f"{node} to join")
        return node

    def remove_node(self, node: ClusterNode, allow_graceful: bool = True) -> None:
        """Stop a node: with ``allow_graceful`` it leaves (SIGTERM, it says goodbye to the
        head); without, its processes are killed at once (SIGKILL), as a crash would."""
        killed = None
        if node is self.head_node:
            self.head_node = None
            killed = None if allow_graceful else self._keep_tables
        elif node in self.worker_nodes:
            self.worker_nodes.remove(node)
        else:
            raise ValueError(f"{node!r} is not a node of this cluster")
        _stop_node(node, graceful=allow_graceful, killed=killed)

    def restart_head(self, **head_node_args) -> ClusterNode:
        """Start a head again after ``remove_node(head, allow_graceful=False)``: on the
        same address and token, it takes back the killed head's tables, and the other
        nodes reconnect to it (within ``head_reconnect_timeout_s``). ``head_node_args``
        are add_node's. Returns the new head node."""
        if self.head_node is not None:
            raise ValueError("the head is running: kill it first with remove_node(...)")
        if not self._saved_tables:
            raise ValueError(
                "no killed head to restart: remove the head with "
                "remove_node(cluster.head_node, allow_graceful=False) first"
            )
        try:
            return self.add_node(**head_node_args)
        finally:
            self._drop_saved_tables()

    def _keep_tables(self, head: ClusterNode) -> None:
        """Copy a killed head's tables out of its session directory (about to go)."""
        source = os.path.join(head.session_dir, FILE_NAME)
        if os.path.exists(source):
            self._drop_saved_tables()
            self._saved_tables = os.path.join(tempfile.mkdtemp(prefix="minray-tables-"), FILE_NAME)
            copy_store(source, self._saved_tables)
            self._head_port = parse_host_port(self._address)[1]

    def _drop_saved_tables(self) -> None:
        if self._saved_tables:
            shutil.rmtree(os.path.dirname(self._saved_tables), ignore_errors=True)
            self._saved_tables = ""

    def wait_for_nodes(self, timeout: float = 30) -> None:
        """Wait until the head sees every node of this cluster alive."""
        expected = {n.node_id for n in self.list_all_nodes()}
        self._wait_until(lambda alive: expected <= alive, timeout, "every node to join")

    def connect(self, namespace: str | None = None) -> api.RayContext:
        """``minray.init(address=self.address)`` with this cluster's token."""
        context = api.init(address=self.address, namespace=namespace, _token=self.token)
        self._connected = True
        return context

    def shutdown(self) -> None:
        """Disconnect the driver (if connected here) and stop every node."""
        if self._connected:
            api.shutdown()
            self._connected = False
        for node in reversed(self.list_all_nodes()):
            _stop_node(node, graceful=True)
        self.worker_nodes.clear()
        self.head_node = None
        self._drop_saved_tables()

    def alive_node_ids(self) -> set[str]:
        """Ids of the nodes the head sees alive now."""
        nodes = query_head(self.address, self.token, GetClusterInfo()).nodes
        return {n["NodeID"] for n in nodes if n["Alive"]}

    def _wait_until(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            alive = self.alive_node_ids()
            if condition(alive):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.05)


def _stop_node(node: ClusterNode, graceful: bool, killed=None) -> None:
    """Stop the node (``killed``: called with it once it was killed, before its session
    directory goes)."""
    process = node.process
    if graceful and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
            return
        except subprocess.TimeoutExpired:
            pass
    _kill_tree(process.pid)
    process.wait()
    if killed is not None:
        killed(node)
    # a crashed node cleans nothing up: do it for it, so no test leaves segments behind
    remove_segments(node.session_dir)
    shutil.rmtree(node.session_dir, ignore_errors=True)


def _kill_tree(pid: int) -> None:
    """SIGKILL the node and every process under it (zygote, workers, their children)."""
    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs[1:], timeout=5)
