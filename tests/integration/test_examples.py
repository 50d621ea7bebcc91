"""Every program in examples/ runs as a user would run it, and prints what it promises."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")


@pytest.mark.parametrize(
    "script, expected",
    [
        ("quickstart.py", "nothing is left running"),
        ("counter.py", "after 5 + 4 x 25 increments: 105"),
        ("parameter_server.py", "all parameters are 200"),
        ("sharded_parameter_server.py", "all parameters are 200"),
    ],
)
def test_example_runs_and_prints_its_result(script, expected, tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert expected in result.stdout
    assert "Traceback" not in result.stderr
