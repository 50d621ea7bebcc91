"""Every program in examples/ runs as a user would run it, and prints what it promises."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(script: str, tmp_path: Path, timeout: float = 120) -> str:
    """Run ``examples/<script>`` from an empty directory; its stdout, once it succeeded."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result.stdout


@pytest.mark.parametrize(
    "script, expected",
    [
        ("quickstart.py", ["nothing is left running"]),
        (
            "cluster_demo.py",
            [
                "3 nodes, 3 CPUs",
                "a task that needs big_disk ran on node 3 (big_disk)",
                "node 2 is dead: its connection to the head closed",
            ],
        ),
        ("counter.py", ["after 5 + 4 x 25 increments: 105"]),
        ("parameter_server.py", ["all parameters are 200"]),
        ("sharded_parameter_server.py", ["all parameters are 200"]),
        (
            "parallel_iterators.py",
            [
                "shard 0: 13 steps over 50 items",
                "shard 1: 13 steps over 50 items",
                "gather_sync: [0, 100, 2, 102, 4, 104]",
                "gather_async: [0, 2, 4, 6, 8]",
                "repartition: [[0, 4, 3, 7], [1, 5], [2, 6]]",
                "repeat=True, first 7: [0, 1, 2, 0, 1, 2, 0]",
            ],
        ),
        (
            "actor_pool_queue.py",
            [
                "pool.map: [0, 10, 20, 30, 40, 50, 60, 70]",
                "unordered: [10, 20, 30]",
                "consumer summed: 4950",
                "queue is empty at the end",
            ],
        ),
    ],
)
def test_example_runs_and_prints_its_results(script, expected, tmp_path):
    out = run_example(script, tmp_path)
    for line in expected:
        assert line in out


@pytest.mark.parametrize(
    "script, last_line",
    [
        ("task_chains.py", "chain finished: every element is 200 (expected 200)"),
        (
            "word_count.py",
            "word count: 197 words, 100 distinct, matches a local count: True",
        ),
        (
            "tree_of_tasks.py",
            "sum of range(1000000) by a tree of 15 tasks: 499999500000 (correct)",
        ),
        ("leader_election.py", "leader: node 1, term 2"),
    ],
)
def test_pattern_example_prints_its_result(script, last_line, tmp_path):
    out = run_example(script, tmp_path, timeout=50)
    assert out.splitlines()[-1] == last_line, out


def test_leader_election_needs_the_timeout(tmp_path):
    """Term 1 ends at the election timeout, with no leader, although node 4 never answers."""
    lines = run_example("leader_election.py", tmp_path, timeout=50).splitlines()
    match = re.fullmatch(r"term 1: node 0 got 2 of 5 votes in ([0-9.]+) s -> no leader", lines[0])
    assert match, lines[0]
    assert 0.45 <= float(match.group(1)) < 1.5, "term 1 ends at the 0.5 s election timeout"
    assert lines[1].startswith("term 2: node 1 got 3 of 5 votes in ")
    assert lines[1].endswith("-> elected leader")


def test_the_pool_example_prints_the_mapped_values(tmp_path):
    out = run_example("pool.py", tmp_path)
    lines = out.splitlines()
    assert lines[:100] == [str(i) for i in range(100)]
    assert "squares: [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]" in out
    assert "starmap: [32, 27]" in out
    assert "imap in order: [0, 1, 2, 3, 4]" in out
    assert "async: 6" in out
    assert "100,000 items, summed: 5000050000" in out


def test_the_joblib_example_prints_the_best_params(tmp_path):
    pytest.importorskip("joblib")
    pytest.importorskip("sklearn")
    out = run_example("joblib_sklearn.py", tmp_path)
    assert (
        "best params: {'C': 1000000.0, 'class_weight': None, 'gamma': 7.278953843983146e-05," in out
    )
    assert "best cross-validated accuracy: 0.9" in out
