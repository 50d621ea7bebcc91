"""The pattern examples (task chains, map-reduce, a tree of tasks, leader election) run as
a user runs them and end with the line they promise."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


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
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert result.stdout.splitlines()[-1] == last_line, result.stdout


def test_leader_election_needs_the_timeout(tmp_path):
    """Term 1 ends at the election timeout, with no leader, although node 4 never answers."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "leader_election.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    match = re.fullmatch(r"term 1: node 0 got 2 of 5 votes in ([0-9.]+) s -> no leader", lines[0])
    assert match, lines[0]
    assert 0.45 <= float(match.group(1)) < 1.5, "term 1 ends at the 0.5 s election timeout"
    assert lines[1].startswith("term 2: node 1 got 3 of 5 votes in ")
    assert lines[1].endswith("-> elected leader")
