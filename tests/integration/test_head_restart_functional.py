"""A head killed and started again on the same address takes its tables back, and the
member nodes (with their actors) reconnect instead of exiting; a head that does not
come back in time, or that was stopped on purpose, still makes them stop cleanly."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import psutil
import pytest

import minray
from minray.config import CONFIG
from minray.experimental import internal_kv
from minray.head.query import query_head
from minray.protocol.connection import connect
from minray.protocol.messages import GetClusterInfo, GetJobs, KvRequest, RemovePlacementGroup
from minray.util.placement_group import placement_group, placement_group_table

from .cluster_helpers import process_tree, restartable_cluster, segments_of

BOUND_S = 60.0


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def cluster(monkeypatch):
    """A head (1 CPU) and a member node (2 CPUs and a "member" resource)."""
    yield from restartable_cluster(monkeypatch)


@minray.remote
class Counter:
    def __init__(self):
        self.count = 0

    def add(self) -> tuple[int, int]:
        self.count += 1
        return self.count, os.getpid()


@minray.remote(resources={"member": 0.1})
def make_counter_on_member() -> tuple[int, int]:
    """A task on the member node: the actor it creates is at home there."""
    counter = Counter.options(name="counter", lifetime="detached", resources={"member": 0.1})
    return minray.get(counter.remote().add.remote())


def ask_node(node, msg, one_way: bool = False):
    """``msg`` asked of (or, ``one_way``, told to) the node's own socket, as a driver
    there would: its reply."""

    async def ask():
        with open(os.path.join(node.session_dir, "token"), "rb") as f:
            token = f.read()
        address = f"unix:{os.path.join(node.session_dir, 'node.sock')}"
        conn = await connect(address, object(), token, CONFIG.max_frame_bytes)
        try:
            if one_way:
                conn.send(msg)
                return None
            return await asyncio.wait_for(conn.request(msg), BOUND_S)
        finally:
            conn.close()
            await conn.gone()

    return asyncio.run(ask())


def _view(cluster) -> dict[str, dict]:
    nodes = query_head(cluster.address, cluster.token, GetClusterInfo()).nodes
    return {n["NodeID"]: n for n in nodes}


def test_a_restarted_head_takes_its_tables_back_and_the_member_node_reconnects(cluster):
    cluster, member = cluster
    cluster.connect(namespace="restart")
    count, pid = minray.get(make_counter_on_member.remote(), timeout=BOUND_S)
    assert count == 1
    # at home on the head node, which dies; it may restart: the new head node takes it in
    kept = Counter.options(name="kept", lifetime="detached", max_restarts=1, num_cpus=0)
    assert minray.get(kept.remote().add.remote(), timeout=BOUND_S)[0] == 1
    internal_kv._internal_kv_put(b"setting", b"kept")
    group = placement_group([{"CPU": 1}], name="group", lifetime="detached")
    doomed = placement_group([{"CPU": 1}], name="doomed", lifetime="detached")
    assert group.wait(BOUND_S) and doomed.wait(BOUND_S)
    job_id = minray.get_runtime_context().get_job_id()
    old_head = cluster.head_node
    minray.shutdown()  # (a driver connected through the head would go with it)
    cluster._connected = False

    cluster.remove_node(old_head, allow_graceful=False)
    # a driver's call through the member while the head is away waits for it
    answers: list = []
    get = KvRequest("get", b"", b"setting", None, False)
    waiting = threading.Thread(target=lambda: answers.append(ask_node(member, get)))
    waiting.start()
    # and what a driver there tells the head meanwhile reaches the restarted head
    ask_node(member, RemovePlacementGroup(doomed.id.binary()), one_way=True)
    time.sleep(1.0)
    assert member.alive(), "the member node stopped instead of waiting for the head"
    assert not answers
    started = time.monotonic()
    head = cluster.restart_head(num_cpus=1)
    waiting.join(BOUND_S)
    assert answers and answers[0].result == b"kept"
    cluster.wait_for_nodes(timeout=BOUND_S)
    assert time.monotonic() - started < BOUND_S

    view = _view(cluster)
    assert view[member.node_id]["Alive"] and view[head.node_id]["Alive"]
    assert not view[old_head.node_id]["Alive"]
    cluster.connect(namespace="restart")
    assert minray.get(minray.get_actor("counter").add.remote(), timeout=BOUND_S) == (2, pid)
    assert minray.get(minray.get_actor("kept").add.remote(), timeout=BOUND_S)[0] == 1
    assert internal_kv._internal_kv_get(b"setting") == b"kept"
    groups = {g["name"]: g for g in placement_group_table().values()}
    assert groups["group"]["state"] in ("CREATED", "RESCHEDULING", "PENDING")
    assert _wait(
        lambda: (
            {g["name"]: g for g in placement_group_table().values()}["doomed"]["state"] == "REMOVED"
        ),
        10,
        "the removal sent while the head was away",
    )
    jobs = {j["JobID"]: j for j in query_head(cluster.address, cluster.token, GetJobs()).jobs}
    assert jobs[job_id]["IsDead"]  # its driver had left (and was on the old head)
    assert len(jobs) == 2  # and the new driver's job follows it


def test_member_nodes_stop_cleanly_when_the_head_does_not_come_back_in_time(cluster, monkeypatch):
    cluster, member = cluster
    # the member read its timeout at start (30 s): a second member with a short one
    monkeypatch.setenv("MINRAY_HEAD_RECONNECT_TIMEOUT_S", "2")
    short = cluster.add_node(num_cpus=1)
    tree = process_tree(short)
    killed = time.monotonic()
    cluster.remove_node(cluster.head_node, allow_graceful=False)
    _wait(lambda: not short.alive(), 20, "the member to give up on the head")
    assert 2.0 <= time.monotonic() - killed < 20
    assert short.process.returncode == 0  # it stopped on its own, cleanly
    assert member.alive()  # still within its own 30 s
    _, alive = psutil.wait_procs(tree, timeout=10)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    assert not segments_of(short)


def test_member_nodes_stop_at_once_when_the_head_is_stopped_on_purpose(cluster):
    cluster, member = cluster
    cluster.remove_node(cluster.head_node, allow_graceful=True)
    _wait(lambda: not member.alive(), 10, "the member to stop with the head")
