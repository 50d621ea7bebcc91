"""What each kind of process loads: ``import minray`` and the CLI's quick commands do not
load the web server (aiohttp and the dashboard's routes load only in a process that serves
the dashboard), the node does not load the driver's API, and any public module can be the
first one imported."""

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


# modules a program, an unpickled function or `import ray.X` under compat may load first
FIRST_IMPORTS = [
    "minray.remote_function",
    "minray.actor",
    "minray.api",
    "minray.object_ref",
    "minray.runtime_context",
    "minray.util",
    "minray.cluster_utils",
    "minray.job_submission",
    "minray.runtime.worker_main",
    "minray.node.main",
]


@pytest.mark.parametrize("module", FIRST_IMPORTS)
def test_a_module_imports_first_in_a_fresh_interpreter(module):
    """The package loads its names lazily, so no import order is set for it any more: an
    import cycle (remote_function <-> api) once broke `import minray.remote_function`."""
    subprocess.run([sys.executable, "-c", f"import {module}"], timeout=60, check=True)


def test_the_node_process_does_not_load_the_driver_api():
    """A node forks its zygote, then loads only the node: the driver's API (and with it
    the task submitter, the local mode, the state queries) stays out of it."""
    probe = (
        "import sys, minray.node.main, minray.node.daemon; "
        "print(' '.join(m for m in ('minray.api', 'minray.runtime.core_worker', "
        "'minray.runtime.local_mode') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert loaded == []
