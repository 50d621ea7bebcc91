"""Chaos: 10,020 tasks with intermediate objects on a 2-node cluster, while a random
worker is killed every 0.5 s and the second node is killed once mid-run. Every final
result must be right, and afterwards nothing may be left behind (processes, /dev/shm
segments, session directories). Bounded: the run gives up after CHAOS_DEADLINE_S."""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import numpy as np
import psutil
import pytest

import minray
from minray.cluster_utils import Cluster
from minray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from .cluster_helpers import process_tree
from .test_cluster_functional import assert_gone

WAVES = 10
PER_WAVE = 334  #: produce -> double -> consume each: 10 x 334 x 3 = 10,020 tasks
KILL_EVERY_S = 0.5
CHAOS_DEADLINE_S = 150
INTS = 16_384  #: 128 KiB arrays: in shared memory on the node that made them


@minray.remote(max_retries=-1)
def produce(i: int) -> np.ndarray:
    return np.full(INTS + i % 7, i, dtype=np.int64)


@minray.remote(max_retries=-1)
def double(array: np.ndarray) -> np.ndarray:
    return array * 2


@minray.remote(max_retries=-1)
def consume(array: np.ndarray) -> int:
    return int(array.sum())


def workers_of(node) -> list[psutil.Process]:
    """The node's worker processes: the children of its zygote (the node's children)."""
    try:
        return [w for z in psutil.Process(node.pid).children() for w in z.children()]
    except psutil.NoSuchProcess:
        return []


class Killer(threading.Thread):
    """Kills a random worker of a live node every ``KILL_EVERY_S`` until stopped."""

    def __init__(self, nodes: list):
        super().__init__(daemon=True)
        self.nodes = nodes
        self.kills = 0
        self.stop = threading.Event()
        self.rng = random.Random(7)

    def run(self) -> None:
        deadline = time.monotonic() + CHAOS_DEADLINE_S
        while not self.stop.wait(KILL_EVERY_S) and time.monotonic() < deadline:
            workers = [w for node in list(self.nodes) for w in workers_of(node)]
            if not workers:
                continue
            victim = self.rng.choice(workers)
            try:
                victim.send_signal(signal.SIGKILL)
                self.kills += 1
            except psutil.NoSuchProcess:
                pass


@pytest.fixture
def two_nodes(monkeypatch):
    monkeypatch.setenv("MINRAY_HEARTBEAT_INTERVAL_S", "0.2")
    monkeypatch.setenv("MINRAY_NODE_DEATH_TIMEOUT_S", "1.5")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    second = cluster.add_node(num_cpus=2)
    started = [cluster.head_node, second]
    processes = process_tree(cluster.head_node) + process_tree(second)
    cluster.connect()
    yield cluster, second
    minray.shutdown()
    for node in cluster.list_all_nodes():
        processes += process_tree(node)
    cluster.shutdown()
    assert_gone(processes, started)


def test_every_result_is_right_while_workers_and_a_node_are_killed(two_nodes, capsys):
    cluster, second = two_nodes
    worker = minray.api._state.worker
    killer = Killer([cluster.head_node, second])
    on_second = NodeAffinitySchedulingStrategy(second.node_id, soft=True)
    start = time.monotonic()
    killer.start()
    results: list = []
    try:
        for wave in range(WAVES):
            first = wave * PER_WAVE
            arrays = [produce.remote(i) for i in range(first, first + PER_WAVE)]
            crash = wave == WAVES // 2  # mid-run: the second node crashes, with its objects
            # In that wave, half of the doubles prefer the second node (soft: elsewhere
            # once it is dead), so it surely dies holding some of the wave's objects.
            to_second = double.options(scheduling_strategy=on_second) if crash else double
            doubled = [(to_second if n % 2 else double).remote(a) for n, a in enumerate(arrays)]
            if crash:
                minray.wait(doubled, num_returns=len(doubled), timeout=CHAOS_DEADLINE_S)
                del arrays  # freed: a lost doubled array needs its produce run again first
                killer.nodes.remove(second)
                cluster.remove_node(second, allow_graceful=False)
            sums = [consume.remote(d) for d in doubled]
            left = CHAOS_DEADLINE_S - (time.monotonic() - start)
            results += minray.get(sums, timeout=max(left, 1))
            del doubled, sums
    finally:
        killer.stop.set()
        killer.join(5)
    elapsed = time.monotonic() - start
    expected = [2 * i * (INTS + i % 7) for i in range(WAVES * PER_WAVE)]
    assert results == expected
    with capsys.disabled():
        print(
            f"\nchaos: {3 * WAVES * PER_WAVE} tasks in {elapsed:.1f} s; "
            f"{killer.kills} workers killed, one node killed; "
            f"{worker.submitter.retried} task retries, "
            f"{worker.rebuilt['tasks']} tasks run again to rebuild "
            f"{worker.rebuilt['objects']} lost objects"
        )
    assert killer.kills > 0
    assert worker.rebuilt["objects"] > 0, "the node died with none of the wave's objects"
    assert os.path.exists(cluster.head_node.session_dir)
