"""The dashboard's objects, worker logs (followed from an offset) and timeline."""

from __future__ import annotations

import json

import minray

from .cluster_helpers import wait_until
from .dashboard_helpers import dashboard  # noqa: F401 - a fixture


@minray.remote
def say(word: str) -> dict:
    print(f"said {word}", flush=True)
    context = minray.get_runtime_context()
    return {"worker": context.get_worker_id(), "node": context.get_node_id()}


def test_objects_logs_and_timeline(dashboard):  # noqa: F811
    kept = minray.put(b"x" * 1000)
    objects = dashboard.json("/api/objects")["objects"]
    assert any(o["object_id"] == kept.hex() for o in objects)

    where = minray.get(say.remote("first"))
    path = f"/api/logs/{where['node']}/{where['worker']}"
    assert wait_until(lambda: "said first" in dashboard.json(path)["text"], 10)
    offset = dashboard.json(path)["offset"]
    minray.get(say.remote("second"))  # one CPU: the same worker
    assert wait_until(lambda: "said second" in dashboard.json(f"{path}?offset={offset}")["text"])
    follow = dashboard.json(f"{path}?offset={offset}")
    assert "said first" not in follow["text"] and follow["offset"] > offset  # only what is new

    def ran() -> list:
        status, headers, body = dashboard.request("GET", "/api/timeline")
        assert status == 200 and "attachment" in headers["Content-Disposition"]
        return [e for e in json.loads(body) if e["name"] == "say"]

    assert wait_until(lambda: len(ran()) == 2, 10)
    assert all(e["ph"] == "X" and e["dur"] >= 0 for e in ran())


def test_bad_log_requests_say_what_is_wrong(dashboard):  # noqa: F811
    node = dashboard.json("/api/nodes")[0]["NodeID"]
    for path, status, said in [
        ("/api/logs/xyz/abc", 400, "hex"),
        (f"/api/logs/{node}/{'ab' * 14}?stream=nope", 400, "stream"),
        (f"/api/logs/{node}/{'ab' * 14}?offset=end", 400, "offset"),
        (f"/api/logs/{node}/{'ab' * 14}", 404, "no log for worker"),
    ]:
        got, _, body = dashboard.request("GET", path)
        assert got == status and said in json.loads(body)["error"], (path, got, body)
    got, _, _ = dashboard.request("GET", f"/api/logs/{node}/{'ab' * 14}", token=False)
    assert got == 401
