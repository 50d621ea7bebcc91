"""The dashboard's timeline: its page and its data (``/api/timeline/slices``) for a program
that ran tasks, an actor call and a failing task."""

from __future__ import annotations

import json
import os

import pytest

import minray

from .cluster_helpers import wait_until
from .dashboard_helpers import dashboard  # noqa: F401 - a fixture


@minray.remote
def where(fail: bool = False) -> int:
    if fail:
        raise ValueError("asked to fail")
    return os.getpid()


@minray.remote(num_cpus=0)
class Pid:
    def pid(self) -> int:
        return os.getpid()


def slices(answer: dict) -> list[dict]:
    return [dict(zip(answer["fields"], s)) for s in answer["slices"]]


def test_the_timeline_data_has_a_slice_per_run_on_the_worker_that_ran_it(dashboard):  # noqa: F811
    pids = minray.get([where.remote() for _ in range(3)])
    actor = Pid.remote()
    actor_pid = minray.get(actor.pid.remote())
    with pytest.raises(ValueError):
        minray.get(where.remote(True))

    def answer() -> dict:
        return dashboard.json("/api/timeline/slices")

    # 4 tasks, the actor's creation and its call
    assert wait_until(lambda: answer()["done"] == 6, timeout=20), answer()
    got = answer()
    assert got["mode"] == "slices" and got["failed"] == 1 and got["running"] == 0
    runs = slices(got)
    assert sorted(s["name"] for s in runs) == sorted(["where"] * 4 + ["Pid.__init__", "Pid.pid"])
    (failed,) = [s for s in runs if s["state"] == "FAILED"]
    assert failed["error"] == "ValueError" and failed["name"] == "where"
    rows = got["rows"]
    finished = [s for s in runs if s["name"] == "where" and s["state"] == "FINISHED"]
    assert {rows[s["row"]]["pid"] for s in finished} == set(pids)
    assert {rows[s["row"]]["pid"] for s in runs if s["name"].startswith("Pid.")} == {actor_pid}
    (node,) = dashboard.json("/api/nodes")
    assert {r["node_id"] for r in rows} == {node["NodeID"]}
    assert got["nodes"][node["NodeID"]]["head"] is True
    assert all(s["start_ms"] <= s["end_ms"] for s in runs)
    assert got["span"] == [min(s["start_ms"] for s in runs), max(s["end_ms"] for s in runs)]

    first = min(runs, key=lambda s: s["start_ms"])  # a window around the first run only
    window = f"start_ms={first['start_ms']}&end_ms={first['start_ms'] + 0.001}"
    narrow = dashboard.json(f"/api/timeline/slices?{window}")
    assert first["task_id"] in {s["task_id"] for s in slices(narrow)}
    assert narrow["runs"] < got["runs"] and narrow["rows"] == rows

    summary = dashboard.json("/api/timeline/slices?max_slices=2")
    assert summary["mode"] == "summary" and summary["runs"] == 6
    cells = [dict(zip(summary["fields"], c)) for c in summary["cells"]]
    assert sum(c["failed"] for c in cells) >= 1
    busy = sum(s["end_ms"] - s["start_ms"] for s in runs)  # (each cell rounded to the us)
    assert sum(c["busy_ms"] for c in cells) == pytest.approx(busy, abs=0.0005 * len(cells) + 0.01)
    del actor


def test_the_timeline_page_is_served_and_bad_queries_say_what_is_wrong(dashboard):  # noqa: F811
    status, headers, body = dashboard.request("GET", "/timeline")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    page = body.decode()
    assert '<canvas id="timeline"' in page and 'href="/api/timeline"' in page
    for path in ("/", "/graph", "/timeline"):  # every page's nav links to it
        assert '<a href="/timeline">Timeline</a>' in dashboard.request("GET", path)[2].decode()
    for query, said in [
        ("max_slices=0", "max_slices must be a whole number"),
        ("start_ms=5", "give both start_ms and end_ms"),
        ("start_ms=9&end_ms=3", "end after it starts"),
    ]:
        status, _, body = dashboard.request("GET", f"/api/timeline/slices?{query}")
        assert status == 400 and said in json.loads(body)["error"], (query, body)
    assert dashboard.request("GET", "/api/timeline/slices", token=False)[0] == 401
    assert dashboard.request("GET", "/timeline", token=False)[0] in (302, 303, 401)
