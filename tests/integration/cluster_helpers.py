"""Helpers for the tests of several nodes on one machine (cluster_utils.Cluster)."""

from __future__ import annotations

import asyncio
import os
import time

import psutil

from minray.cluster_utils import Cluster
from minray.config import CONFIG
from minray.protocol.connection import connect
from minray.protocol.messages import GetClusterInfo


def live_node_info(node) -> dict:
    """The node's own record, asked of its process (the head's copy may be a second old)."""

    async def ask():
        with open(os.path.join(node.session_dir, "token"), "rb") as f:
            token = f.read()
        address = f"unix:{os.path.join(node.session_dir, 'node.sock')}"
        conn = await connect(address, object(), token, CONFIG.max_frame_bytes)
        try:
            nodes = (await conn.request(GetClusterInfo())).nodes
        finally:
            conn.close()
        return next(n for n in nodes if n["NodeID"] == node.node_id)

    return asyncio.run(ask())


def live_used_bytes(node) -> float:
    """Bytes of live objects in the node's store, by its own count."""
    return live_node_info(node)["ObjectStoreUsedBytes"]


def segments_of(node) -> list[str]:
    """The node's shared-memory segments in /dev/shm."""
    tag = os.path.basename(node.session_dir)[-6:]
    return [n for n in os.listdir("/dev/shm") if n.startswith("minray_" + tag)]


def wait_until(condition, timeout: float = 15.0) -> bool:
    """Poll ``condition`` every 50 ms until it holds or ``timeout`` passes; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def two_node_cluster(second_node: dict):
    """A head (1 CPU) and a second node (``add_node(**second_node)``), with a driver
    connected on the head; yields ``(cluster, node)``, then stops it and checks that no
    node left segments or its session directory behind (for pytest fixtures)."""
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    node = cluster.add_node(**second_node)
    cluster.wait_for_nodes()
    cluster.connect()
    yield cluster, node
    nodes = cluster.list_all_nodes()
    cluster.shutdown()
    for n in nodes:
        assert not segments_of(n), f"segments of {n} left behind"
        assert not os.path.exists(n.session_dir)


def process_tree(node) -> list[psutil.Process]:
    """The node's process and its children (empty once it is gone)."""
    try:
        proc = psutil.Process(node.pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def restartable_cluster(monkeypatch):
    """A head (1 CPU) and a member node (2 CPUs and a "member" resource) with short
    heartbeats and 30 s for the member to reconnect to a restarted head; yields
    ``(cluster, member)``, then stops every node and checks that no process or segment
    is left behind (for pytest fixtures)."""
    monkeypatch.setenv("MINRAY_HEARTBEAT_INTERVAL_S", "0.2")
    monkeypatch.setenv("MINRAY_NODE_DEATH_TIMEOUT_S", "1.5")
    monkeypatch.setenv("MINRAY_HEAD_RECONNECT_TIMEOUT_S", "30")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    member = cluster.add_node(num_cpus=2, resources={"member": 1})
    processes = process_tree(cluster.head_node) + process_tree(member)
    try:
        yield cluster, member
    finally:
        nodes = cluster.list_all_nodes() + [member]
        for node in cluster.list_all_nodes():
            processes += process_tree(node)
        cluster.shutdown()
        _, alive = psutil.wait_procs(processes, timeout=15)
        assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
        for node in nodes:
            assert not segments_of(node), "shared-memory segments left behind"


def read_stripped(path: str) -> str:
    """A small file a test process wrote (a pid, a marker), or "" while it is not there."""
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


def pid_in(path: str, timeout: float = 30.0) -> int:
    """The pid a process wrote to ``path``, once it has (at most ``timeout`` seconds)."""
    assert wait_until(lambda: read_stripped(path), timeout), f"{path} was never written"
    return int(read_stripped(path))
