"""The dashboard: the head's tables as JSON over HTTP and a page that shows them, served
only when asked for by an embedded cluster, and never in the way of the cluster."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import pytest

import minray

from .cluster_helpers import wait_until


def fetch(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read().decode()
    return json.loads(body) if "/api/" in url else body


@pytest.fixture
def dashboard():
    context = minray.init(num_cpus=1, include_dashboard=True, dashboard_port=0)
    try:
        yield f"http://{context['webui_url']}"
    finally:
        minray.shutdown()


@minray.remote
def square(x: int) -> int:
    return x * x


@minray.remote(num_cpus=0)
class Greeter:
    def hello(self) -> str:
        return "hi"


def test_the_dashboard_serves_the_clusters_tables_and_a_page(dashboard):
    greeter = Greeter.options(name="greeter").remote()
    assert minray.get(greeter.hello.remote()) == "hi"
    assert minray.get([square.remote(i) for i in range(3)]) == [0, 1, 4]

    (node,) = fetch(f"{dashboard}/api/nodes")
    assert node["Alive"] and node["Resources"]["CPU"] == 1.0
    (job,) = fetch(f"{dashboard}/api/jobs")
    assert job["JobID"] == minray.get_runtime_context().get_job_id() and not job["IsDead"]
    actors = fetch(f"{dashboard}/api/actors")
    assert [(a["name"], a["state"]) for a in actors["actors"]] == [("greeter", "ALIVE")]
    assert any(w["worker_type"] == "DRIVER" for w in fetch(f"{dashboard}/api/workers")["workers"])

    def squares() -> list:
        tasks = fetch(f"{dashboard}/api/tasks")["tasks"]
        return [t for t in tasks if t["name"] == "square" and t["state"] == "FINISHED"]

    assert wait_until(lambda: len(squares()) == 3)
    assert len(fetch(f"{dashboard}/api/tasks?limit=1")["tasks"]) == 1
    with pytest.raises(urllib.error.HTTPError, match="400"):
        fetch(f"{dashboard}/api/tasks?limit=many")
    page = fetch(f"{dashboard}/")
    assert "<title>minray dashboard</title>" in page and "/api/tasks" in page


def test_no_dashboard_unless_asked_and_a_taken_port_leaves_the_cluster_running():
    context = minray.init(num_cpus=1)
    try:
        assert context["webui_url"] is None
    finally:
        minray.shutdown()
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        context = minray.init(num_cpus=1, include_dashboard=True, dashboard_port=port)
        try:
            assert context["webui_url"] is None
            assert minray.get(square.remote(4)) == 16
        finally:
            minray.shutdown()
    finally:
        taken.close()
