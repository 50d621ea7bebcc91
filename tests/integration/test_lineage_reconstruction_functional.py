"""Lineage reconstruction across nodes (cluster_utils.Cluster on loopback): a task's
result whose only copy died with its node is rebuilt by running the task again, its
freed arguments first; what cannot be rebuilt raises Ray's error for why. A rebuild is
shown: list_objects and the dashboard count it, list_tasks marks the re-run attempt."""

from __future__ import annotations

import os
import time

import numpy as np
import psutil
import pytest

import minray
from minray.cluster_utils import Cluster
from minray.exceptions import (
    ObjectLostError,
    ObjectReconstructionFailedLineageEvictedError,
    ObjectReconstructionFailedMaxAttemptsExceededError,
)
from minray.util import state

from .cluster_helpers import process_tree, wait_until
from .dashboard_helpers import Dashboard
from .test_cluster_functional import assert_gone

MB = 1024 * 1024


@pytest.fixture
def cluster(monkeypatch, request):
    """A head (the driver's node, no "far" resource) and one node with the "far" resource
    on which the tasks run; the test kills that node and adds another like it. Parametrize
    indirectly with more arguments for the head."""
    monkeypatch.setenv("MINRAY_HEARTBEAT_INTERVAL_S", "0.2")
    monkeypatch.setenv("MINRAY_NODE_DEATH_TIMEOUT_S", "1.5")
    head = {"num_cpus": 1, **(getattr(request, "param", None) or {})}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    started = list(cluster.list_all_nodes())
    processes = process_tree(cluster.head_node)
    far = cluster.add_node(num_cpus=1, resources={"far": 1})
    started.append(far)
    cluster.connect()
    yield cluster, far, started
    minray.shutdown()
    for node in cluster.list_all_nodes():
        processes += process_tree(node)
    cluster.shutdown()
    assert_gone(processes, started)


def kill_and_replace(cluster, node, started) -> None:
    """The node crashes (its segments go with it); a node like it joins."""
    procs = process_tree(node)
    cluster.remove_node(node, allow_graceful=False)
    psutil.wait_procs(procs, timeout=10)
    started.append(cluster.add_node(num_cpus=1, resources={"far": 1}))


def runs(folder, name: str) -> int:
    path = os.path.join(folder, name)
    return os.path.getsize(path) if os.path.exists(path) else 0


