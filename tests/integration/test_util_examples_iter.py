"""The parallel-iterator and ActorPool/Queue examples run as a user would run them."""

from __future__ import annotations

import os
import subprocess
import sys

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")


def run_example(script, tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result.stdout


def test_the_parallel_iterators_example_trains_on_every_shard(tmp_path):
    out = run_example("parallel_iterators.py", tmp_path)
    assert "shard 0: 13 steps over 50 items" in out
    assert "shard 1: 13 steps over 50 items" in out
    assert "gather_sync: [0, 100, 2, 102, 4, 104]" in out
    assert "gather_async: [0, 2, 4, 6, 8]" in out
    assert "repartition: [[0, 4, 3, 7], [1, 5], [2, 6]]" in out
    assert "repeat=True, first 7: [0, 1, 2, 0, 1, 2, 0]" in out


def test_the_actor_pool_and_queue_example_prints_its_results(tmp_path):
    out = run_example("actor_pool_queue.py", tmp_path)
    assert "pool.map: [0, 10, 20, 30, 40, 50, 60, 70]" in out
    assert "unordered: [10, 20, 30]" in out
    assert "consumer summed: 4950" in out
    assert "queue is empty at the end" in out
