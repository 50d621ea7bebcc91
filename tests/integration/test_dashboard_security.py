"""Who may use the dashboard, as an attacker and a user would try it: the token (Bearer
or the login cookie), DNS rebinding (Host), cross-site requests and WebSocket hijacking
(Origin), oversized bodies, unknown paths, and /metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse

from prometheus_client.parser import text_string_to_metric_families

import minray
from minray.cluster_utils import Cluster

from .cluster_helpers import wait_until
from .dashboard_helpers import (
    Dashboard,
    dashboard,  # noqa: F401 - a fixture
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EVERY_ROUTE = ["/", "/api", "/api/nodes", "/api/jobs", "/api/tasks", "/api/actors",
               "/api/workers", "/api/placement_groups", "/metrics",
               "/api/version", "/api/jobs/", "/graph", "/api/graph",
               "/api/graph/events", "/api/objects", "/api/timeline", "/timeline",
               "/api/timeline/slices"]  # fmt: skip
#: the job API's routes of one job (head/job_routes.py), asked with a job id that is
#: unknown, and of a runtime_env package (head/package_routes.py)
JOB_ROUTES = [("GET", "/api/jobs/{id}"), ("GET", "/api/jobs/{id}/logs"),
              ("GET", "/api/jobs/{id}/logs/tail"), ("POST", "/api/jobs/{id}/stop"),
              ("DELETE", "/api/jobs/{id}"), ("GET", "/api/packages/{protocol}/{name}"),
              ("PUT", "/api/packages/{protocol}/{name}")]  # fmt: skip
#: routes about one actor or worker (test_profile_functional.py and
#: test_dashboard_views_functional.py try them without the token)
PROFILE_ROUTES = ["/api/actors/{id}/stack", "/api/actors/{id}/profile",
                  "/api/workers/{id}/stack", "/api/workers/{id}/profile",
                  "/api/logs/{node_id}/{worker_id}"]  # fmt: skip
#: routes whose answer never ends (test_graph_functional.py reads them with the token)
STREAMS = {"/api/graph/events"}


def error_of(body: bytes) -> str:
    return json.loads(body)["error"]


def test_every_route_needs_the_token(dashboard):  # noqa: F811
    for path in EVERY_ROUTE:
        status, _, body = dashboard.request("GET", path, token=False)
        assert status == 401 and "Bearer" in error_of(body), path
        wrong = {"Authorization": "Bearer " + "0" * len(dashboard.token)}
        status, _, body = dashboard.request("GET", path, headers=wrong, token=False)
        assert status == 403 and error_of(body) == "wrong cluster token", path
        if path in STREAMS:
            continue
        status, _, _ = dashboard.request("GET", path)
        assert status == 200, path
    for method, path in JOB_ROUTES:
        where = path.format(id="x", protocol="gcs", name="_ray_pkg_" + "0" * 16 + ".zip")
        status, _, body = dashboard.request(method, where, token=False)
        assert status == 401 and "Bearer" in error_of(body), path
        status, _, _ = dashboard.request(method, where)
        assert status in (400, 404), path  # past the checks: no job x, no package, no body
    job_paths = sorted({path for _, path in JOB_ROUTES})
    routes = EVERY_ROUTE + job_paths + PROFILE_ROUTES + ["/login"]
    assert dashboard.json("/api")["routes"] == sorted(routes)


def test_a_browser_logs_in_with_the_token_and_gets_a_strict_http_only_cookie(dashboard):  # noqa: F811
    status, headers, _ = dashboard.request("GET", "/", {"Accept": "text/html"}, token=False)
    assert status == 302 and headers["Location"] == "/login"
    status, headers, page = dashboard.request("GET", "/login", token=False)
    assert status == 200 and b'name="token"' in page
    # (no-referrer would make a browser send "Origin: null" with the form, refused as foreign)
    assert headers["Referrer-Policy"] == "same-origin"
    form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": dashboard.url}
    wrong = urllib.parse.urlencode({"token": "00" * 32})
    status, headers, page = dashboard.request("POST", "/login", form, wrong, token=False)
    assert status == 403 and b"not this cluster" in page and "Set-Cookie" not in headers
    good = urllib.parse.urlencode({"token": dashboard.token})
    status, headers, _ = dashboard.request("POST", "/login", form, good, token=False)
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and dashboard.token not in cookie
    sent = {"Cookie": cookie.split(";")[0]}
    status, _, page = dashboard.request("GET", "/", sent, token=False)
    assert status == 200 and b"<title>minray dashboard</title>" in page
    assert dashboard.json("/api/nodes", headers=sent, token=False)[0]["Alive"]
    status, _, _ = dashboard.request(
        "GET", "/api/nodes", {"Cookie": "minray_dashboard=x"}, token=False
    )
    assert status == 403


def test_a_host_the_dashboard_does_not_serve_is_refused(dashboard):  # noqa: F811
    """DNS rebinding: evil.example resolves to 127.0.0.1, the browser sends its name."""
    for host in ("evil.example", f"evil.example:{dashboard.port}", "127.0.0.2", "bad host"):
        status, _, body = dashboard.request("GET", "/api/nodes", {"Host": host})
        assert status == 403 and "Host" in error_of(body), host
    status, _, _ = dashboard.request("GET", "/login", {"Host": "evil.example"}, token=False)
    assert status == 403
    for host in ("localhost", f"localhost:{dashboard.port}", "127.0.0.1", "localhost:9999"):
        status, _, _ = dashboard.request("GET", "/api/nodes", {"Host": host})
        assert status == 200, host


def test_a_foreign_origin_is_refused_for_changes_and_websockets_before_routing(dashboard):  # noqa: F811
    evil = {"Origin": "http://evil.example"}
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for path in ("/api/nodes", "/no/such/path", "/login", "/api/jobs/submit"):
            status, _, body = dashboard.request(method, path, evil, b"x")
            assert status == 403 and "Origin" in error_of(body), (method, path)
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}  # fmt: skip
    for origin in ("http://evil.example", "null", f"http://localhost:{dashboard.port + 1}"):
        status, _, _ = dashboard.request("GET", "/no/such/ws", {**upgrade, "Origin": origin})
        assert status == 403, origin
    own = {**upgrade, "Origin": dashboard.url}
    assert dashboard.request("GET", "/no/such/ws", own)[0] == 404  # past the checks: routed
    assert dashboard.request("GET", "/no/such/ws", own, token=False)[0] == 401
    assert dashboard.request("GET", "/api/nodes", evil)[0] == 200  # a read: the token decides
    status, _, body = dashboard.request("POST", "/api/nodes", {"Origin": dashboard.url})
    assert status == 405 and "GET" in error_of(body)


def test_unknown_paths_are_json_404_and_big_bodies_413(dashboard):  # noqa: F811
    status, headers, body = dashboard.request("GET", "/api/no_such_table")
    assert status == 404 and headers["Content-Type"].startswith("application/json")
    assert "/api/no_such_table" in error_of(body)
    big = b"x" * (1024 * 1024 + 1)
    status, _, body = dashboard.request("POST", "/login", {"Origin": dashboard.url}, big)
    assert status == 413 and "MINRAY_DASHBOARD_MAX_BODY_BYTES" in error_of(body)
    traversal = "/api/../../../../etc/passwd"
    assert dashboard.request("GET", traversal)[0] == 404


def test_metrics_are_prometheus_text_that_matches_the_cluster(dashboard):  # noqa: F811
    @minray.remote
    def ok() -> int:
        return 1

    @minray.remote(max_retries=0)
    def bad() -> int:
        return 1 + "one"

    @minray.remote(num_cpus=0)
    class Counter:
        def ping(self) -> int:
            return 1

    counter = Counter.remote()
    assert minray.get(counter.ping.remote()) == 1
    assert minray.get([ok.remote() for _ in range(5)]) == [1] * 5
    failed = bad.remote()
    kept = minray.put(b"x" * 200_000)

    def scrape() -> dict:
        status, headers, body = dashboard.request("GET", "/metrics")
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        out = {}
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "node_id"))
                out[(sample.name, labels)] = sample.value
        return out

    def tasks(state: str) -> float:
        return scrape()[("minray_tasks", (("state", state),))]

    # 5 ok, plus the actor's creation and its call; 1 bad
    assert wait_until(lambda: tasks("FINISHED") == 7 and tasks("FAILED") == 1)
    metrics = scrape()
    assert metrics[("minray_actors", (("state", "ALIVE"),))] == 1
    assert metrics[("minray_nodes", (("state", "ALIVE"),))] == 1
    assert metrics[("minray_task_events_dropped_total", ())] == 0
    here = (("address", "127.0.0.1"),)
    assert metrics[("minray_node_resource_total", (*here, ("resource", "CPU")))] == 1
    assert metrics[("minray_object_store_used_bytes", here)] >= 200_000
    assert metrics[("minray_object_store_spilled_bytes", here)] == 0
    assert metrics[("minray_lease_queue_length", here)] == 0
    assert metrics[("minray_node_memory_total_bytes", here)] > 0
    assert dashboard.request("GET", "/metrics", token=False)[0] == 401
    del kept, failed


def test_minray_dashboard_prints_the_url_and_the_token_that_logs_in(dashboard):  # noqa: F811
    out = subprocess.run(
        [sys.executable, "-m", "minray.cli", "dashboard"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env=dict(os.environ, MINRAY_SESSION_ROOT=os.path.dirname(dashboard.session_dir)),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert f"http://127.0.0.1:{dashboard.port}" in out.stdout
    assert f"token: {dashboard.token}" in out.stdout


def test_metrics_cover_every_node_of_a_cluster():
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": True, "dashboard_port": 0},
    )
    try:
        cluster.add_node(num_cpus=2, resources={"side": 1}, node_ip_address="127.0.0.2")
        cluster.wait_for_nodes()
        head_dir = cluster.head_node.session_dir
        with open(os.path.join(head_dir, "dashboard_url")) as f:
            host, port = f.read().strip().rsplit(":", 1)
        with open(os.path.join(head_dir, "token"), "rb") as f:
            dash = Dashboard(host, int(port), f.read().hex(), head_dir)

        def cpus() -> dict:
            status, _, body = dash.request("GET", "/metrics")
            assert status == 200
            (family,) = [f for f in text_string_to_metric_families(body.decode())
                         if f.name == "minray_node_resource_total"]  # fmt: skip
            return {s.labels["address"]: s.value for s in family.samples
                    if s.labels["resource"] == "CPU"}  # fmt: skip

        assert wait_until(lambda: cpus() == {"127.0.0.1": 1.0, "127.0.0.2": 2.0}), cpus()
    finally:
        cluster.shutdown()
