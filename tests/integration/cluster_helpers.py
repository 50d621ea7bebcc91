"""Helpers for the tests of several nodes on one machine (cluster_utils.Cluster)."""

from __future__ import annotations

import asyncio
import os
import time

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
