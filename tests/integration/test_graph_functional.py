"""The dashboard's live task graph, as a page and a script would use it: /api/graph for
the whole graph, /api/graph/events for its changes as the program runs (server-sent
events), both behind the token; a page that never reads does not hold up the head."""

from __future__ import annotations

import http.client
import json
import os
import time

import minray
from minray.cluster_utils import Cluster

from .cluster_helpers import wait_until
from .dashboard_helpers import (
    Dashboard,
    dashboard,  # noqa: F401 - a fixture
)


@minray.remote
def add(a, b):
    return a + b


@minray.remote(num_cpus=0)
class Counter:
    def __init__(self):
        self.total = 0

    def incr(self, by: int) -> int:
        self.total += by
        return self.total


class EventStream:
    """A browser's EventSource, by hand: the events of /api/graph/events as they come."""

    def __init__(self, board: Dashboard, token: bool = True):
        self.conn = http.client.HTTPConnection(board.host, board.port, timeout=10)
        headers = {"Host": f"{board.host}:{board.port}", "Accept": "text/event-stream"}
        if token:
            headers["Authorization"] = f"Bearer {board.token}"
        self.conn.request("GET", "/api/graph/events", headers=headers)
        self.response = self.conn.getresponse()

    def next(self) -> tuple[str, dict]:
        """The next event (comments skipped): its name and data."""
        name, data = "", ""
        for _ in range(1000):
            line = self.response.fp.readline().decode()
            if not line:
                raise EOFError("the stream ended")
            if line == "\n" and name:
                return name, json.loads(data)
            if line.startswith("event: "):
                name = line[len("event: ") :].strip()
            elif line.startswith("data: "):
                data = line[len("data: ") :]
        raise AssertionError("no event in 1000 lines")

    def close(self) -> None:
        self.conn.close()


def test_the_graph_and_its_stream_need_the_token(dashboard):  # noqa: F811
    for path in ("/api/graph", "/api/graph/events", "/graph"):
        status, _, body = dashboard.request("GET", path, token=False)
        assert status == 401 and "Bearer" in json.loads(body)["error"], path
    status, headers, _ = dashboard.request("GET", "/graph", {"Accept": "text/html"}, token=False)
    assert status == 302 and headers["Location"] == "/login"
    stream = EventStream(dashboard, token=False)
    try:
        assert stream.response.status == 401
    finally:
        stream.close()


def test_the_stream_tells_each_new_task_and_state_change_and_the_graph_has_its_edges(
    dashboard,  # noqa: F811
):
    stream = EventStream(dashboard)
    try:
        assert stream.response.status == 200
        assert stream.response.headers["Content-Type"] == "text/event-stream"
        assert stream.next()[0] == "hello"
        one = add.remote(minray.put(1), 2)  # put -> add -> add -> Counter.incr
        two = add.remote(one, 3)
        counter = Counter.remote()
        assert minray.get(counter.incr.remote(two)) == 6
        seen: dict[str, str] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sorted(seen.values()) != ["FINISHED"] * 4:
            name, data = stream.next()
            assert name == "changes", (name, data)
            seen.update({n["id"]: n["state"] for n in data["nodes"]})
        assert sorted(seen.values()) == ["FINISHED"] * 4
    finally:
        stream.close()
    graph = dashboard.json("/api/graph")
    assert (graph["mode"], graph["tasks"], graph["objects"]) == ("tasks", 4, 1)
    names = {n["id"]: n["name"] for n in graph["nodes"]}
    pairs = sorted((names[e["from"]], names[e["to"]], e["kind"]) for e in graph["edges"])
    assert pairs == [
        ("Counter.__init__", "Counter.incr", "actor"),
        ("add", "Counter.incr", "data"),
        ("add", "add", "data"),
        ("object", "add", "data"),
    ]
    summary = dashboard.json("/api/graph?max_nodes=2")
    assert summary["mode"] == "summary"
    assert {g["name"]: g["count"] for g in summary["nodes"]} == {
        "add": 2,
        "objects": 1,
        "Counter.__init__": 1,
        "Counter.incr": 1,
    }
    for bad in ("0", "many", "99999999"):
        status, _, body = dashboard.request("GET", f"/api/graph?max_nodes={bad}")
        assert status == 400 and b"max_nodes must be a whole number" in body


