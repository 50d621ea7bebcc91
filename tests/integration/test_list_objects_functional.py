"""list_objects / `minray list objects`: a row per process and object it references,
with Ray's ObjectState columns, on one node and across two."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import minray
from minray.util import state

from .cluster_helpers import two_node_cluster

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@minray.remote(num_cpus=0, max_concurrency=4)
class Gate:
    """Holds the tasks below until the test has looked."""

    def __init__(self):
        self.event = threading.Event()

    def wait(self) -> bool:
        return self.event.wait(30)

    def open(self) -> None:
        self.event.set()


@minray.remote
def hold(refs: list, gate) -> int:
    """Borrows refs[0] (nested: it arrives as a ref) while the gate is shut."""
    minray.get(gate.wait.remote())
    return len(refs)


def rows_of(object_id: str) -> list:
    return [r for r in state.list_objects(limit=10_000, detail=True) if r.object_id == object_id]


def test_owners_and_borrowers_each_list_the_objects_they_reference(cluster):
    big = minray.put(np.zeros(1_000_000))  # in shared memory
    small = minray.put("small")
    gate = Gate.remote()
    held = hold.remote([big], gate)
    deadline = 50
    while deadline and len(rows_of(big.hex())) < 2:  # the worker has deserialized it
        deadline -= 1
        minray.wait([held], timeout=0.1)
    owner, borrower = sorted(rows_of(big.hex()), key=lambda r: r.type)  # DRIVER, WORKER
    assert owner.type == "DRIVER" and owner.pid == os.getpid()
    assert owner.object_size >= 8_000_000 and owner.task_status == "FINISHED"
    assert owner.reference_type == "LOCAL_REFERENCE"
    assert owner.stored_on_node == minray.get_runtime_context().get_node_id()
    assert borrower.type == "WORKER" and borrower.pid != os.getpid()
    assert borrower.object_size == -1 and borrower.task_status == "NIL"  # the owner knows
    (small_row,) = rows_of(small.hex())
    assert small_row.object_size > 0 and small_row.call_site == "disabled"
    (pending,) = rows_of(held.hex())
    assert pending.task_status in ("PENDING_NODE_ASSIGNMENT", "SUBMITTED_TO_WORKER")
    gate.open.remote()
    assert minray.get(held, timeout=30) == 1
    (done,) = rows_of(held.hex())
    assert done.task_status == "FINISHED"
    filtered = state.list_objects(filters=[("object_id", "=", small.hex())])
    assert [r.object_id for r in filtered] == [small.hex()]
    assert filtered[0].node_id is None  # a detail column
    with pytest.raises(ValueError, match="not a column of ObjectState"):
        state.list_objects(filters=[("colour", "=", "red")])
    (fetched,) = state.get_objects(small.hex())
    assert fetched.owner is not None


def test_minray_list_objects_in_a_terminal(cluster):
    kept = minray.put(b"x" * 200_000)
    out = subprocess.run(
        [sys.executable, "-m", "minray.cli", "list", "objects", "--format", "json"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k not in ("MINRAY_ADDRESS", "RAY_ADDRESS")},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert any(r["object_id"] == kept.hex() and r["object_size"] >= 200_000 for r in rows)


@pytest.fixture
def two_nodes(monkeypatch):
    monkeypatch.setenv("MINRAY_HEARTBEAT_INTERVAL_S", "0.2")
    yield from two_node_cluster({"num_cpus": 1, "resources": {"far": 1}})


@minray.remote(resources={"far": 1})
def make_there() -> np.ndarray:
    return np.ones(200_000)


def test_objects_are_listed_from_every_node(two_nodes):
    cluster, node = two_nodes
    ref = make_there.remote()
    minray.wait([ref], timeout=30)
    (row,) = rows_of(ref.hex())
    assert row.stored_on_node == node.node_id  # made there, owned here
    assert row.node_id == cluster.head_node.node_id
