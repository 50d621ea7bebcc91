"""minray.microbenchmark.timeit: Ray's output line and row filter."""

import re

from minray.microbenchmark import timeit


def test_timeit_prints_rays_line_with_the_multiplier_applied(capsys):
    name, mean, std = timeit("noop row", lambda: None, multiplier=10, trials=2, trial_seconds=0.01)
    line = capsys.readouterr().out.strip()
    assert re.fullmatch(r"noop row per second [0-9.]+ \+- [0-9.]+", line)
    assert name == "noop row" and mean > 10 and std >= 0


def test_tests_to_run_skips_rows_that_do_not_match(capsys, monkeypatch):
    monkeypatch.setenv("TESTS_TO_RUN", "tasks")
    assert timeit("single client get calls", lambda: None, trials=1, trial_seconds=0.01) is None
    assert capsys.readouterr().out == ""
