"""Shared fixtures: a fresh local cluster per test, checked for leaks afterwards."""

from __future__ import annotations

import logging
import os
import time

import psutil
import pytest

import minray
from minray import api


def runtime_processes() -> list[psutil.Process]:
    """The node process and everything it started (zygote, workers)."""
    process = api._state.node_process
    if process is None:
        return []
    try:
        node = psutil.Process(process.pid)
        return [node, *node.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def session_segments(session_dir: str) -> list[str]:
    tag = os.path.basename(session_dir)[-6:]
    return [name for name in os.listdir("/dev/shm") if name.startswith("minray_" + tag)]


def assert_cleaned_up(processes: list[psutil.Process], session_dir: str) -> None:
    deadline = time.monotonic() + 5
    alive = processes
    while time.monotonic() < deadline:
        alive = [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not alive:
            break
        time.sleep(0.02)
    assert not alive, f"processes outlived the cluster: {alive}"
    assert not os.path.exists(session_dir), f"session directory left behind: {session_dir}"
    assert not session_segments(session_dir), "shared-memory segments left behind"


def _start(num_cpus: float = 2, **kwargs):
    minray.init(num_cpus=num_cpus, **kwargs)
    session_dir = api._state.session_dir
    yield session_dir
    processes = runtime_processes()
    minray.shutdown()
    assert_cleaned_up(processes, session_dir)


@pytest.fixture
def cluster(request):
    """A local cluster; parametrize indirectly with a dict of init() arguments to change it."""
    kwargs = dict(getattr(request, "param", None) or {})
    yield from _start(**kwargs)


@pytest.fixture
def cluster_1cpu():
    yield from _start(num_cpus=1)


@pytest.fixture
def minray_log(caplog):
    """caplog that also sees the "minray" logger (which does not propagate to the root)."""
    logger = logging.getLogger("minray")
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


def pytest_terminal_summary(terminalreporter) -> None:
    """With ``--reruns`` (``make test``): how each test that was run again failed first."""
    reruns = terminalreporter.stats.get("rerun", [])
    if reruns:
        terminalreporter.section("failed, then run again")
        for report in reruns:
            terminalreporter.line(f"{report.nodeid}:\n{report.longreprtext}\n")