@minray.remote(resources={"far": 0.5})
def make(folder: str, seed: int) -> np.ndarray:
    with open(os.path.join(folder, f"make{seed}"), "a") as f:
        f.write("x")
    return np.full(MB // 8, seed, dtype=np.int64)  # 1 MiB: in shared memory on its node


@minray.remote(resources={"far": 0.5})
def double(folder: str, a: np.ndarray) -> np.ndarray:
    with open(os.path.join(folder, "double"), "a") as f:
        f.write("x")
    return a * 2


def test_a_result_lost_with_its_node_is_rebuilt_by_running_its_task_again(cluster, tmp_path):
    cluster, far, started = cluster
    ref = make.remote(str(tmp_path), 7)
    minray.wait([ref], timeout=30)
    assert runs(tmp_path, "make7") == 1
    kill_and_replace(cluster, far, started)
    value = minray.get(ref, timeout=60)
    assert value.shape == (MB // 8,) and (value == 7).all()
    assert runs(tmp_path, "make7") == 2


def test_a_freed_argument_is_rebuilt_before_the_task_that_needs_it(cluster, tmp_path):
    cluster, far, started = cluster
    a = make.remote(str(tmp_path), 3)
    b = double.remote(str(tmp_path), a)
    minray.wait([b], timeout=30)
    del a  # its value is freed; its task is kept while b may need it
    kill_and_replace(cluster, far, started)
    assert (minray.get(b, timeout=60) == 6).all()
    assert runs(tmp_path, "make3") == 2 and runs(tmp_path, "double") == 2


def test_a_task_submitted_after_the_loss_waits_for_the_rebuilt_argument(cluster, tmp_path):
    cluster, far, started = cluster
    a = make.remote(str(tmp_path), 5)
    minray.wait([a], timeout=30)
    kill_and_replace(cluster, far, started)
    assert (minray.get(double.remote(str(tmp_path), a), timeout=60) == 10).all()
    assert runs(tmp_path, "make5") == 2


def test_a_borrower_reading_a_lost_object_gets_the_rebuilt_value(cluster, tmp_path):
    cluster, far, started = cluster
    a = make.remote(str(tmp_path), 4)
    minray.wait([a], timeout=30)
    kill_and_replace(cluster, far, started)

    @minray.remote(num_cpus=0)
    def total(refs: list) -> int:  # on the head node: reads through the owner
        return int(minray.get(refs[0]).sum())

    assert minray.get(total.remote([a]), timeout=60) == 4 * (MB // 8)


def test_a_task_with_max_retries_0_cannot_be_rebuilt(cluster, tmp_path):
    cluster, far, started = cluster
    ref = make.options(max_retries=0).remote(str(tmp_path), 1)
    minray.wait([ref], timeout=30)
    kill_and_replace(cluster, far, started)
    with pytest.raises(ObjectReconstructionFailedMaxAttemptsExceededError, match="max_retries"):
        minray.get(ref, timeout=60)


def test_an_actor_calls_lost_result_is_not_rebuilt(cluster, tmp_path):
    cluster, far, started = cluster

    @minray.remote(resources={"far": 0.5})
    class Maker:
        def make(self) -> np.ndarray:
            return np.ones(MB // 8)

    maker = Maker.remote()
    ref = maker.make.remote()
    minray.wait([ref], timeout=30)
    kill_and_replace(cluster, far, started)
    with pytest.raises(ObjectLostError, match="actor call"):
        minray.get(ref, timeout=60)


def test_a_task_whose_lineage_was_evicted_says_so(cluster, tmp_path):
    cluster, far, started = cluster
    lineage = minray.api._state.worker.lineage
    lineage.budget = 1  # nothing fits: each finished task is dropped as soon as kept
    try:
        ref = make.remote(str(tmp_path), 2)
        minray.wait([ref], timeout=30)
        assert ref.binary()[:24] not in lineage.kept
    finally:
        lineage.budget = 1 << 30
    kill_and_replace(cluster, far, started)
    with pytest.raises(ObjectReconstructionFailedLineageEvictedError, match="max_lineage_bytes"):
        minray.get(ref, timeout=60)
    assert runs(tmp_path, "make2") == 1


def test_lineage_goes_with_the_objects_it_could_rebuild(cluster, tmp_path):
    cluster, far, started = cluster
    lineage = minray.api._state.worker.lineage
    a = make.remote(str(tmp_path), 1)
    b = double.remote(str(tmp_path), a)
    minray.wait([b], timeout=30)
    assert len(lineage.kept) == 2
    del a
    assert len(lineage.kept) == 2  # b may need a rebuilt
    del b
    deadline = time.monotonic() + 10
    while lineage.kept and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not lineage.kept and lineage.used == 0


def dashboard_of(node) -> Dashboard:
    with open(os.path.join(node.session_dir, "dashboard_url")) as f:
        host, port = f.read().strip().rsplit(":", 1)
    with open(os.path.join(node.session_dir, "token"), "rb") as f:
        token = f.read().hex()
    return Dashboard(host, int(port), token, node.session_dir)


@pytest.mark.parametrize(
    "cluster", [{"include_dashboard": True, "dashboard_port": 0}], indirect=True
)
def test_a_rebuilt_object_and_the_rerun_of_its_task_are_shown_as_a_reconstruction(
    cluster, tmp_path
):
    cluster, far, started = cluster
    ref = make.remote(str(tmp_path), 5)
    minray.wait([ref], timeout=30)
    mine = [("object_id", "=", ref.hex())]
    assert [row.reconstructions for row in state.list_objects(filters=mine)] == [0]
    kill_and_replace(cluster, far, started)
    assert minray.get(ref, timeout=60)[0] == 5 and runs(tmp_path, "make5") == 2

    assert [row.reconstructions for row in state.list_objects(filters=mine)] == [1]
    shown = dashboard_of(cluster.head_node).json("/api/objects")["objects"]
    assert [o["reconstructions"] for o in shown if o["object_id"] == ref.hex()] == [1]

    task = ref.task_id().hex()

    def attempts() -> dict:
        rows = state.list_tasks(filters=[("task_id", "=", task)])
        return {row.attempt_number: row for row in rows}

    assert wait_until(lambda: attempts().get(1) and attempts()[1].state == "FINISHED", 10)
    runs_of = attempts()
    assert runs_of[0].attempt_reason is None  # the first run
    assert runs_of[1].attempt_reason == "RECONSTRUCTION"
