"""``import minray`` and the CLI's quick commands do not load the web server: aiohttp and
the dashboard's routes load only in a process that serves the dashboard."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("aiohttp", "minray.head.dashboard")


@pytest.mark.parametrize("module", ["minray", "minray.cli", "minray.util.state"])
def test_importing_minray_does_not_load_the_dashboard(module):
    probe = f"import sys, {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert loaded == [], f"import {module} loaded {loaded}"
