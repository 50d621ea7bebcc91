"""The dashboard: the head's tables as JSON over HTTP and a page that shows them, served
only when asked for by an embedded cluster, and never in the way of the cluster."""

from __future__ import annotations

import logging
import socket

import minray

from .cluster_helpers import wait_until
from .dashboard_helpers import dashboard  # noqa: F401 - a fixture


@minray.remote
def square(x: int) -> int:
    return x * x


@minray.remote(num_cpus=0)
class Greeter:
    def hello(self) -> str:
        return "hi"


def test_the_dashboard_serves_the_clusters_tables_and_a_page(dashboard):  # noqa: F811
    greeter = Greeter.options(name="greeter").remote()
    assert minray.get(greeter.hello.remote()) == "hi"
    assert minray.get([square.remote(i) for i in range(3)]) == [0, 1, 4]
    assert dashboard.url.startswith("http://127.0.0.1:")

    (node,) = dashboard.json("/api/nodes")
    assert node["Alive"] and node["Resources"]["CPU"] == 1.0
    (job,) = dashboard.json("/api/jobs")
    assert job["JobID"] == minray.get_runtime_context().get_job_id() and not job["IsDead"]
    actors = dashboard.json("/api/actors")
    assert [(a["name"], a["state"]) for a in actors["actors"]] == [("greeter", "ALIVE")]
    workers = dashboard.json("/api/workers")["workers"]
    assert any(w["worker_type"] == "DRIVER" for w in workers)

    def squares() -> list:
        tasks = dashboard.json("/api/tasks")["tasks"]
        return [t for t in tasks if t["name"] == "square" and t["state"] == "FINISHED"]

    assert wait_until(lambda: len(squares()) == 3)
    assert len(dashboard.json("/api/tasks?limit=1")["tasks"]) == 1
    status, _, body = dashboard.request("GET", "/api/tasks?limit=many")
    assert status == 400 and b"whole number" in body
    status, headers, page = dashboard.request("GET", "/")
    assert status == 200 and b"<title>minray dashboard</title>" in page and b"/api/tasks" in page
    assert headers["X-Frame-Options"] == "DENY"
    # not "no-referrer": a browser would then send "Origin: null" with the page's own POSTs
    # (its login form, its Profile button), and the Origin check would refuse them
    assert headers["Referrer-Policy"] == "same-origin"
    assert "/metrics" in dashboard.json("/api")["routes"]


def test_no_dashboard_unless_asked_and_a_taken_port_leaves_the_cluster_running(caplog):
    context = minray.init(num_cpus=1)
    try:
        assert context["webui_url"] is None
    finally:
        minray.shutdown()
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    said = logging.getLogger("minray.head")
    said.addHandler(caplog.handler)
    try:
        port = taken.getsockname()[1]
        context = minray.init(num_cpus=1, include_dashboard=True, dashboard_port=port)
        try:
            assert context["webui_url"] is None
            assert minray.get(square.remote(4)) == 16
        finally:
            minray.shutdown()
    finally:
        said.removeHandler(caplog.handler)
        taken.close()
    warning = [r.getMessage() for r in caplog.records if r.name == "minray.head"]
    assert any(f"127.0.0.1:{port}" in m and "dashboard_port" in m for m in warning), warning