def test_a_failed_tasks_traceback_reaches_the_tasks_api_and_its_node_says_what_it_raised(
    dashboard,  # noqa: F811
):
    bad = add.remote(1, "two")
    try:
        minray.get(bad)
    except TypeError:
        pass

    def failed() -> list:
        return [t for t in dashboard.json("/api/tasks")["tasks"] if t["state"] == "FAILED"]

    assert wait_until(lambda: failed() and failed()[0]["exception_type"])
    (task,) = failed()
    assert (task["exception_type"], task["error_type"]) == ("TypeError", "TASK_EXECUTION_EXCEPTION")
    assert "return a + b" in task["error_message"]
    assert "unsupported operand type(s) for +: 'int' and 'str'" in task["error_message"]
    (row,) = dashboard.json(f"/api/tasks?task_id={task['task_id']}")["tasks"]
    assert row == task
    status, _, body = dashboard.request("GET", "/api/tasks?task_id=nothex")
    assert status == 400 and b"task_id" in body
    (node,) = [n for n in dashboard.json("/api/graph")["nodes"] if n["kind"] == "task"]
    assert (node["state"], node["error"]) == ("FAILED", "TypeError")


def test_pages_that_never_read_do_not_hold_up_the_head_and_too_many_are_refused(
    dashboard,  # noqa: F811
):
    streams = [EventStream(dashboard) for _ in range(16)]  # graph_feed.MAX_LISTENERS
    try:
        assert all(s.response.status == 200 for s in streams)
        refused = EventStream(dashboard)
        assert refused.response.status == 503
        assert b"already follow the task graph" in refused.response.read()
        refused.close()
        started = time.monotonic()
        assert sum(minray.get([add.remote(i, 1) for i in range(2000)])) == 2001000
        time.sleep(1.5)  # the tasks' events reach the head, which offers them to every stream
        t = time.monotonic()
        assert dashboard.json("/api/nodes")[0]["Alive"]
        assert time.monotonic() - t < 2.0, "the head answered slowly while pages did not read"
        assert time.monotonic() - started < 60
    finally:
        for stream in streams:
            stream.close()

    def room_again() -> bool:  # the closed streams left their places
        stream = EventStream(dashboard)
        try:
            return stream.response.status == 200
        finally:
            stream.close()

    assert wait_until(room_again)


@minray.remote(resources={"side": 1})
def on_the_side(x):
    return x + 1


def test_the_graph_covers_every_node_of_a_cluster():
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": True, "dashboard_port": 0},
    )
    try:
        cluster.add_node(num_cpus=1, resources={"side": 1})
        cluster.wait_for_nodes()
        cluster.connect()
        head_dir = cluster.head_node.session_dir
        with open(os.path.join(head_dir, "dashboard_url")) as f:
            host, port = f.read().strip().rsplit(":", 1)
        with open(os.path.join(head_dir, "token"), "rb") as f:
            board = Dashboard(host, int(port), f.read().hex(), head_dir)
        assert minray.get(add.remote(on_the_side.remote(1), 1)) == 3  # side node -> head node

        def where() -> dict:
            graph = board.json("/api/graph")
            return {n["name"]: (n["state"], n["node_id"]) for n in graph["nodes"]}

        assert wait_until(lambda: len({node for _, node in where().values()} - {None}) == 2)
        assert {name: state for name, (state, _) in where().items()} == {
            "on_the_side": "FINISHED",
            "add": "FINISHED",
        }
        graph = board.json("/api/graph")
        (edge,) = graph["edges"]
        names = {n["id"]: n["name"] for n in graph["nodes"]}
        assert (names[edge["from"]], names[edge["to"]]) == ("on_the_side", "add")
    finally:
        cluster.shutdown()
