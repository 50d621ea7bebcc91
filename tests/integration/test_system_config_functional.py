"""_system_config in init() and cluster_utils.Cluster: Ray's health-check keys reach the nodes."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

import minray
from minray import api
from minray.cluster_utils import Cluster
from tests.conftest import assert_cleaned_up, runtime_processes
from tests.integration.cluster_helpers import process_tree
from tests.integration.test_cluster_functional import assert_gone, death_reason, wait_for

#: a node that misses 5 heartbeats of 0.2 s, the last with 0.5 s to arrive, is dead (1.5 s)
FAST = {
    "health_check_period_ms": 200,
    "health_check_failure_threshold": 5,
    "health_check_timeout_ms": 500,
    "health_check_initial_delay_ms": 0,
}
FAST_ENV = {"MINRAY_HEARTBEAT_INTERVAL_S": "0.2", "MINRAY_NODE_DEATH_TIMEOUT_S": "1.5"}


def settings_of(pid: int) -> dict:
    environ = psutil.Process(pid).environ()
    return {name: environ.get(name) for name in FAST_ENV}


@pytest.fixture
def no_minray_env(monkeypatch):
    for name in (*FAST_ENV, "MINRAY_IDLE_WORKER_TIMEOUT_S"):
        monkeypatch.delenv(name, raising=False)


def test_a_cluster_with_rays_health_check_settings_sees_a_hung_node_die_fast(no_minray_env):
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "_system_config": FAST})
    started = list(cluster.list_all_nodes())
    processes = process_tree(cluster.head_node)
    try:
        idle = {"idle_worker_killing_time_threshold_ms": 500}
        node = cluster.add_node(num_cpus=1, _system_config=idle)
        started.append(node)
        node_procs = process_tree(node)
        processes += node_procs
        assert settings_of(cluster.head_node.pid) == FAST_ENV
        assert settings_of(node.pid) == FAST_ENV  # the head's settings reach every node
        assert psutil.Process(node.pid).environ()["MINRAY_IDLE_WORKER_TIMEOUT_S"] == "0.5"
        with pytest.raises(ValueError, match="_system_config must not be provided"):
            minray.init(address=cluster.address, _system_config=FAST, _token=cluster.token)
        os.kill(node.pid, signal.SIGSTOP)  # its connection stays open: only silence tells
        try:
            stopped_at = time.monotonic()
            assert "no heartbeat" in death_reason(cluster, node, 10)
            assert time.monotonic() - stopped_at < 6  # minray's default timeout is 10 s
        finally:
            os.kill(node.pid, signal.SIGCONT)
        wait_for(lambda: not node.alive(), 15, "the dead node to stop")
        cluster.worker_nodes.remove(node)
    finally:
        cluster.shutdown()
    assert_gone(processes, started)


def test_add_node_refuses_a_system_config_that_is_not_a_dict():
    cluster = Cluster()
    with pytest.raises(TypeError, match="_system_config of add_node\\(\\) must be a dict"):
        cluster.add_node(_system_config="health_check_period_ms=100")
    assert cluster.head_node is None


def test_init_passes_the_settings_to_its_node_and_warns_about_the_rest(no_minray_env, minray_log):
    with pytest.raises(TypeError, match="must be a dict"):
        minray.init(num_cpus=1, _system_config=[("health_check_period_ms", 100)])
    assert not minray.is_initialized()
    minray.init(num_cpus=1, _system_config={**FAST, "an_unknown_ray_key_for_init": 1})
    session_dir = api._state.session_dir
    try:
        assert settings_of(api._state.node_process.pid) == FAST_ENV
        assert minray.get(minray.put(3)) == 3
        assert "'an_unknown_ray_key_for_init'" in minray_log.text and "ignored" in minray_log.text
    finally:
        started = runtime_processes()
        minray.shutdown()
    assert_cleaned_up(started, session_dir)
