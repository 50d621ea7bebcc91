"""Profiling without instrumenting: the stacks of an actor's or worker's threads, and a flame
graph of what it runs, from the dashboard and from ``minray stack``."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET

import minray
from minray import cli

from .cluster_helpers import wait_until
from .dashboard_helpers import dashboard  # noqa: F401 - a fixture


@minray.remote(num_cpus=0)
class Spinner:
    def ready(self) -> bool:
        return True

    def spin_here(self, seconds: float) -> int:
        n, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:  # pure Python: it holds the GIL but for switches
            n += 1
        return n


def spinning(seconds: float = 8.0):
    """A live actor busy in ``spin_here`` (its id, in hex) and the ref of that call."""
    actor = Spinner.remote()
    assert minray.get(actor.ready.remote())
    return actor, actor._actor_id.hex(), actor.spin_here.remote(seconds)


def stack_shows(dashboard, path: str, name: str) -> dict | None:  # noqa: F811
    status, _, body = dashboard.request("GET", path)
    assert status == 200, body
    reply = json.loads(body)
    return reply if name in reply["text"] else None


def test_the_stack_of_a_busy_actor_shows_its_method_and_its_worker_the_same(dashboard):  # noqa: F811
    actor, actor_id, ref = spinning()
    path = f"/api/actors/{actor_id}/stack"
    assert wait_until(lambda: stack_shows(dashboard, path, "spin_here"))
    reply = stack_shows(dashboard, f"/api/actors/{actor_id}/stack", "spin_here")
    main = next(t for t in reply["threads"] if t["name"] == "MainThread")
    assert main["frames"][-1]["function"] == "spin_here"  # innermost last
    assert "in spin_here" in reply["text"] and "Thread" in reply["text"]
    assert any(t["name"] == "minray-loop" for t in reply["threads"])
    (row,) = [w for w in dashboard.json("/api/workers")["workers"] if w["actor_id"] == actor_id]
    assert row["worker_id"] == reply["worker_id"] and row["pid"] == reply["pid"]
    assert stack_shows(dashboard, f"/api/workers/{row['worker_id']}/stack", "spin_here")
    driver = next(w for w in dashboard.json("/api/workers")["workers"]
                  if w["worker_type"] == "DRIVER")  # fmt: skip
    assert stack_shows(dashboard, f"/api/workers/{driver['worker_id']}/stack", "stack_shows")
    minray.kill(actor)


def test_a_one_second_profile_of_a_busy_actor_is_a_flame_graph_of_its_method(dashboard):  # noqa: F811
    actor, actor_id, ref = spinning()
    assert wait_until(lambda: stack_shows(dashboard, f"/api/actors/{actor_id}/stack", "spin_here"))
    start = time.monotonic()
    status, headers, body = dashboard.request("POST", f"/api/actors/{actor_id}/profile?duration=1")
    took = time.monotonic() - start
    assert status == 200, body
    assert headers["Content-Type"].startswith("image/svg+xml") and 1.0 <= took < 5.0
    svg = ET.fromstring(body)
    spin = [int(g.get("data-samples")) for g in svg.iter("{http://www.w3.org/2000/svg}g")
            if g.get("data-name", "").startswith("spin_here")]  # fmt: skip
    assert spin and 50 <= sum(spin) <= 150, spin  # 100 a second, give or take half
    assert "spin_here" in body.decode()
    status, headers, body = dashboard.request(
        "POST", f"/api/actors/{actor_id}/profile?duration=0.3&format=folded"
    )
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    lines = body.decode().splitlines()
    assert any(line.startswith("thread MainThread;") and "spin_here" in line for line in lines)
    minray.kill(actor)


def test_profiling_needs_the_token_and_a_request_from_the_dashboards_own_page(dashboard):  # noqa: F811
    actor, actor_id, _ = spinning(0.1)
    path = f"/api/actors/{actor_id}/profile?duration=0.2"
    for kind in ("actors", "workers"):
        assert dashboard.request("POST", f"/api/{kind}/{actor_id}/profile", token=False)[0] == 401
        assert dashboard.request("GET", f"/api/{kind}/{actor_id}/stack", token=False)[0] == 401
    status, _, body = dashboard.request("POST", path, headers={"Origin": "http://evil.example"})
    assert status == 403 and b"Origin" in body
    own = f"http://{dashboard.host}:{dashboard.port}"
    assert dashboard.request("POST", path, headers={"Origin": own})[0] == 200
    assert dashboard.request("GET", path)[0] == 405


def test_unknown_ids_bad_durations_and_dead_actors_get_clear_errors(dashboard):  # noqa: F811
    def error(method: str, path: str) -> tuple[int, str]:
        status, headers, body = dashboard.request(method, path)
        assert headers["Content-Type"].startswith("application/json"), body
        return status, json.loads(body)["error"]

    unknown = "ab" * 16
    status, message = error("GET", f"/api/actors/{unknown}/stack")
    assert status == 404 and unknown in message and "minray list" in message
    assert error("POST", f"/api/workers/{unknown}/profile?duration=1")[0] == 404
    status, message = error("GET", "/api/actors/not-hex/stack")
    assert status == 400 and "hex id" in message
    actor, actor_id, _ = spinning(0.1)
    for duration in ("0", "61", "abc", "nan"):
        status, message = error("POST", f"/api/actors/{actor_id}/profile?duration={duration}")
        assert status == 400 and "duration" in message, (duration, message)
    status, message = error("POST", f"/api/actors/{actor_id}/profile?duration=1&rate=5000")
    assert status == 400 and "rate" in message
    assert error("POST", f"/api/actors/{actor_id}/profile?format=png")[0] == 400
    minray.kill(actor)
    assert wait_until(lambda: error("GET", f"/api/actors/{actor_id}/stack")[0] == 410)
    status, message = error("POST", f"/api/actors/{actor_id}/profile?duration=1")
    assert status == 410 and "dead" in message


def test_minray_stack_prints_an_actors_stacks_and_every_workers(cluster, capsys):
    actor, actor_id, ref = spinning()

    def printed(*args: str) -> str:
        assert cli.main(["stack", *args]) == 0
        return capsys.readouterr().out

    assert wait_until(lambda: "in spin_here" in printed("--actor-id", actor_id))
    out = printed("--actor-id", actor_id)
    assert out.startswith("Process ") and "Thread" in out and "MainThread" in out
    everything = printed()
    assert "in spin_here" in everything  # the actor's worker
    assert "in printed" in everything  # this driver
    assert cli.main(["stack", "--actor-id", "ab" * 16]) == 1
    assert "no actor" in capsys.readouterr().err
    assert cli.main(["stack", "--worker-id", "xyz"]) == 1
    assert "hex id" in capsys.readouterr().err
    minray.kill(actor)


@minray.remote(num_cpus=0)
class SlowStart:
    def __init__(self, seconds: float):
        time.sleep(seconds)

    def ready(self) -> bool:
        return True


def test_an_actor_still_starting_and_a_second_profile_at_once_are_409(dashboard):  # noqa: F811
    import threading

    slow = SlowStart.remote(3.0)
    slow_id = slow._actor_id.hex()

    def state() -> str:
        rows = dashboard.json("/api/actors")["actors"]
        return next((a["state"] for a in rows if a["actor_id"] == slow_id), "")

    assert wait_until(lambda: state() == "PENDING_CREATION", timeout=2.5)
    status, _, body = dashboard.request("GET", f"/api/actors/{slow_id}/stack")
    assert status == 409 and b"PENDING_CREATION" in body and b"try again" in body, body
    assert minray.get(slow.ready.remote())

    actor, actor_id, _ = spinning(3.0)
    first: list = []
    path = f"/api/actors/{actor_id}/profile?duration=1.5"
    thread = threading.Thread(target=lambda: first.append(dashboard.request("POST", path)))
    thread.start()
    try:
        stack = f"/api/actors/{actor_id}/stack"
        assert wait_until(lambda: stack_shows(dashboard, stack, '"minray-profiler"'), timeout=1.2)
        status, _, body = dashboard.request("POST", path)
        assert status == 409 and b"running already" in body, body
    finally:
        thread.join(10)
    assert first[0][0] == 200
    minray.kill(actor)
    minray.kill(slow)
