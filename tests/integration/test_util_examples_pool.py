"""The Pool and joblib examples run as a user would run them, and print what they promise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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
