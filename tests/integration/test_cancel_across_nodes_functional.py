"""cancel(ref) of a task whose child runs on another node (127.0.0.2, over TCP): the child
is interrupted (recursive=True) or runs on (recursive=False); the worker that ran the
cancelled task lives on."""

from __future__ import annotations

import os
import time

import psutil
import pytest

import minray
from minray.exceptions import TaskCancelledError

from .cluster_helpers import two_node_cluster, wait_until
from .test_cancel_functional import mark, started_pid


@pytest.fixture
def two_nodes():
    yield from two_node_cluster(
        {"num_cpus": 1, "resources": {"far": 1}, "node_ip_address": "127.0.0.2"}
    )


@minray.remote(resources={"far": 1})
def far_sleep(folder: str, seconds: float) -> str:
    mark(folder, "started", str(os.getpid()))
    try:
        time.sleep(seconds)
        mark(folder, "slept")
    finally:
        mark(folder, "ended")
    return minray.get_runtime_context().get_node_id()


@minray.remote
def near_parent(folder: str, seconds: float) -> str:
    mark(folder, "parent", str(os.getpid()))
    return minray.get(far_sleep.remote(folder, seconds))


@pytest.mark.parametrize("recursive", [True, False])
def test_cancel_reaches_a_child_on_another_node_only_if_recursive(two_nodes, tmp_path, recursive):
    cluster, node = two_nodes
    folder = str(tmp_path)
    top = near_parent.remote(folder, 30 if recursive else 2)
    started_pid(folder)
    minray.cancel(top, recursive=recursive)
    with pytest.raises(TaskCancelledError):
        minray.get(top, timeout=15)
    if recursive:
        assert wait_until(lambda: os.path.exists(os.path.join(folder, "ended")))
        assert not os.path.exists(os.path.join(folder, "slept"))
    else:
        assert wait_until(lambda: os.path.exists(os.path.join(folder, "slept")))
    with open(os.path.join(folder, "parent")) as f:
        assert psutil.pid_exists(int(f.read())), "the cancelled task's worker lives on"
